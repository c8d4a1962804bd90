output "vpc_id" {
  description = "VPC id."
  value       = module.vpc.vpc_id
}

output "vpc_cidr" {
  description = "VPC CIDR (k8s/overlays/<env>/mesh/networkpolicy-datastores.yaml)."
  value       = module.vpc.vpc_cidr_block
}

output "private_subnet_ids" {
  description = "Subnets of the EKS nodes."
  value       = module.vpc.private_subnets
}

output "intra_subnet_ids" {
  description = "Subnets of the MSK brokers."
  value       = module.vpc.intra_subnets
}

output "database_subnet_group_name" {
  description = "DB subnet group for Aurora."
  value       = module.vpc.database_subnet_group_name
}

output "elasticache_subnet_group_name" {
  description = "Subnet group for ElastiCache."
  value       = module.vpc.elasticache_subnet_group_name
}
