output "role_arns" {
  description = "IRSA role ARN per key of service_accounts."
  value       = { for k, v in aws_iam_role.irsa : k => v.arn }
}

output "github_images_role_arn" {
  description = "Role assumed by .github/workflows/images.yml (AWS_IMAGES_ROLE_ARN)."
  value       = try(aws_iam_role.github_images[0].arn, "")
}

output "load_balancer_controller_role_arn" {
  description = "IRSA role of the AWS Load Balancer Controller."
  value       = module.lb_controller_irsa.iam_role_arn
}
