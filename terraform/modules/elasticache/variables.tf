variable "name" {
  type        = string
  description = "Replication group id."
}

variable "vpc_id" {
  type        = string
  description = "VPC of the cache."
}

variable "subnet_group_name" {
  type        = string
  description = "ElastiCache subnet group spanning three AZs."
}

variable "client_security_group_id" {
  type        = string
  description = "Security group of the clients (EKS nodes)."
}

variable "engine_version" {
  type        = string
  description = "Redis engine version."
  default     = "7.1"
}

variable "node_type" {
  type        = string
  description = "Node type (cache.*)."
  validation {
    condition     = startswith(var.node_type, "cache.")
    error_message = "node_type must be an ElastiCache type such as cache.r7g.large."
  }
}

variable "num_cache_clusters" {
  type        = number
  description = "Primary + replicas; at least 2 for Multi-AZ failover."
  validation {
    condition     = var.num_cache_clusters >= 2
    error_message = "Multi-AZ with automatic failover needs at least 2 nodes."
  }
}

variable "kms_key_arn" {
  type        = string
  description = "KMS key for encryption at rest."
}

variable "secrets_kms_key_arn" {
  type        = string
  description = "KMS key of the AUTH token secret."
}

variable "snapshot_retention_days" {
  type        = number
  description = "Daily snapshots kept (0 disables)."
  default     = 7
}

variable "tags" {
  type        = map(string)
  description = "Tags added to every resource."
  default     = {}
}
