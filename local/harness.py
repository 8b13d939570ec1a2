"""What the local stack, its workers and the tests share to run the app outside AWS: a free port,
the context object Lambda hands a handler, and an inbox that receives a topic's messages through
SQS (the local stand-in for an e-mail subscription)."""
from __future__ import annotations

import json
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sqs import SQSClient



def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LambdaContext:
    """What Lambda hands the handler: its name (the function names derive from it), its ARN, and
    enough else for Chalice's handler wrappers."""

    function_name: str = "local"
    invoked_function_arn: str = ""
    aws_request_id: str = "local"
    memory_limit_in_mb: int = 512
    remaining_millis: int = 300_000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_millis


@dataclass(frozen=True)
class Mail:
    subject: str
    body: str


class Inbox:
    """An SQS queue subscribed to an SNS topic: each message is one e-mail the topic would send."""

    def __init__(self, sqs: SQSClient, sns: SNSClient, topic_arn: str, queue_name: str) -> None:
        self.sqs, self.sns, self.topic_arn = sqs, sns, topic_arn
        self.url = str(sqs.create_queue(QueueName=queue_name)["QueueUrl"])
        arn = sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.subscription = str(sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=arn)["SubscriptionArn"])

    def receive(self, wait_seconds: int = 0) -> list[Mail]:
        """What has arrived since the last call (each message once)."""
        mails: list[Mail] = []
        while True:
            got = self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10,
                                           WaitTimeSeconds=wait_seconds).get("Messages", [])
            if not got:
                return mails
            for message in got:
                mails.append(as_mail(message["Body"]))
                self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"])
            wait_seconds = 0

    def close(self) -> None:
        self.sns.unsubscribe(SubscriptionArn=self.subscription)
        self.sqs.delete_queue(QueueUrl=self.url)


def as_mail(body: str) -> Mail:
    """One SNS notification as delivered to SQS, as the e-mail would carry it."""
    try:
        note = json.loads(body)
    except ValueError:
        note = {"Message": body}
    return Mail(str(note.get("Subject") or "(no subject)"), str(note.get("Message", "")))
