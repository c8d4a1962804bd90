# EKS with managed node groups (system + a tainted, dedicated pool for
# matching) and Karpenter for the general workload capacity. Secrets are
# envelope-encrypted with a customer-managed KMS key.
module "eks" {
  source  = "terraform-aws-modules/eks/aws"
  version = "20.31.6"

  cluster_name    = var.name
  cluster_version = var.kubernetes_version

  vpc_id     = var.vpc_id
  subnet_ids = var.private_subnet_ids

  cluster_endpoint_public_access       = var.endpoint_public_access
  cluster_endpoint_public_access_cidrs = var.endpoint_public_access_cidrs
  create_kms_key                       = false
  cluster_encryption_config            = { resources = ["secrets"], provider_key_arn = var.kms_key_arn }
  cluster_enabled_log_types            = ["api", "audit", "authenticator", "controllerManager", "scheduler"]
  enable_irsa                          = true
  authentication_mode                  = "API"

  cluster_addons = {
    coredns                = {}
    kube-proxy             = {}
    vpc-cni                = { before_compute = true, configuration_values = jsonencode({ enableNetworkPolicy = "true" }) }
    eks-pod-identity-agent = {}
    aws-ebs-csi-driver     = {}
  }

  eks_managed_node_groups = {
    # x86_64: images.yml builds linux/amd64 images.
    system = {
      ami_type       = "AL2023_x86_64_STANDARD"
      instance_types = var.system_instance_types
      min_size       = var.system_nodes.min
      max_size       = var.system_nodes.max
      desired_size   = var.system_nodes.min
      labels         = { "exchange-lab.io/pool" = "system" }
    }
    # matching: Guaranteed QoS pods pinned to whole cores by the static CPU manager.
    matching = {
      ami_type       = "AL2023_x86_64_STANDARD"
      instance_types = var.matching_instance_types
      min_size       = var.matching_nodes.min
      max_size       = var.matching_nodes.max
      desired_size   = var.matching_nodes.min
      labels         = { "exchange-lab.io/pool" = "matching" }
      taints = {
        dedicated = { key = "exchange-lab.io/dedicated", value = "matching", effect = "NO_SCHEDULE" }
      }
      cloudinit_pre_nodeadm = [{
        content_type = "application/node.eks.aws"
        content      = <<-EOT
          apiVersion: node.eks.aws/v1alpha1
          kind: NodeConfig
          spec:
            kubelet:
              config:
                cpuManagerPolicy: static
                reservedSystemCPUs: "0"
        EOT
      }]
    }
  }

  node_security_group_tags = { "karpenter.sh/discovery" = var.name }
  tags                     = var.tags
}

module "karpenter" {
  source  = "terraform-aws-modules/eks/aws//modules/karpenter"
  version = "20.31.6"

  cluster_name                    = module.eks.cluster_name
  enable_pod_identity             = true
  create_pod_identity_association = true
  namespace                       = "kube-system"
  service_account                 = "karpenter"
  # Fixed names: k8s/platform/karpenter/<env> and the chart values refer to them.
  queue_name                    = "${var.name}-karpenter"
  node_iam_role_use_name_prefix = false
  node_iam_role_name            = "${var.name}-karpenter-node"
  node_iam_role_additional_policies = {
    AmazonSSMManagedInstanceCore = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"
  }
  tags = var.tags
}
