"""The local stack's region switch (local/outage.py) without the emulator behind it."""
from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Iterator

import pytest

from local.outage import RegionSwitch, caller_key


@pytest.fixture
def switch() -> Iterator[RegionSwitch]:
    server = RegionSwitch(0, "http://127.0.0.1:9")  # any free port; no upstream: these tests never forward
    server.start()
    yield server
    server.shutdown()
    server.server_close()


def test_a_client_that_resets_its_connection_prints_no_traceback(switch: RegionSwitch,
                                                                 capfd: pytest.CaptureFixture[str]) -> None:
    # What every client of the local stack does when it is stopped with keep-alive connections open.
    client = socket.create_connection(("127.0.0.1", switch.server_port))
    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    client.close()  # linger 0: the peer gets a reset, not a FIN
    time.sleep(0.5)  # the handler thread sees the reset at once; the traceback used to appear here
    assert "Traceback" not in capfd.readouterr().err


def test_the_switch_still_answers_after_a_reset(switch: RegionSwitch) -> None:
    client = socket.create_connection(("127.0.0.1", switch.server_port))
    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    client.close()
    with socket.create_connection(("127.0.0.1", switch.server_port), timeout=5) as again:
        again.sendall(b"GET /_outage HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answer = b""
        while chunk := again.recv(4096):  # Connection: close, so the answer ends when the socket does
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"[]")


def test_an_emulator_that_drops_a_forwarded_request_is_reported(capfd: pytest.CaptureFixture[str]) -> None:
    """http.client's RemoteDisconnected is a ConnectionResetError too, but it is the emulator's fault,
    not a client that went away: it must not be silenced with those."""
    with socket.socket() as upstream:
        upstream.bind(("127.0.0.1", 0))
        upstream.listen()

        def drop_one() -> None:
            connection, _ = upstream.accept()
            connection.recv(65536)
            connection.close()

        dropper = threading.Thread(target=drop_one, daemon=True)
        dropper.start()
        server = RegionSwitch(0, f"http://127.0.0.1:{upstream.getsockname()[1]}")
        server.start()
        try:
            with socket.create_connection(("127.0.0.1", server.server_port), timeout=10) as client:
                client.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
                assert client.recv(4096) == b""  # no answer: the connection is closed after the error is printed
        finally:
            server.shutdown()
            server.server_close()
    err = capfd.readouterr().err
    assert "Traceback" in err and "RemoteDisconnected" in err


def test_a_partition_cuts_each_regions_app_from_the_other_region_only() -> None:
    server = RegionSwitch(0, "http://127.0.0.1:9")
    try:
        server.set_down("partition", True)
        assert server.drops(caller_key("us-east-1"), "us-west-2", "dynamodb")
        assert server.drops(caller_key("us-west-2"), "us-east-1", "dynamodb")
        assert not server.drops(caller_key("us-east-1"), "us-east-1", "dynamodb")
        assert not server.drops("testing", "us-east-1", "dynamodb")  # the operator and clients reach both
        assert not server.drops("testing", "us-west-2", "dynamodb")
        server.set_down("partition", False)
        assert not server.drops(caller_key("us-east-1"), "us-west-2", "dynamodb")
    finally:
        server.server_close()


def test_a_region_can_be_taken_away_from_one_caller_only() -> None:
    server = RegionSwitch(0, "http://127.0.0.1:9")
    try:
        server.set_down("us-east-1 from operator", True)
        assert server.drops("operator", "us-east-1", "dynamodb")
        assert not server.drops("operator", "us-west-2", "dynamodb")
        assert not server.drops(caller_key("us-east-1"), "us-east-1", "dynamodb")
        server.set_down("us-east-1/sns", True)
        assert server.drops("anyone", "us-east-1", "sns") and not server.drops("anyone", "us-east-1", "dynamodb")
    finally:
        server.server_close()
