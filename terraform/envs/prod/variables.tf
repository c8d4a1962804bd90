variable "env" {
  type        = string
  description = "Environment name; also the k8s overlay (k8s/overlays/<env>)."
  validation {
    condition     = contains(["dev", "stg", "prod"], var.env)
    error_message = "env must be dev, stg or prod."
  }
}

variable "account_id" {
  type        = string
  description = "AWS account of this environment (the provider refuses any other)."
  validation {
    condition     = can(regex("^[0-9]{12}$", var.account_id))
    error_message = "account_id is a 12-digit AWS account id."
  }
}

variable "region" {
  type        = string
  description = "AWS region."
  validation {
    condition     = can(regex("^[a-z]{2}-[a-z]+-[0-9]$", var.region))
    error_message = "region must look like eu-west-1."
  }
}

variable "azs" {
  type        = list(string)
  description = "The three availability zones used."
  validation {
    condition     = length(var.azs) == 3
    error_message = "Exactly three AZs."
  }
}

variable "vpc_cidr" {
  type        = string
  description = "VPC CIDR (/16); the env's data-store NetworkPolicies allow egress to it."
  validation {
    condition     = can(cidrhost(var.vpc_cidr, 0))
    error_message = "vpc_cidr must be a valid IPv4 CIDR."
  }
}

variable "single_nat_gateway" {
  type        = bool
  description = "One NAT gateway instead of one per AZ (dev only)."
  default     = false
}

variable "kubernetes_version" {
  type        = string
  description = "EKS version."
  default     = "1.31"
  validation {
    condition     = can(regex("^1\\.3[0-9]$", var.kubernetes_version))
    error_message = "kubernetes_version must be 1.30 or newer."
  }
}

variable "system_instance_types" {
  type        = list(string)
  description = "Instance types of the system node group."
}

variable "system_nodes" {
  type        = object({ min = number, max = number })
  description = "System node group bounds."
}

variable "matching_instance_types" {
  type        = list(string)
  description = "Instance types of the dedicated matching node pool."
}

variable "matching_nodes" {
  type        = object({ min = number, max = number })
  description = "Matching node pool bounds."
}

variable "msk_broker_instance_type" {
  type        = string
  description = "MSK broker instance type."
}

variable "msk_scram_secret_arns" {
  type        = list(string)
  description = "SCRAM user secrets (AmazonMSK_*) to associate; created out of band, see docs/deploy.md."
  default     = []
}

variable "aurora_instance_class" {
  type        = string
  description = "Aurora instance class."
}

variable "aurora_instance_count" {
  type        = number
  description = "Aurora writer + readers."
  validation {
    condition     = var.aurora_instance_count >= 1
    error_message = "At least one Aurora instance."
  }
}

variable "deletion_protection" {
  type        = bool
  description = "Aurora deletion protection."
  default     = true
}

variable "backup_retention_days" {
  type        = number
  description = "Aurora automated backup retention in days."
  validation {
    condition     = var.backup_retention_days >= 1 && var.backup_retention_days <= 35
    error_message = "backup_retention_days must be between 1 and 35."
  }
}

variable "redis_node_type" {
  type        = string
  description = "ElastiCache node type."
}

variable "redis_num_cache_clusters" {
  type        = number
  description = "Redis primary + replicas (>= 2 for Multi-AZ failover)."
  validation {
    condition     = var.redis_num_cache_clusters >= 2
    error_message = "At least 2 Redis nodes (Multi-AZ failover)."
  }
}

variable "zone_name" {
  type        = string
  description = "Public DNS zone of the environment."
}

variable "api_host" {
  type        = string
  description = "Public API host (Istio Gateway host, ACM certificate)."
}

variable "github_repository" {
  type        = string
  description = "owner/name whose main branch may push images (empty: no CI role in this account)."
  default     = ""
}

variable "tags" {
  type        = map(string)
  description = "Extra tags for every resource."
  default     = {}
}

variable "pull_account_ids" {
  type        = list(string)
  description = "dev and stg accounts allowed to pull images from the prod registry."
  default     = []
}
