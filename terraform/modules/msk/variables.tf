variable "name" {
  type        = string
  description = "Cluster name."
}

variable "vpc_id" {
  type        = string
  description = "VPC of the brokers."
}

variable "subnet_ids" {
  type        = list(string)
  description = "One subnet per AZ (three)."
  validation {
    condition     = length(var.subnet_ids) == 3
    error_message = "MSK brokers are spread over exactly three subnets."
  }
}

variable "client_security_group_id" {
  type        = string
  description = "Security group of the clients (EKS nodes)."
}

variable "kafka_version" {
  type        = string
  description = "Apache Kafka version of the cluster."
  default     = "3.6.0"
}

variable "broker_instance_type" {
  type        = string
  description = "Broker instance type (kafka.*)."
  validation {
    condition     = startswith(var.broker_instance_type, "kafka.")
    error_message = "broker_instance_type must be an MSK type such as kafka.m7g.large."
  }
}

variable "broker_volume_gb" {
  type        = number
  description = "EBS size per broker in GiB."
  default     = 100
}

variable "retention_hours" {
  type        = number
  description = "Default topic retention in hours."
  default     = 168
}

variable "kms_key_arn" {
  type        = string
  description = "KMS key for encryption at rest."
}

variable "logs_kms_key_arn" {
  type        = string
  description = "KMS key of the broker log group."
}

variable "log_retention_days" {
  type        = number
  description = "Broker log retention in days."
  default     = 30
}

variable "scram_secret_arns" {
  type        = list(string)
  description = "Secrets Manager secrets (AmazonMSK_ prefix, KMS-encrypted) holding SCRAM users; created outside terraform."
  default     = []
}

variable "tags" {
  type        = map(string)
  description = "Tags added to every resource."
  default     = {}
}
