output "web_acl_arn" {
  description = "Associate with the ingress NLB/ALB (docs/deploy.md)."
  value       = aws_wafv2_web_acl.this.arn
}
