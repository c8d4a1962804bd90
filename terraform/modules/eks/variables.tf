variable "name" {
  type        = string
  description = "Cluster name."
}

variable "kubernetes_version" {
  type        = string
  description = "EKS Kubernetes minor version (>= 1.30: ValidatingAdmissionPolicy v1, native sidecars)."
  validation {
    condition     = can(regex("^1\\.(3[0-9])$", var.kubernetes_version))
    error_message = "kubernetes_version must be 1.30 or newer, as \"1.NN\"."
  }
}

variable "vpc_id" {
  type        = string
  description = "VPC of the cluster."
}

variable "private_subnet_ids" {
  type        = list(string)
  description = "Private subnets (three AZs) for the control plane ENIs and the nodes."
  validation {
    condition     = length(var.private_subnet_ids) == 3
    error_message = "Three private subnets, one per AZ."
  }
}

variable "kms_key_arn" {
  type        = string
  description = "KMS key for envelope encryption of Kubernetes Secrets."
}

variable "endpoint_public_access" {
  type        = bool
  description = "Expose the API endpoint publicly (restricted to endpoint_public_access_cidrs)."
  default     = false
}

variable "endpoint_public_access_cidrs" {
  type        = list(string)
  description = "CIDRs allowed to reach a public API endpoint."
  default     = []
  validation {
    condition     = !contains(var.endpoint_public_access_cidrs, "0.0.0.0/0")
    error_message = "The API endpoint is never open to the whole internet."
  }
}

variable "system_instance_types" {
  type        = list(string)
  description = "Instance types of the system node group."
}

variable "system_nodes" {
  type        = object({ min = number, max = number })
  description = "Size bounds of the system node group."
  validation {
    condition     = var.system_nodes.min >= 1 && var.system_nodes.max >= var.system_nodes.min
    error_message = "system_nodes needs 1 <= min <= max."
  }
}

variable "matching_instance_types" {
  type        = list(string)
  description = "Instance types of the dedicated matching pool (compute optimised)."
}

variable "matching_nodes" {
  type        = object({ min = number, max = number })
  description = "Size bounds of the matching pool."
  validation {
    condition     = var.matching_nodes.min >= 1 && var.matching_nodes.max >= var.matching_nodes.min
    error_message = "matching_nodes needs 1 <= min <= max."
  }
}

variable "tags" {
  type        = map(string)
  description = "Tags added to every resource."
  default     = {}
}
