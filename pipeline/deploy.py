"""Deploy the delivery pipeline: the artifact store in both regions, then the pipeline in us-east-1.

    python -m pipeline deploy --stage prod --email ops@example.com
    python -m pipeline deploy --stage prod --connection-arn arn:aws:codeconnections:...:connection/... \
        --repository my-org/devops-metrics          # the source in GitHub or GitLab instead of CodeCommit

Each stack is created, or updated in place when it exists; a stack with nothing to change is left
alone. --endpoint-url points everything at an AWS emulator instead of AWS.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from chalicelib import constants as C
from chalicelib import names
from ops.regions import Regions
from ops.stacks import deploy_stack, stack_outputs
from ops.templates import ARTIFACTS_TEMPLATE, PIPELINE_TEMPLATE


def _deploy(regions: Regions, region: str, name: str, template: Path, parameters: dict[str, str]) -> dict[str, str]:
    cfn = regions.cloudformation(region)
    result = deploy_stack(cfn, region, name, template, parameters, capabilities=["CAPABILITY_IAM"])
    print(f"  {region} {name}: {result}")
    return stack_outputs(cfn, name)


def deploy(stage: str, email: str, branch: str, endpoint_url: str | None = None, connection_arn: str = "",
           repository: str = "") -> dict[str, str]:
    regions = Regions(stage, endpoint_url)
    stores = {region: _deploy(regions, region, names.stack(stage, "pipeline-artifacts"), ARTIFACTS_TEMPLATE,
                              {"Stage": stage})
              for region in C.REGIONS}
    return _deploy(regions, C.PRIMARY_REGION, names.stack(stage, "pipeline"), PIPELINE_TEMPLATE, {
        "Stage": stage,
        "BranchName": branch,
        "ConnectionArn": connection_arn,
        "RepositoryId": repository,
        "AlertEmail": email,
        "PrimaryArtifactBucket": stores[C.PRIMARY_REGION]["ArtifactBucketName"],
        "PrimaryArtifactKeyArn": stores[C.PRIMARY_REGION]["ArtifactKeyArn"],
        "DrArtifactBucket": stores[C.DR_REGION]["ArtifactBucketName"],
        "DrArtifactKeyArn": stores[C.DR_REGION]["ArtifactKeyArn"],
    })


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("deploy", help="create or update the pipeline stacks")
    run.add_argument("--stage", choices=["dev", "prod"], required=True)
    run.add_argument("--email", default="", help="address for failure e-mails (confirm the subscription e-mail)")
    run.add_argument("--branch", default="main", help="branch that triggers the pipeline (default main)")
    run.add_argument("--connection-arn", default="",
                     help="a CodeConnections connection to GitHub or GitLab: the source is --repository there, "
                          "not a CodeCommit repository")
    run.add_argument("--repository", default="", help="with --connection-arn: the repository, as owner/name")
    run.add_argument("--endpoint-url", help="an AWS emulator's endpoint instead of AWS")
    args = parser.parse_args(argv)
    if bool(args.connection_arn) != bool(args.repository):
        parser.error("--connection-arn and --repository go together")
    print(f"Deploying the {names.pipeline(args.stage)} pipeline")
    outputs = deploy(args.stage, args.email, args.branch, args.endpoint_url, args.connection_arn, args.repository)
    if args.connection_arn:
        print(f"""
Pipeline    {outputs['PipelineName']} ({C.PRIMARY_REGION})
Source      {args.repository} through {args.connection_arn}
Alerts      {outputs['AlertTopicArn']}

Next: push to {args.branch} in {args.repository}, and the pipeline runs.""")
    else:
        print(f"""
Pipeline    {outputs['PipelineName']} ({C.PRIMARY_REGION})
Repository  {outputs['RepositoryCloneUrl']}
Alerts      {outputs['AlertTopicArn']}

Next: push this repository to it, and the pipeline runs:
  git remote add codecommit codecommit::{C.PRIMARY_REGION}://{names.pipeline(args.stage)}
  git push codecommit HEAD:{args.branch}""")
    if args.email:
        print(f"\nConfirm the subscription e-mail sent to {args.email} to receive failure alerts.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
