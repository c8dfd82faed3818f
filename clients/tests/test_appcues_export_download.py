"""The analytics export download: spooled to disk, retried, parsed row by row, each row once."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest

from salesforce_appcues_clients.errors import AppcuesError


def _spec(user: str) -> dict[str, object]:
    return {
        "columns": ["timestamp", "user_id", "name"],
        "conditions": [["user_id", "==", user]],
        "order_by": [["timestamp", "asc"]],
        "start_time": (datetime.now(UTC) - timedelta(days=1)).date().isoformat(),
        "end_time": (datetime.now(UTC) + timedelta(days=1)).date().isoformat(),
        "timezone": "UTC",
    }


def test_a_reset_export_download_is_retried(ac, ac_control, tag):
    user = f"{tag}-x"
    base = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    rows = [
        {"user_id": user, "name": f"e{i}", "timestamp": (base + timedelta(seconds=i)).isoformat()}
        for i in range(1500)
    ]
    assert ac.wait_for_job(ac.import_events(rows)).processed_rows == 1500
    ac_control.faults({"action": "reset", "times": 1, "match": {"path": "^/downloads/exports/"}})
    names = [r["name"] for r in ac.analytics_export(_spec(user), timeout=60)]
    assert ac_control.fired() == 1
    assert names == [f"e{i}" for i in range(1500)]


@contextmanager
def _cutting_server(body: bytes, cut_at: int) -> Iterator[tuple[str, list[int]]]:
    """A plain-HTTP file server whose first answer announces the whole body, sends `cut_at`
    bytes and closes the connection; later answers are whole. Yields the URL and the byte
    counts sent per connection."""
    listener = socket.create_server(("127.0.0.1", 0))
    sent: list[int] = []

    def serve() -> None:
        while len(sent) < 2:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                request = b""
                while b"\r\n\r\n" not in request:
                    request += conn.recv(4096)
                part = body[:cut_at] if not sent else body
                head = (
                    f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
                ).encode()
                conn.sendall(head + part)
                sent.append(len(part))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/export.json", sent
    finally:
        listener.close()
        thread.join(timeout=5)


def test_a_download_cut_midway_is_fetched_again_and_each_row_read_once(ac):
    rows = [{"timestamp": f"2026-01-01T00:00:{i % 60:02d}.000Z", "n": i} for i in range(2000)]
    body = json.dumps(rows).encode()
    with _cutting_server(body, cut_at=len(body) // 2) as (url, sent):
        got = list(ac._download_rows(url))
    assert [r["n"] for r in got] == list(range(2000))  # each row once, in file order
    assert sent == [len(body) // 2, len(body)]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"rows": []}', "not a JSON array"),
        (b"[1, 2]", "not an object"),
        (b'[{"a": 1}, {"b": ', "not valid JSON"),
    ],
)
def test_a_body_that_is_not_an_array_of_rows_is_refused(ac, body, message):
    with _cutting_server(body, cut_at=len(body)) as (url, _), pytest.raises(AppcuesError) as info:
        list(ac._download_rows(url))
    assert message in str(info.value)
