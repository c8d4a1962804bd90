# Three AZs: public (load balancers, NAT), private (EKS nodes), database
# (Aurora), elasticache (Redis) and intra (MSK) subnets, flow logs on.
module "vpc" {
  source  = "terraform-aws-modules/vpc/aws"
  version = "5.17.0"

  name = var.name
  cidr = var.cidr
  azs  = var.azs

  public_subnets      = [for i in range(3) : cidrsubnet(var.cidr, 8, i)]
  private_subnets     = [for i in range(3) : cidrsubnet(var.cidr, 4, i + 1)]
  database_subnets    = [for i in range(3) : cidrsubnet(var.cidr, 8, i + 100)]
  elasticache_subnets = [for i in range(3) : cidrsubnet(var.cidr, 8, i + 110)]
  intra_subnets       = [for i in range(3) : cidrsubnet(var.cidr, 8, i + 120)]

  enable_nat_gateway     = true
  single_nat_gateway     = var.single_nat_gateway
  one_nat_gateway_per_az = !var.single_nat_gateway
  enable_dns_hostnames   = true
  enable_dns_support     = true

  enable_flow_log                      = true
  create_flow_log_cloudwatch_log_group = true
  create_flow_log_cloudwatch_iam_role  = true
  flow_log_max_aggregation_interval    = 60

  public_subnet_tags  = { "kubernetes.io/role/elb" = "1" }
  private_subnet_tags = { "kubernetes.io/role/internal-elb" = "1", "karpenter.sh/discovery" = var.name }

  tags = var.tags
}
