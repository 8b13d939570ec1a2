"""Policy statements as the template tests read them."""
from __future__ import annotations

from typing import Any


def policy_statements(node: Any) -> list[dict[str, Any]]:
    """Every statement of every policy document (IAM, key, bucket, topic) anywhere in a template; a
    statement chosen by a condition counts with each of its choices."""
    found = []
    if isinstance(node, dict):
        if "Statement" in node and isinstance(node["Statement"], list):
            for statement in node["Statement"]:
                choices = statement["Fn::If"][1:] if "Fn::If" in statement else [statement]
                found += [c for c in choices if c not in ({"Ref": "AWS::NoValue"}, {"Fn::Ref": "AWS::NoValue"})]
        for value in node.values():
            found += policy_statements(value)
    elif isinstance(node, list):
        for value in node:
            found += policy_statements(value)
    return found


def actions(statement: dict[str, Any]) -> list[str]:
    action = statement.get("Action", [])
    return action if isinstance(action, list) else [action]
