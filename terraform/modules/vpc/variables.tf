variable "name" {
  type        = string
  description = "Name of the VPC and prefix of its subnets."
}

variable "cidr" {
  type        = string
  description = "IPv4 CIDR of the VPC (a /16; the k8s NetworkPolicies of the env allow data-store egress to it)."
  validation {
    condition     = can(cidrhost(var.cidr, 0)) && endswith(var.cidr, "/16")
    error_message = "cidr must be a valid /16 IPv4 CIDR."
  }
}

variable "azs" {
  type        = list(string)
  description = "Exactly three availability zones."
  validation {
    condition     = length(var.azs) == 3
    error_message = "The exchange runs in exactly three AZs."
  }
}

variable "single_nat_gateway" {
  type        = bool
  description = "One NAT gateway for the whole VPC (cheaper, dev only) instead of one per AZ."
  default     = false
}

variable "tags" {
  type        = map(string)
  description = "Tags added to every resource."
  default     = {}
}
