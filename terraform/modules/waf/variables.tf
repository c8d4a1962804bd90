variable "name" {
  type        = string
  description = "Web ACL name."
}

variable "rate_limit_per_5min" {
  type        = number
  description = "Requests per 5 minutes per client IP before blocking."
  default     = 2000
  validation {
    condition     = var.rate_limit_per_5min >= 100
    error_message = "AWS WAF rate limits start at 100."
  }
}

variable "logs_kms_key_arn" {
  type        = string
  description = "KMS key of the WAF log group."
}

variable "tags" {
  type        = map(string)
  description = "Tags added to every resource."
  default     = {}
}
