# Consumed by k8s/overlays/<env>/mesh/endpoints.env, the env's NetworkPolicies
# and the bootstrap steps of docs/deploy.md.
output "cluster_name" {
  description = "EKS cluster name."
  value       = module.eks.cluster_name
}

output "vpc_cidr" {
  description = "VPC CIDR (ipBlock of k8s/overlays/<env>/mesh/networkpolicy-datastores.yaml)."
  value       = module.vpc.vpc_cidr
}

output "msk_bootstrap_brokers_sasl_scram" {
  description = "KAFKA_BROKERS."
  value       = module.msk.bootstrap_brokers_sasl_scram
}

output "msk_bootstrap_brokers_sasl_iam" {
  description = "Brokers for IAM-authenticated clients."
  value       = module.msk.bootstrap_brokers_sasl_iam
}

output "aurora_endpoint" {
  description = "DATABASE_HOST."
  value       = module.aurora.endpoint
}

output "aurora_reader_endpoint" {
  description = "DATABASE_READER_HOST."
  value       = module.aurora.reader_endpoint
}

output "aurora_master_secret_arn" {
  description = "RDS-managed master password secret (to create the service users)."
  value       = module.aurora.master_user_secret_arn
}

output "redis_primary_endpoint" {
  description = "REDIS_HOST."
  value       = module.elasticache.primary_endpoint
}

output "redis_auth_secret_arn" {
  description = "Secret holding the Redis AUTH token."
  value       = module.elasticache.auth_secret_arn
}

output "external_secrets_role_arn" {
  description = "IRSA role for the external-secrets service account."
  value       = module.iam.role_arns["external-secrets"]
}

output "certificate_arn" {
  description = "ACM certificate of the API host."
  value       = module.dns.certificate_arn
}

output "waf_web_acl_arn" {
  description = "WAF web ACL for the public load balancer."
  value       = module.waf.web_acl_arn
}

output "karpenter_queue_name" {
  description = "Karpenter interruption queue."
  value       = module.eks.karpenter_queue_name
}

output "ecr_repository_urls" {
  description = "Image repositories (registry of every overlay and of images.yml)."
  value       = module.ecr.repository_urls
}

output "github_images_role_arn" {
  description = "Role for .github/workflows/images.yml (secret AWS_IMAGES_ROLE_ARN)."
  value       = module.iam.github_images_role_arn
}

output "aws_load_balancer_controller_role_arn" {
  description = "IRSA role for the aws-load-balancer-controller service account (kube-system)."
  value       = module.iam.load_balancer_controller_role_arn
}
