variable "name" {
  type        = string
  description = "Prefix of the role names."
}

variable "oidc_provider_arn" {
  type        = string
  description = "EKS IRSA OIDC provider ARN."
}

variable "service_accounts" {
  type        = map(object({ namespace = string, name = string }))
  description = "IRSA roles to create, keyed by role suffix; must contain external-secrets."
  validation {
    condition     = contains(keys(var.service_accounts), "external-secrets")
    error_message = "service_accounts must contain the external-secrets role."
  }
}

variable "secrets_kms_key_arn" {
  type        = string
  description = "KMS key encrypting the exchange-lab/* secrets."
}

variable "github_repository" {
  type        = string
  description = "owner/name allowed to push images through GitHub OIDC (empty: no role)."
  default     = ""
}

variable "tags" {
  type        = map(string)
  description = "Tags added to every resource."
  default     = {}
}
