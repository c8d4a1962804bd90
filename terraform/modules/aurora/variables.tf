variable "name" {
  type        = string
  description = "Cluster identifier."
}

variable "vpc_id" {
  type        = string
  description = "VPC of the cluster."
}

variable "db_subnet_group_name" {
  type        = string
  description = "DB subnet group spanning three AZs."
}

variable "client_security_group_id" {
  type        = string
  description = "Security group of the clients (EKS nodes)."
}

variable "engine_version" {
  type        = string
  description = "Aurora PostgreSQL engine version, e.g. 16.4."
  default     = "16.4"
  validation {
    condition     = can(regex("^1[5-9]\\.[0-9]+$", var.engine_version))
    error_message = "engine_version must be PostgreSQL 15 or newer (MAJOR.MINOR)."
  }
}

variable "database_name" {
  type        = string
  description = "Initial database."
  default     = "exchange"
}

variable "instance_class" {
  type        = string
  description = "Instance class of every instance (db.*)."
  validation {
    condition     = startswith(var.instance_class, "db.")
    error_message = "instance_class must be an RDS class such as db.r7g.large."
  }
}

variable "instance_count" {
  type        = number
  description = "Writer + readers; 2 or more gives a failover target in another AZ."
  validation {
    condition     = var.instance_count >= 1 && var.instance_count <= 15
    error_message = "instance_count must be between 1 and 15."
  }
}

variable "kms_key_arn" {
  type        = string
  description = "KMS key for storage and Performance Insights."
}

variable "secrets_kms_key_arn" {
  type        = string
  description = "KMS key of the RDS-managed master password secret."
}

variable "deletion_protection" {
  type        = bool
  description = "Refuse DeleteDBCluster (true in every env: turn off by hand to delete)."
  default     = true
}

variable "backup_retention_days" {
  type        = number
  description = "Automated backup retention in days (1-35)."
  validation {
    condition     = var.backup_retention_days >= 1 && var.backup_retention_days <= 35
    error_message = "backup_retention_days must be between 1 and 35."
  }
}

variable "skip_final_snapshot" {
  type        = bool
  description = "Skip the final snapshot on destroy (never in prod)."
  default     = false
}

variable "tags" {
  type        = map(string)
  description = "Tags added to every resource."
  default     = {}
}
