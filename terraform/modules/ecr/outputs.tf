output "repository_urls" {
  description = "Repository URL per service."
  value       = { for k, v in aws_ecr_repository.this : k => v.repository_url }
}
