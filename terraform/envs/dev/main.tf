locals {
  name = "exchange-${var.env}"
  tags = merge(var.tags, { Project = "exchange-lab", Environment = var.env, ManagedBy = "terraform" })
}

module "kms" {
  source   = "../../modules/kms"
  name     = local.name
  purposes = ["eks", "msk", "aurora", "elasticache", "ecr", "secrets", "logs"]
  tags     = local.tags
}

module "vpc" {
  source             = "../../modules/vpc"
  name               = local.name
  cidr               = var.vpc_cidr
  azs                = var.azs
  single_nat_gateway = var.single_nat_gateway
  tags               = local.tags
}

module "eks" {
  source                  = "../../modules/eks"
  name                    = local.name
  kubernetes_version      = var.kubernetes_version
  vpc_id                  = module.vpc.vpc_id
  private_subnet_ids      = module.vpc.private_subnet_ids
  kms_key_arn             = module.kms.key_arns["eks"]
  system_instance_types   = var.system_instance_types
  system_nodes            = var.system_nodes
  matching_instance_types = var.matching_instance_types
  matching_nodes          = var.matching_nodes
  tags                    = local.tags
}

module "msk" {
  source                   = "../../modules/msk"
  name                     = local.name
  vpc_id                   = module.vpc.vpc_id
  subnet_ids               = module.vpc.intra_subnet_ids
  client_security_group_id = module.eks.node_security_group_id
  broker_instance_type     = var.msk_broker_instance_type
  kms_key_arn              = module.kms.key_arns["msk"]
  logs_kms_key_arn         = module.kms.key_arns["logs"]
  scram_secret_arns        = var.msk_scram_secret_arns
  tags                     = local.tags
}

module "aurora" {
  source                   = "../../modules/aurora"
  name                     = local.name
  vpc_id                   = module.vpc.vpc_id
  db_subnet_group_name     = module.vpc.database_subnet_group_name
  client_security_group_id = module.eks.node_security_group_id
  instance_class           = var.aurora_instance_class
  instance_count           = var.aurora_instance_count
  kms_key_arn              = module.kms.key_arns["aurora"]
  secrets_kms_key_arn      = module.kms.key_arns["secrets"]
  deletion_protection      = var.deletion_protection
  backup_retention_days    = var.backup_retention_days
  skip_final_snapshot      = false
  tags                     = local.tags
}

module "elasticache" {
  source                   = "../../modules/elasticache"
  name                     = local.name
  vpc_id                   = module.vpc.vpc_id
  subnet_group_name        = module.vpc.elasticache_subnet_group_name
  client_security_group_id = module.eks.node_security_group_id
  node_type                = var.redis_node_type
  num_cache_clusters       = var.redis_num_cache_clusters
  kms_key_arn              = module.kms.key_arns["elasticache"]
  secrets_kms_key_arn      = module.kms.key_arns["secrets"]
  tags                     = local.tags
}

module "dns" {
  source    = "../../modules/dns"
  zone_name = var.zone_name
  api_host  = var.api_host
  tags      = local.tags
}

module "waf" {
  source           = "../../modules/waf"
  name             = local.name
  logs_kms_key_arn = module.kms.key_arns["logs"]
  tags             = local.tags
}

module "iam" {
  source              = "../../modules/iam"
  name                = local.name
  oidc_provider_arn   = module.eks.oidc_provider_arn
  secrets_kms_key_arn = module.kms.key_arns["secrets"]
  github_repository   = var.github_repository
  service_accounts = {
    external-secrets = { namespace = "external-secrets", name = "external-secrets" }
  }
  tags = local.tags
}
