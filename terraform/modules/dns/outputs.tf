output "zone_id" {
  description = "Hosted zone id."
  value       = aws_route53_zone.this.zone_id
}

output "certificate_arn" {
  description = "Validated ACM certificate for the API host."
  value       = aws_acm_certificate_validation.api.certificate_arn
}
