"""Deploy the delivery pipeline: the artifact store in both regions, then the pipeline in us-east-1.

    python -m pipeline deploy --stage prod --email ops@example.com

Each stack is created, or updated in place when it exists; a stack with nothing to change is left
alone. --endpoint-url points everything at an AWS emulator instead of AWS.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError, WaiterError

HERE = Path(__file__).resolve().parent
PRIMARY_REGION = "us-east-1"
DR_REGION = "us-west-2"


def artifacts_stack(stage: str) -> str:
    return f"devops-metrics-{stage}-pipeline-artifacts"


def pipeline_stack(stage: str) -> str:
    return f"devops-metrics-{stage}-pipeline"


class StackDeployer:
    def __init__(self, region: str, endpoint_url: str | None = None) -> None:
        self.region = region
        self._cfn = boto3.client("cloudformation", region_name=region, endpoint_url=endpoint_url)

    def deploy(self, name: str, template: Path, parameters: dict[str, str]) -> dict[str, str]:
        """Create or update one stack and wait for it; returns its outputs."""
        args: dict[str, Any] = {
            "StackName": name,
            "TemplateBody": template.read_text(),
            "Parameters": [{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
            "Capabilities": ["CAPABILITY_IAM"],
            "Tags": [{"Key": "application", "Value": "devops-metrics"}],
        }
        waiter = "stack_update_complete"
        if self._exists(name):
            try:
                self._cfn.update_stack(**args)
            except ClientError as error:
                if "No updates are to be performed" not in str(error):
                    raise
                print(f"  {self.region} {name}: up to date")
                return self.outputs(name)
        else:
            self._cfn.create_stack(**args, OnFailure="DELETE")  # a failed first create leaves nothing behind
            waiter = "stack_create_complete"
        print(f"  {self.region} {name}: {'creating' if waiter == 'stack_create_complete' else 'updating'}...")
        try:
            self._cfn.get_waiter(waiter).wait(StackName=name, WaiterConfig={"Delay": 5, "MaxAttempts": 360})
        except WaiterError as error:
            raise SystemExit(f"error: stack {name} in {self.region} did not finish: {error}; "
                             f"see its events in the CloudFormation console") from None
        print(f"  {self.region} {name}: done")
        return self.outputs(name)

    def _exists(self, name: str) -> bool:
        try:
            stacks = self._cfn.describe_stacks(StackName=name)["Stacks"]
        except ClientError as error:
            if "does not exist" in str(error):
                return False
            raise
        status = stacks[0]["StackStatus"] if stacks else "DELETE_COMPLETE"
        if status == "ROLLBACK_COMPLETE":
            raise SystemExit(f"error: stack {name} in {self.region} failed to create earlier and cannot be updated; "
                             f"delete it (aws cloudformation delete-stack --region {self.region} --stack-name {name}) "
                             f"and run this again")
        return status != "DELETE_COMPLETE"

    def outputs(self, name: str) -> dict[str, str]:
        stack = self._cfn.describe_stacks(StackName=name)["Stacks"][0]
        return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def deploy(stage: str, email: str, branch: str, endpoint_url: str | None = None) -> dict[str, str]:
    stores = {}
    for region in (PRIMARY_REGION, DR_REGION):
        stores[region] = StackDeployer(region, endpoint_url).deploy(
            artifacts_stack(stage), HERE / "artifacts.yaml", {"Stage": stage})
    return StackDeployer(PRIMARY_REGION, endpoint_url).deploy(pipeline_stack(stage), HERE / "pipeline.yaml", {
        "Stage": stage,
        "BranchName": branch,
        "AlertEmail": email,
        "PrimaryArtifactBucket": stores[PRIMARY_REGION]["ArtifactBucketName"],
        "PrimaryArtifactKeyArn": stores[PRIMARY_REGION]["ArtifactKeyArn"],
        "DrArtifactBucket": stores[DR_REGION]["ArtifactBucketName"],
        "DrArtifactKeyArn": stores[DR_REGION]["ArtifactKeyArn"],
    })


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("deploy", help="create or update the pipeline stacks")
    run.add_argument("--stage", choices=["dev", "prod"], required=True)
    run.add_argument("--email", default="", help="address for failure e-mails (confirm the subscription e-mail)")
    run.add_argument("--branch", default="main", help="branch that triggers the pipeline (default main)")
    run.add_argument("--endpoint-url", help="an AWS emulator's endpoint instead of AWS")
    args = parser.parse_args(argv)
    print(f"Deploying the devops-metrics-{args.stage} pipeline")
    outputs = deploy(args.stage, args.email, args.branch, args.endpoint_url)
    print(f"""
Pipeline    {outputs['PipelineName']} ({PRIMARY_REGION})
Repository  {outputs['RepositoryCloneUrl']}
Alerts      {outputs['AlertTopicArn']}

Next: push this repository to it, and the pipeline runs:
  git remote add codecommit codecommit::{PRIMARY_REGION}://devops-metrics-{args.stage}
  git push codecommit HEAD:{args.branch}""")
    if args.email:
        print(f"\nConfirm the subscription e-mail sent to {args.email} to receive failure alerts.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
