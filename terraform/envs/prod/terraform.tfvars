# prod: one NAT per AZ, 3 Aurora instances, 3 Redis nodes, 30 days of backups.
env                      = "prod"
account_id               = "123456789012"
region                   = "eu-west-1"
azs                      = ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
vpc_cidr                 = "10.30.0.0/16"
single_nat_gateway       = false
system_instance_types    = ["m7i.xlarge"]
system_nodes             = { min = 3, max = 9 }
matching_instance_types  = ["c7i.2xlarge"]
matching_nodes           = { min = 3, max = 3 }
msk_broker_instance_type = "kafka.m7g.xlarge"
aurora_instance_class    = "db.r7g.xlarge"
aurora_instance_count    = 3
deletion_protection      = true
backup_retention_days    = 30
redis_node_type          = "cache.r7g.xlarge"
redis_num_cache_clusters = 3
zone_name                = "exchange-lab.example"
api_host                 = "api.exchange-lab.example"
github_repository        = "exchange-lab/exchange-lab"
pull_account_ids         = ["111111111111", "222222222222"]
