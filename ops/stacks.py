"""CloudFormation stacks the operator commands deploy: create or update, then wait."""
from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError, WaiterError

from chalicelib import aws_errors, names

if TYPE_CHECKING:
    from mypy_boto3_cloudformation import CloudFormationClient
    from mypy_boto3_cloudformation.waiter import StackCreateCompleteWaiter, StackUpdateCompleteWaiter

CREATED, UPDATED, UP_TO_DATE = "created", "updated", "up to date"


class StackFailed(SystemExit):
    """A stack did not reach a complete state; the message says where to look and what to do."""


def deploy_stack(cfn: CloudFormationClient, region: str, name: str, template: Path, parameters: Mapping[str, str],
                 capabilities: Sequence[str] = (), tags: Mapping[str, str] | None = None, delay: int = 5,
                 max_attempts: int = 360) -> str:
    """Create the stack, or update it in place when it exists, and wait until it is complete.
    Returns CREATED, UPDATED or UP_TO_DATE (nothing to change). A first create that fails leaves
    nothing behind (OnFailure=DELETE)."""
    args: dict[str, Any] = {
        "StackName": name,
        "TemplateBody": template.read_text(),
        "Parameters": [{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        "Capabilities": list(capabilities),
        "Tags": [{"Key": k, "Value": v} for k, v in {"application": names.APP_NAME, **(tags or {})}.items()],
    }
    if _exists(cfn, region, name):
        try:
            cfn.update_stack(**args)
        except ClientError as error:
            if "No updates are to be performed" not in str(error):
                raise
            return UP_TO_DATE
        waiter: StackCreateCompleteWaiter | StackUpdateCompleteWaiter = cfn.get_waiter("stack_update_complete")
        result = UPDATED
    else:
        cfn.create_stack(**args, OnFailure="DELETE")
        waiter, result = cfn.get_waiter("stack_create_complete"), CREATED
    print(f"  {region} {name}: {'creating' if result == CREATED else 'updating'}...", file=sys.stderr, flush=True)
    try:
        waiter.wait(StackName=name, WaiterConfig={"Delay": delay, "MaxAttempts": max_attempts})
    except WaiterError as error:
        raise StackFailed(f"error: stack {name} in {region} did not finish: {error}; "
                          f"see its events in the CloudFormation console") from None
    return result


def _exists(cfn: CloudFormationClient, region: str, name: str) -> bool:
    try:
        stacks = cfn.describe_stacks(StackName=name)["Stacks"]
    except ClientError as error:
        if aws_errors.is_missing_stack(error):
            return False
        raise
    status = stacks[0]["StackStatus"] if stacks else "DELETE_COMPLETE"
    if status == "ROLLBACK_COMPLETE":
        raise StackFailed(f"error: stack {name} in {region} failed to create earlier and cannot be updated; "
                          f"delete it (aws cloudformation delete-stack --region {region} --stack-name {name}) "
                          f"and run this again")
    return status != "DELETE_COMPLETE"


def stack_outputs(cfn: CloudFormationClient, name: str) -> dict[str, str]:
    stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def stack_parameters(cfn: CloudFormationClient, name: str) -> dict[str, str]:
    stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
    return {p["ParameterKey"]: p["ParameterValue"] for p in stack.get("Parameters", [])}
