# dev: smallest sizes, one NAT gateway; still encrypted everywhere, still protected.
env                      = "dev"
account_id               = "111111111111"
region                   = "eu-west-1"
azs                      = ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
vpc_cidr                 = "10.10.0.0/16"
single_nat_gateway       = true
system_instance_types    = ["m7i.large"]
system_nodes             = { min = 2, max = 4 }
matching_instance_types  = ["c7i.large"]
matching_nodes           = { min = 1, max = 1 }
msk_broker_instance_type = "kafka.t3.small"
aurora_instance_class    = "db.t4g.medium"
aurora_instance_count    = 1
deletion_protection      = true
backup_retention_days    = 3
redis_node_type          = "cache.t4g.small"
redis_num_cache_clusters = 2
zone_name                = "dev.exchange-lab.example"
api_host                 = "api.dev.exchange-lab.example"
