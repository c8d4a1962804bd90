output "bootstrap_brokers_sasl_scram" {
  description = "KAFKA_BROKERS for the services (SASL/SCRAM over TLS, port 9096)."
  value       = aws_msk_cluster.this.bootstrap_brokers_sasl_scram
}

output "bootstrap_brokers_sasl_iam" {
  description = "Bootstrap brokers for IAM-authenticated clients (port 9098)."
  value       = aws_msk_cluster.this.bootstrap_brokers_sasl_iam
}

output "cluster_arn" {
  description = "MSK cluster ARN (IAM policies)."
  value       = aws_msk_cluster.this.arn
}
