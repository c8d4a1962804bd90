# State in S3, encrypted, locked with S3 conditional writes (use_lockfile,
# terraform >= 1.10). The bucket is created once per account (docs/deploy.md).
terraform {
  backend "s3" {
    bucket       = "exchange-lab-tfstate-dev"
    key          = "envs/dev/terraform.tfstate"
    region       = "eu-west-1"
    encrypt      = true
    use_lockfile = true
  }
}
