# stg: production topology at smaller sizes.
env                      = "stg"
account_id               = "222222222222"
region                   = "eu-west-1"
azs                      = ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
vpc_cidr                 = "10.20.0.0/16"
single_nat_gateway       = false
system_instance_types    = ["m7i.large"]
system_nodes             = { min = 3, max = 6 }
matching_instance_types  = ["c7i.xlarge"]
matching_nodes           = { min = 2, max = 2 }
msk_broker_instance_type = "kafka.m7g.large"
aurora_instance_class    = "db.r7g.large"
aurora_instance_count    = 2
deletion_protection      = true
backup_retention_days    = 7
redis_node_type          = "cache.r7g.large"
redis_num_cache_clusters = 2
zone_name                = "stg.exchange-lab.example"
api_host                 = "api.stg.exchange-lab.example"
