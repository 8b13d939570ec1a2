"""The delivery pipeline: CloudFormation templates, the buildspec, and the command that deploys them."""
