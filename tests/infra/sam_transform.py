"""Run CloudFormation's Serverless transform (AWS's aws-sam-translator) on a SAM template, as the
pipeline's CloudFormation does, and print the CloudFormation template it becomes.

    .venv-sam/bin/python tests/infra/sam_transform.py build/primary/sam.json us-east-1 devops-metrics-prod-app

The translator pins a pydantic older than the app's, so it runs in a virtual environment of its own
(.venv-sam, from requirements-sam.txt) and imports nothing of the project's. The functions' CodeUri
becomes an S3 location first, as `aws cloudformation package` makes it in the pipeline's build.
"""
from __future__ import annotations

import json
import os
import sys

from samtranslator.translator.transform import transform


class NoManagedPolicies:
    """The translator asks for AWS managed policies' ARNs only when a template names one by name; ours name none."""

    def load(self) -> dict[str, str]:
        return {}


def main(path: str, region: str, stack: str) -> None:
    os.environ.setdefault("AWS_DEFAULT_REGION", region)
    with open(path) as handle:
        template = json.load(handle)
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = "s3://artifact-bucket/deployment.zip"
    parameters = {"AWS::Region": region, "AWS::AccountId": "123456789012", "AWS::Partition": "aws",
                  "AWS::StackName": stack}
    json.dump(transform(template, parameters, NoManagedPolicies()), sys.stdout, indent=1)


if __name__ == "__main__":
    main(*sys.argv[1:4])
