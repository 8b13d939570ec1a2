"""The local stand-in for the alert e-mails: an inbox (an SQS queue) subscribed to each region's
alert topic, and a thread that prints every message as it would arrive by e-mail."""
from __future__ import annotations

import sys
import threading
from typing import TextIO

from chalicelib.aws_errors import first_line
from local.harness import Inbox, Mail

QUEUE_NAME = "devops-metrics-{stage}-alert-console"


def as_email(region: str, mail: Mail) -> str:
    rule = "-" * 78
    return f"\n{rule}\nALERT e-mail from the {region} topic\nSubject: {mail.subject}\n\n{mail.body}\n{rule}\n"


class AlertConsole:
    def __init__(self, inboxes: dict[str, Inbox], out: TextIO | None = None) -> None:
        self.inboxes = inboxes  # region -> its alert topic's inbox
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
        for region, inbox in self.inboxes.items():
            for mail in inbox.receive():
                print(as_email(region, mail), file=self.out, flush=True)
                shown += 1
        self.printed += shown
        return shown

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            try:
                self.poll_once()
            except Exception as error:  # noqa: BLE001 - the region may be "away": keep polling
                if "Connection" not in type(error).__name__ and "Could not connect" not in str(error):
                    print(f"==> alert console: {type(error).__name__}: {first_line(error)}", flush=True)
