variable "zone_name" {
  type        = string
  description = "Public hosted zone, e.g. dev.exchange-lab.example."
}

variable "api_host" {
  type        = string
  description = "Public API host name (must be inside zone_name)."
  validation {
    condition     = can(regex("^[a-z0-9.-]+$", var.api_host))
    error_message = "api_host must be a lowercase DNS name."
  }
}

variable "tags" {
  type        = map(string)
  description = "Tags added to every resource."
  default     = {}
}
