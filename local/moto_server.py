"""moto's server, with one repair: TransactWriteItems without a copy of the whole table per item.

moto 5.2.5 makes a deep copy of the table for every operation in a transaction, so that it can roll
back; a 100-operation transaction against a table of a few thousand items takes seconds, and grows
with every test. This version does what DynamoDB documents instead: it checks every operation's
condition against the items as they are, and writes only when all hold, so there is nothing to roll
back. Every other answer, the errors and the cancellation reasons included, is moto's own.

Run: python -m local.moto_server -H 127.0.0.1 -p 5000 (the arguments are moto.server's); in-process
(moto.mock_aws), call repair_transactions() first.
"""
from __future__ import annotations

import sys
from typing import Any

from moto import server
from moto.dynamodb.comparisons import get_filter_expression
from moto.dynamodb.exceptions import (
    MultipleTransactionsException,
    TooManyTransactionsException,
    TransactionCanceledException,
    TransactWriteSingleOpException,
)
from moto.dynamodb.models import DynamoDBBackend

_OPERATIONS = ("ConditionCheck", "Put", "Delete", "Update")


def transact_write_items(backend: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    planned: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
    targets: set[tuple[str, str]] = set()
    reasons: list[Any] = []
    for entry in transact_items:
        if len(entry) > 1:
            raise TransactWriteSingleOpException
        op_type, op = next(iter(entry.items()))
        if op_type not in _OPERATIONS:
            raise ValueError("Unsupported transaction operation")
        table = backend.get_table(op["TableName"])
        if op_type == "Put":
            key = {table.hash_key_attr: op["Item"][table.hash_key_attr]}
            if table.range_key_attr is not None:
                key[table.range_key_attr] = op["Item"][table.range_key_attr]
        else:
            key = op["Key"]
        target = (str(op["TableName"]), str(dict(sorted(key.items()))))
        if target in targets:
            raise MultipleTransactionsException()
        targets.add(target)
        current = backend.get_item(op["TableName"], key)
        condition = op.get("ConditionExpression")
        if condition is not None and not get_filter_expression(
                condition, op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")).expr(current):
            old = current.to_json()["Attributes"] if current and op.get(
                "ReturnValuesOnConditionCheckFailure") == "ALL_OLD" else None
            reasons.append(("ConditionalCheckFailed", "The conditional request failed", old))
        else:
            reasons.append((None, None, None))
        planned.append((op_type, op, key))
    if any(code is not None for code, _, _ in reasons):
        raise TransactionCanceledException(reasons)
    for op_type, op, key in planned:  # every condition held: write, without evaluating them again
        if op_type == "Put":
            backend.put_item(op["TableName"], op["Item"])
        elif op_type == "Delete":
            backend.delete_item(op["TableName"], key)
        elif op_type == "Update":
            backend.update_item(op["TableName"], key, update_expression=op["UpdateExpression"],
                                expression_attribute_names=op.get("ExpressionAttributeNames") or {},
                                expression_attribute_values=op.get("ExpressionAttributeValues") or {})


def repair_transactions() -> None:
    """Put this TransactWriteItems in moto's place, in this process (moto in-process, or its server)."""
    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign,assignment]


def main(argv: list[str]) -> None:
    repair_transactions()
    server.main(argv)


if __name__ == "__main__":
    main(sys.argv[1:])
