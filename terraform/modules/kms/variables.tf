variable "name" {
  type        = string
  description = "Prefix of the key aliases (alias/<name>-<purpose>)."
}

variable "purposes" {
  type        = list(string)
  description = "One key per purpose, e.g. eks, msk, aurora, elasticache, ecr, secrets, logs."
  validation {
    condition     = length(var.purposes) > 0
    error_message = "At least one key purpose is required."
  }
}

variable "deletion_window_in_days" {
  type        = number
  description = "Waiting period before a scheduled key deletion (7-30 days)."
  default     = 30
  validation {
    condition     = var.deletion_window_in_days >= 7 && var.deletion_window_in_days <= 30
    error_message = "deletion_window_in_days must be between 7 and 30."
  }
}

variable "tags" {
  type        = map(string)
  description = "Tags added to every key."
  default     = {}
}
