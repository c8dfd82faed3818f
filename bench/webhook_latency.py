"""Measurement 7: the real-time path's latency, Appcues webhook -> Salesforce Event.

Starts `appcues-webhook-receiver` (its console script, a child process on loopback), points
the sandbox's webhook sender at it, and posts integration events to the Appcues API at a
steady rate (10 and 100 events/s by default) for a fixed time, each stamped with the moment
it is posted. Latency is the Salesforce Event's `CreatedDate` minus the event's time (the
moment posted, to the millisecond, found by the Event's user and `ActivityDateTime`), both
on the sandbox clock (the real clock here). `CreatedDate` keeps whole seconds (as Salesforce
does), truncated, so each figure is a range: the creation was within the second after it;
the goals are held against the top of the range. Also: Salesforce calls per 1,000 events
(sandbox stats, OAuth excluded) and the receiver's peak RSS (VmHWM).

    python bench/webhook_latency.py [--rates 10 100] [--seconds 60]
"""

from __future__ import annotations

import argparse
import json
import math
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests
from harness import Sandbox, child_env, plugin, salesforce_settings, write_json

from salesforce_appcues_clients.salesforce import SalesforceClient
from salesforce_appcues_clients.settings import USER_ID_FIELD
from salesforce_appcues_sandbox.common import identities

SEED = 13
SECRET = "bench-webhook-secret"
NAMES = (
    "appcues:flow_completed",
    "appcues:checklist_item_completed",
    "appcues:goal_reached",
    "appcues:nps_score",
    "appcues:nps_feedback",
)
POSTERS = 8  # threads posting events, so the rate holds while some posts are slow


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return math.nan
    index = min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))
    return round(ordered[index], 3)


def _peak_rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def _users(sandbox: Sandbox, contacts: int) -> list[str]:
    sandbox.seed_salesforce(seed=SEED, Contact=contacts)
    return [
        identities.user_id("contact", i)
        for i in range(contacts)
        if identities.has_user_id(SEED, "contact", i)
    ]


class _Poster:
    """Posts `total` events at `rate` per second to the Appcues API, from POSTERS threads."""

    def __init__(self, sandbox: Sandbox, users: list[str], rate: float, total: int, tag: str):
        ac = sandbox.connection["appcues"]
        self.base = f"{ac['base_url']}/v2/accounts/{ac['account_id']}/users"
        self.auth = (ac["api_key"], ac["api_secret"])
        self.ca = sandbox.ca_bundle
        self.users, self.rate, self.total, self.tag = users, rate, total, tag
        self.next = 0
        self.lock = threading.Lock()
        self.late = 0  # posts that started more than 100 ms after their slot
        self.errors: list[str] = []
        # (user, the event time's whole second) -> the event time: Salesforce keeps whole
        # seconds of ActivityDateTime, this keeps the fraction (a user posts every 18 s or
        # more here, so the key is one event)
        self.moments: dict[tuple[str, int], float] = {}

    def run(self) -> None:
        start = time.monotonic() + 0.5
        threads = [
            threading.Thread(target=self._work, args=(start,), daemon=True) for _ in range(POSTERS)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    def _work(self, start: float) -> None:
        with requests.Session() as http:
            http.trust_env = False
            http.verify = self.ca
            while True:
                with self.lock:
                    i = self.next
                    self.next += 1
                if i >= self.total:
                    return
                slot = start + i / self.rate
                pause = slot - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                elif pause < -0.1:
                    self.late += 1
                now = datetime.now(UTC)
                moment = now.isoformat(timespec="milliseconds")
                event = {
                    "name": NAMES[i % len(NAMES)],
                    "timestamp": moment.replace("+00:00", "Z"),
                    "attributes": {
                        "bench": self.tag,
                        "n": i,
                        "score": i % 11,
                        "feedback": f"f{i}",
                        "flowName": "Bench",
                    },
                }
                user = self.users[i % len(self.users)]
                at = datetime.fromisoformat(moment).timestamp()
                with self.lock:
                    self.moments[(user, math.floor(at))] = at
                answer = http.post(
                    f"{self.base}/{user}/events", json=event, auth=self.auth, timeout=60
                )
                if answer.status_code >= 300:
                    self.errors.append(f"{answer.status_code} {answer.text[:200]}")


def _receiver(sandbox: Sandbox, workdir: Path) -> tuple[subprocess.Popen[bytes], str, str]:
    port = _free_port()
    config = write_json(
        workdir / "receiver.json",
        {
            **salesforce_settings(sandbox),
            "state_dir": str(workdir / "receiver-state"),
            "webhook_port": port,
            "webhook_secrets": [SECRET],
        },
    )
    with (workdir / "receiver.log").open("wb") as log:
        process = subprocess.Popen(
            [plugin("appcues-webhook-receiver"), "serve", "--config", str(config)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=child_env(sandbox),
            cwd=workdir,
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    with requests.Session() as http:
        http.trust_env = False
        while time.monotonic() < deadline:
            try:
                if http.get(f"{base}/healthz", timeout=1).status_code == 200:
                    return process, base, f"{base}/appcues/webhooks"
            except requests.ConnectionError:
                time.sleep(0.1)
    process.kill()
    raise RuntimeError("the receiver did not start:\n" + (workdir / "receiver.log").read_text())


def _wait_drained(sandbox: Sandbox, base: str, total: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    with requests.Session() as http:
        http.trust_env = False
        while time.monotonic() < deadline:
            sent = len(sandbox.ac.call("GET", "webhooks")["deliveries"])
            depth = http.get(f"{base}/healthz", timeout=10).json()["spool_depth"]
            if sent >= total and depth == 0:
                return
            time.sleep(0.2)
    raise RuntimeError(f"not drained within {timeout} s")


def _latencies(
    sandbox: Sandbox, since: str, tag_count: int, moments: dict[tuple[str, int], float]
) -> tuple[list[float], list[float]]:
    """Each Event's latency as a (low, high) range: CreatedDate keeps whole seconds
    (truncated), so the creation was in [CreatedDate, CreatedDate + 1); the event time is
    the poster's own, to the millisecond, found by the Contact's user and ActivityDateTime's
    whole second (without it, ActivityDateTime's whole second, one more second of doubt)."""
    client = SalesforceClient.from_config(
        {**salesforce_settings(sandbox), "quota_percent_total": 100, "quota_percent_per_run": 100}
    )
    try:
        rows = list(
            client.query(
                "SELECT WhoId, ActivityDateTime, CreatedDate FROM Event "
                f"WHERE CreatedDate >= {since}"
            )
        )
        users = {
            str(r["Id"]): str(r[USER_ID_FIELD])
            for r in client.query(
                f"SELECT Id, {USER_ID_FIELD} FROM Contact WHERE {USER_ID_FIELD} != null"
            )
        }
    finally:
        client.close()
    if len(rows) != tag_count:
        raise RuntimeError(f"{len(rows)} Events for {tag_count} events posted")

    def instant(text: str) -> float:
        return datetime.fromisoformat(
            text.replace("Z", "+00:00").replace("+0000", "+00:00")
        ).timestamp()

    low: list[float] = []
    high: list[float] = []
    for r in rows:
        created, activity = instant(r["CreatedDate"]), instant(r["ActivityDateTime"])
        at = moments.get((users.get(str(r["WhoId"]), ""), math.floor(activity)))
        if at is None:  # not found: the event time is only known to its whole second
            low.append(max(0.0, created - activity - 1))
            high.append(created + 1 - activity)
        else:
            low.append(max(0.0, created - at))
            high.append(created + 1 - at)
    return low, high


def measure(
    sandbox: Sandbox, workdir: Path, users: list[str], rate: float, seconds: float
) -> dict[str, Any]:
    workdir.mkdir(parents=True, exist_ok=True)
    sandbox.ac.reset()
    # Real time: earlier sections moved the shared sandbox clock on, and the receiver refuses
    # a delivery whose signed timestamp is outside its window of the local clock.
    sandbox.sf.reset_clock()
    sandbox.ac.call("POST", "settings", {"rate_limit_per_second": 100_000})
    process, base, url = _receiver(sandbox, workdir)
    try:
        sandbox.ac.call(
            "POST",
            "webhooks",
            {
                "url": url,
                "secret": SECRET,
                "events": list(NAMES),
                "backoff_seconds": 0.2,
                "max_attempts": 10,
            },
        )
        total = int(rate * seconds)
        since = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        time.sleep(1)  # CreatedDate >= since holds whole seconds
        poster = _Poster(sandbox, users, rate, total, f"{rate:g}/s")
        with sandbox.measured() as calls:
            started = time.monotonic()
            poster.run()
            posted_in = time.monotonic() - started
            _wait_drained(sandbox, base, total, timeout=seconds * 5 + 120)
        rss = _peak_rss_mb(process.pid)
        sandbox.ac.call("DELETE", "webhooks")
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if poster.errors:
        raise RuntimeError(f"{len(poster.errors)} posts failed: {poster.errors[:3]}")
    low, high = _latencies(sandbox, since, total, poster.moments)
    figures = {q: _percentile(low, q) for q in (50, 95, 99)}
    upper = {q: _percentile(high, q) for q in (50, 95, 99)}
    return {
        "rate_per_second": rate,
        "seconds": seconds,
        "events": total,
        "posted_in_seconds": round(posted_in, 1),
        "posts_late": poster.late,
        "latency_seconds": {f"p{q}": v for q, v in figures.items()},
        "latency_upper_bound_seconds": {f"p{q}": round(v, 3) for q, v in upper.items()},
        "salesforce_calls": calls["salesforce_calls"],
        "salesforce_calls_per_1000": round(calls["salesforce_calls"] * 1000 / total, 1),
        "salesforce_calls_by_path": calls["salesforce_calls_by_path"],
        "receiver_peak_rss_mb": rss,
    }


def run(
    sandbox: Sandbox, workdir: Path, rates: tuple[float, ...] = (10, 100), seconds: float = 60
) -> dict[str, Any]:
    users = _users(sandbox, 2_000)
    return {
        f"{rate:g}_per_second": measure(sandbox, workdir / f"rate-{rate:g}", users, rate, seconds)
        for rate in rates
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", type=float, nargs="+", default=[10, 100])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--workdir", type=Path, default=Path("bench/.work/webhook-latency"))
    args = parser.parse_args()
    from salesforce_appcues_sandbox.server import SandboxProcess

    with SandboxProcess() as proc:
        sandbox = Sandbox(proc.connection, proc.process.pid if proc.process else None)
        result = run(sandbox, args.workdir.resolve(), tuple(args.rates), args.seconds)
    json.dump(result, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
