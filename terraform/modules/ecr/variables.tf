variable "prefix" {
  type        = string
  description = "Repository namespace (images are <registry>/<prefix>/<service>)."
}

variable "repositories" {
  type        = list(string)
  description = "One repository per service image."
}

variable "kms_key_arn" {
  type        = string
  description = "KMS key for image encryption."
}

variable "keep_images" {
  type        = number
  description = "Images kept per repository."
  default     = 200
}

variable "pull_account_ids" {
  type        = list(string)
  description = "Other AWS accounts (environments) allowed to pull."
  default     = []
  validation {
    condition     = alltrue([for a in var.pull_account_ids : can(regex("^[0-9]{12}$", a))])
    error_message = "pull_account_ids are 12-digit AWS account ids."
  }
}

variable "tags" {
  type        = map(string)
  description = "Tags added to every resource."
  default     = {}
}
