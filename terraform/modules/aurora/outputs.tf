output "endpoint" {
  description = "Writer endpoint (DATABASE_HOST)."
  value       = aws_rds_cluster.this.endpoint
}

output "reader_endpoint" {
  description = "Reader endpoint (DATABASE_READER_HOST)."
  value       = aws_rds_cluster.this.reader_endpoint
}

output "master_user_secret_arn" {
  description = "Secrets Manager secret holding the master password (managed by RDS)."
  value       = aws_rds_cluster.this.master_user_secret[0].secret_arn
}
