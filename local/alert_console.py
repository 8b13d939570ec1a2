"""The local stand-in for the alert e-mails: an SQS queue subscribed to each region's alert topic,
and a thread that prints every message as it would arrive by e-mail (subject and body)."""
from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable
from typing import Any, TextIO

QUEUE_NAME = "devops-metrics-{stage}-alert-console"


def subscribe_queue(sqs: Any, sns: Any, topic_arn: str, stage: str) -> str:
    """Create the console's queue and subscribe it to the topic; returns the queue URL."""
    url = sqs.create_queue(QueueName=QUEUE_NAME.format(stage=stage))["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=arn)
    return str(url)


def as_email(region: str, body: str) -> str:
    """One SNS notification (as delivered to SQS) in the form the e-mail would take."""
    try:
        note = json.loads(body)
    except ValueError:
        note = {"Message": body}
    subject = note.get("Subject") or "(no subject)"
    rule = "-" * 78
    return (f"\n{rule}\nALERT e-mail from the {region} topic\nSubject: {subject}\n\n"
            f"{note.get('Message', '')}\n{rule}\n")


class AlertConsole:
    def __init__(self, queues: dict[str, str], sqs: Callable[[str], Any], out: TextIO | None = None) -> None:
        self.queues = queues  # region -> queue URL
        self.sqs = sqs  # region -> SQS client
        self.out = out or sys.stdout
        self.printed = 0
        self._stop = threading.Event()

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self._run, name="alert-console", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self._stop.set()

    def poll_once(self) -> int:
        shown = 0
        for region, url in self.queues.items():
            client = self.sqs(region)
            messages = client.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
            for message in messages.get("Messages", []):
                print(as_email(region, message["Body"]), file=self.out, flush=True)
                client.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
                shown += 1
        self.printed += shown
        return shown

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            try:
                self.poll_once()
            except Exception as error:  # noqa: BLE001 - the region may be "away": keep polling
                if "Could not connect" not in str(error) and "Connection" not in type(error).__name__:
                    print(f"==> alert console: {type(error).__name__}: {error}", flush=True)
