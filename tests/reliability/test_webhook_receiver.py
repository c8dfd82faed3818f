"""The real-time path: the sandbox's webhook sender -> `appcues-webhook-receiver` (a real
process on loopback) -> Salesforce, checked against the source of truth like the poll job.

Scenarios: every integration event by webhook, then the poll job over the same period
(0 new Events); Salesforce 5xx/429/session expiry during the drain; the receiver SIGKILLed
mid-batch and restarted on the same spool; sender retries after a timeout; a delivery
replayed an hour later; tampered body; wrong secret; secret rotation; another scheme.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import requests

pytestmark = pytest.mark.slow

SECRET = "whsec-reliability-5c1e"
NEXT_SECRET = "whsec-rotated-91ab"
SF_WRITE = r"/services/data/v[\d.]+/composite/sobjects"
SF_QUERY = r"/services/data/v[\d.]+/query"
EVENT_NAMES = [
    "appcues:nps_score",
    "appcues:nps_feedback",
    "appcues:nps_score_and_feedback",
    "appcues:flow_completed",
    "appcues:checklist_item_completed",
    "appcues:checklist_completed",
    "appcues:goal_reached",
]
# uvicorn ends a SIGTERMed server by raising the signal again once shut down cleanly
STOPPED = (0, -signal.SIGTERM)
SEED = {"seed": 5, "Account": 10, "Contact": 250, "Lead": 50, "unknown_users": 5}

H = SimpleNamespace()


@pytest.fixture(autouse=True)
def _bind(harness):
    H.__dict__.update({k: getattr(harness, k) for k in dir(harness) if not k.startswith("__")})


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Receiver:
    """`appcues-webhook-receiver serve` as a child process on a fixed loopback port, so a
    restart on the same spool is reached at the same URL."""

    def __init__(self, world: Any, workdir: Path, **overrides: Any) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        self.port = free_port()
        self.config = {
            **world.salesforce_config(),
            "state_dir": str(workdir / "receiver-state"),
            "webhook_port": self.port,
            "webhook_secrets": [SECRET],
            "webhook_batch_max_age_ms": 100,
            "webhook_retry_max_seconds": 1,
            **overrides,
        }
        self.config_path = workdir / "receiver.json"
        self.config_path.write_text(json.dumps(self.config))
        self.url = f"http://127.0.0.1:{self.port}/appcues/webhooks"
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.http = requests.Session()
        self.http.trust_env = False

    def start(self) -> Receiver:
        self.starts += 1
        with (self.workdir / f"receiver-{self.starts}.log").open("wb") as log:
            self.process = self._spawn(log)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log()
            try:
                if self.http.get(self.base("/healthz"), timeout=1).status_code == 200:
                    return self
            except requests.ConnectionError:
                pass
            time.sleep(0.05)
        raise AssertionError("the receiver did not come up:\n" + self.log())

    def _spawn(self, log: Any) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [H.bin / "appcues-webhook-receiver", "serve", "--config", self.config_path],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.workdir,
            env={**os.environ, **H.debug_env},
        )

    def base(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def log(self) -> str:
        return "".join(
            p.read_text(errors="replace") for p in sorted(self.workdir.glob("receiver-*.log"))
        )

    def health(self) -> dict[str, Any]:
        return dict(self.http.get(self.base("/healthz"), timeout=5).json())

    def metrics(self) -> dict[str, float]:
        text = self.http.get(self.base("/metrics"), timeout=5).text
        found: dict[str, float] = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                found[name] = float(value)
        return found

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> int:
        """SIGTERM: uvicorn stops accepting, the worker finishes its batch."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.http.close()
        H.remember(f"webhook receiver ({self.workdir.name})", self.log() + self.files())
        return int(self.process.returncode)

    def files(self) -> str:
        state = Path(self.config["state_dir"])
        return "".join(
            p.read_bytes().decode("utf-8", "replace") for p in state.rglob("*") if p.is_file()
        )

    def dead_letters(self) -> list[dict[str, Any]]:
        state = Path(self.config["state_dir"])
        return [
            json.loads(line)
            for path in state.glob("*.jsonl")
            for line in path.read_text().splitlines()
            if line
        ]

    def wait_drained(self, world: Any, timeout: float = 180) -> list[dict[str, Any]]:
        """Until the sender has nothing left and the spool is empty; returns deliveries."""
        deadline = time.monotonic() + timeout
        last = -1
        while time.monotonic() < deadline:
            snapshot = world.appcues.call("GET", "webhooks")
            seq = world_last_seq(world)
            if snapshot["cursor"] >= seq and self.health()["spool_depth"] == 0:
                count = len(snapshot["deliveries"])
                if count == last:
                    return list(snapshot["deliveries"])
                last = count
            time.sleep(0.3)
        raise AssertionError(f"not drained: {self.health()}\n{self.log()[-3000:]}")


def world_last_seq(world: Any) -> int:
    return int(world.appcues.call("GET", "stats").get("last_seq", 0))


def subscribe(world: Any, receiver: Receiver, **extra: Any) -> None:
    world.appcues.call(
        "POST",
        "webhooks",
        {
            "url": receiver.url,
            "secret": SECRET,
            "events": EVENT_NAMES,
            "backoff_seconds": 0.2,
            "max_attempts": 30,
            **extra,
        },
    )


def salesforce_event_count(world: Any) -> int:
    sf, ac = H.verification_clients(world)
    try:
        return len(list(sf.query("SELECT Id FROM Event")))
    finally:
        sf.close()
        ac.close()


def reset(world: Any) -> None:
    world.reset(events=False)
    world.appcues.call("DELETE", "webhooks")
    world.appcues.call("POST", "settings", {"rate_limit_per_second": 100_000})


def record(figures: Any, checked: Any, receiver: Receiver, faults: int = 0) -> None:
    figures.checked += checked.checked
    figures.lost += len(checked.lost)
    figures.duplicates += len(checked.duplicates)
    figures.dead_lettered += len(receiver.dead_letters())
    figures.faults += faults
    assert not checked.lost, checked.lost[:10]
    assert not checked.duplicates, checked.duplicates[:10]


def subscribed_events(world: Any) -> int:
    """Events of the subscribed names in the Appcues store (analytics query)."""
    now = datetime.now(UTC)  # the seed spans the 30 days before the sandbox clock (~ now)
    sf, ac = H.verification_clients(world)
    try:
        rows: list[Any] = []
        while True:
            page = ac.analytics_query(
                {
                    "columns": ["name"],
                    "conditions": [["name", "in", EVENT_NAMES]],
                    "start_time": (now - timedelta(days=80)).isoformat(),
                    "end_time": (now + timedelta(days=5)).isoformat(),
                    "offset": len(rows),
                    "limit": 1000,
                }
            )
            rows += page.rows
            if len(page.rows) < 1000:
                return len(rows)
    finally:
        sf.close()
        ac.close()


def wait_drained(world: Any, receiver: Receiver, timeout: float = 240) -> list[dict[str, Any]]:
    """Until the sender has tried every subscribed event and the spool is empty (rows leave
    it only once Salesforce confirmed them)."""
    expected = subscribed_events(world)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        deliveries = world.appcues.call("GET", "webhooks")["deliveries"]
        if len(deliveries) >= expected and receiver.health()["spool_depth"] == 0:
            return list(deliveries)
        time.sleep(0.3)
    raise AssertionError(f"not drained: {receiver.health()}\n{receiver.log()[-3000:]}")


def appcues_post(world: Any, user_id: str, event: dict[str, Any]) -> None:
    ac = world.connection["appcues"]
    with requests.Session() as http:
        http.trust_env = False
        response = http.post(
            f"{ac['base_url']}/v2/accounts/{ac['account_id']}/users/{user_id}/events",
            json=event,
            auth=(ac["api_key"], ac["api_secret"]),
            verify=world.ca,
            timeout=30,
        )
    response.raise_for_status()


def new_contact(world: Any, user_id: str) -> str:
    """A Contact of our own (no seeded event touches it): its Salesforce Id."""
    sf, ac = H.verification_clients(world)
    try:
        (result,) = sf.insert("Contact", [{"LastName": "Webhook", H.user_id: user_id}])
    finally:
        sf.close()
        ac.close()
    assert result.success, result.errors
    return str(result.id)


def query(world: Any, text: str) -> list[dict[str, Any]]:
    sf, ac = H.verification_clients(world)
    try:
        return list(sf.query(text))
    finally:
        sf.close()
        ac.close()


def test_webhooks_become_events_then_the_poll_job_writes_none(world, tmp_path):
    figures = H.figures.scenario("webhook: every event by webhook, then the poll job")
    reset(world)
    receiver = Receiver(world, tmp_path / "a").start()
    try:
        subscribe(world, receiver)
        user = "webhook-e2e-user"
        contact_id = new_contact(world, user)
        start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
        typed = [
            ("appcues:nps_score", {"score": 4, "flowId": "nps1"}),
            ("appcues:nps_feedback", {"feedback": "Too slow", "flowId": "nps1"}),
            ("appcues:nps_score", {"score": 9, "flowId": "nps1"}),  # the latest answer
            ("appcues:flow_completed", {"flowId": "f1", "flowName": "Onboarding"}),
            (
                "appcues:checklist_item_completed",
                {"checklistName": "Setup", "itemIndex": 1, "itemLabel": "Invite"},
            ),
            ("appcues:checklist_completed", {"checklistName": "Setup"}),
            ("appcues:goal_reached", {"goalName": "Activated"}),
        ]
        for minute, (name, attributes) in enumerate(typed):
            moment = (start + timedelta(minutes=minute)).isoformat().replace("+00:00", "Z")
            appcues_post(world, user, {"name": name, "timestamp": moment, "attributes": attributes})
        world.appcues.call("POST", "seed", {**SEED, "events": 300})
        wait_drained(world, receiver)
        subjects = sorted(
            r["Subject"]
            for r in query(world, f"SELECT Subject FROM Event WHERE WhoId = '{contact_id}'")
        )
        for subject in (
            "Appcues NPS Score Submitted - 4",
            "Appcues NPS Score Submitted - 9",
            "Appcues NPS Feedback Submitted",
            "Appcues Flow Completed - Onboarding",
            "Appcues Checklist Item #2 Completed - Setup",
            "Appcues Checklist Fully Completed - Setup",
            "Appcues Goal Reached - Activated",
        ):
            assert subjects.count(subject) == 1, subjects
        (nps,) = query(
            world,
            f"SELECT Appcues_NPS_Score__c, Appcues_NPS_Feedback__c FROM Contact "
            f"WHERE Id = '{contact_id}'",
        )
        assert len(subjects) == len(typed)
        assert nps == {"Appcues_NPS_Score__c": 9, "Appcues_NPS_Feedback__c": "Too slow"} | {
            k: v for k, v in nps.items() if k == "attributes"
        }
        checked = H.check_events(world, receiver.dead_letters(), "Appcues_Event_Id__c")
        record(figures, checked, receiver)
        figures.runs += 1
        metrics = receiver.metrics()
        assert metrics["appcues_webhook_salesforce_events_written_total"] >= len(typed)
        before = salesforce_event_count(world)
        # The poll job over the same period: same ids, so nothing new.
        pipeline = H.events_pipeline(world, tmp_path / "poll")
        result = pipeline.run()
        figures.runs += 1
        assert result.ok, result.logs[-3000:]
        assert salesforce_event_count(world) == before
        assert "Events written: none" in result.target_log, result.target_log[-2000:]
        checked = H.check_events(
            world, receiver.dead_letters() + pipeline.dead_letters(), "Appcues_Event_Id__c"
        )
        record(figures, checked, receiver)
    finally:
        world.appcues.call("DELETE", "webhooks")
        assert receiver.stop() in STOPPED, receiver.log()[-3000:]
