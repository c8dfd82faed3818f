"""The real-time path: the sandbox's webhook sender -> `appcues-webhook-receiver` (a real
process on loopback) -> Salesforce, checked against the source of truth like the poll job.

Scenarios: every integration event by webhook, then the poll job over the same period
(0 new Events); Salesforce 5xx/429/session expiry during the drain; the receiver SIGKILLed
mid-batch and restarted on the same spool; sender retries after a timeout; a delivery
replayed an hour later; tampered body; wrong secret; secret rotation; another scheme.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
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
SF_WRITE = r"/services/data/v[\d.]+/composite(?:/sobjects|/?$)"  # collections or Composite
SF_QUERY = r"/services/data/v[\d.]+/query"
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
            "events": list(H.event_names),
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
    figures.faults += faults
    figures.record(checked, dead_lettered=len(receiver.dead_letters()))


def subscribed_events(world: Any) -> int:
    """Events of the subscribed names in the Appcues store (analytics query)."""
    sf, ac = H.verification_clients(world)
    try:
        return len(H.appcues_events(ac))
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
        written = metrics["appcues_webhook_salesforce_events_written_total"]
        assert written == salesforce_event_count(world) >= len(typed)
        assert metrics['appcues_webhook_deliveries_accepted_total{outcome="spooled"}'] >= written
        assert metrics["appcues_webhook_spool_depth"] == 0
        assert metrics["appcues_webhook_spool_oldest_age_seconds"] == 0
        assert metrics["appcues_webhook_end_to_end_latency_seconds_count"] >= written
        assert 0 < metrics["appcues_webhook_salesforce_api_calls_total"] < written
        assert metrics['appcues_webhook_batches_total{result="failed"}'] == 0
        assert metrics["appcues_webhook_dead_letters_total"] == len(receiver.dead_letters())
        health = receiver.health()
        assert health["status"] == "ok" and health["spool_writable"] and health["worker_running"]
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


def rule(action: str = "error", times: int = 1, **fields: Any) -> dict[str, Any]:
    match = fields.pop("match", {})
    if isinstance(match, str):
        match = {"path": match}
    return {"action": action, "times": times, "match": match, **fields}


def test_sigkill_mid_batch_and_salesforce_faults_during_drain(world, tmp_path):
    figures = H.figures.scenario("webhook: SIGKILL mid-batch, restart; 5xx/429/session expiry")
    reset(world)
    receiver = Receiver(world, tmp_path / "b", webhook_batch_size=25, webhook_run_seconds=1).start()
    try:
        subscribe(world, receiver)
        # A write held at Salesforce: the receiver is killed while it is in flight.
        world.salesforce.faults(rule("latency", latency_ms=1500, match=SF_WRITE))
        world.appcues.call("POST", "seed", {**SEED, "events": 300})
        deadline = time.monotonic() + 60
        while world.salesforce.fired() < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert world.salesforce.fired() >= 1, receiver.log()[-2000:]
        receiver.kill()  # mid-batch: its write is in flight, its rows still spooled
        figures.faults += world.salesforce.clear_faults() + 1
        # While it is down the sender retries; Salesforce then fails in every way at once.
        world.salesforce.faults(
            rule(status=503, times=2, match=SF_WRITE),
            rule(status=500, match=SF_QUERY),
            rule(status=429, retry_after=1, match=SF_WRITE),
            rule("expire_session", match=SF_QUERY),
            rule("expire_session", match=SF_WRITE),
        )
        time.sleep(0.5)
        receiver.start()  # same port, same spool, same ledger
        wait_drained(world, receiver)
        # A later event goes through a fresh loader (runs of 1 s here): still one Event.
        contact_id = new_contact(world, "webhook-next-run-user")
        time.sleep(1.1)
        when = stamp_at(datetime.now(UTC) - timedelta(minutes=1))
        appcues_post(
            world, "webhook-next-run-user", {"name": "appcues:goal_reached", "timestamp": when}
        )
        wait_drained(world, receiver)
        assert len(query(world, f"SELECT Id FROM Event WHERE WhoId = '{contact_id}'")) == 1
        assert "Run summary" in receiver.log()  # the loader before it logged its run
        figures.faults += world.salesforce.clear_faults()
        figures.runs += receiver.starts
        checked = H.check_events(world, receiver.dead_letters(), "Appcues_Event_Id__c")
        record(figures, checked, receiver)
        deliveries = world.appcues.call("GET", "webhooks")["deliveries"]
        undelivered = [d for d in deliveries if not d["delivered"]]
        assert not undelivered, undelivered
        assert any(len(d["status_codes"]) < d["attempts"] for d in deliveries)  # refused conns
    finally:
        world.appcues.call("DELETE", "webhooks")
        world.clear_faults()
        assert receiver.stop() in STOPPED, receiver.log()[-3000:]


def test_sender_timeouts_then_the_poll_job_fills_in(world, tmp_path):
    """The sender gives up on deliveries it timed out on (some the receiver had spooled,
    some not); its retries are duplicates the spool or ledger drops, and the poll job is the
    safety net for what never arrived: 0 lost, 0 duplicates."""
    figures = H.figures.scenario("webhook: sender timeouts and retries, then the poll job")
    reset(world)
    receiver = Receiver(world, tmp_path / "c").start()
    try:
        subscribe(world, receiver, timeout_seconds=0.005, max_attempts=2, backoff_seconds=0.01)
        world.appcues.call("POST", "seed", {**SEED, "events": 150})
        wait_drained(world, receiver)
        deliveries = world.appcues.call("GET", "webhooks")["deliveries"]
        figures.faults += sum(d["attempts"] - len(d["status_codes"]) for d in deliveries)
        pipeline = H.events_pipeline(world, tmp_path / "poll")
        result = pipeline.run()
        figures.runs += 2
        assert result.ok, result.logs[-3000:]
        checked = H.check_events(
            world, receiver.dead_letters() + pipeline.dead_letters(), "Appcues_Event_Id__c"
        )
        record(figures, checked, receiver)
    finally:
        world.appcues.call("DELETE", "webhooks")
        assert receiver.stop() in STOPPED, receiver.log()[-3000:]


def signed(secret: str, stamp: str, body: bytes, scheme: str = "timestamp.body:hex") -> str:
    signed_part, encoding = scheme.split(":")
    message = stamp.encode() + b"." + body if signed_part == "timestamp.body" else body
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return digest.hex() if encoding == "hex" else base64.b64encode(digest).decode()


def stamp_at(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_refused_deliveries_rotation_and_another_scheme(world, tmp_path):
    figures = H.figures.scenario("webhook: tampered, wrong secret, unsigned, replayed, rotation")
    reset(world)
    user = "webhook-security-user"
    contact_id = new_contact(world, user)
    receiver = Receiver(world, tmp_path / "d", webhook_secrets=[SECRET, NEXT_SECRET]).start()
    try:
        # A delivery exactly as the sender makes it, for a real event of the store.
        subscribe(world, receiver, secret=NEXT_SECRET)  # rotated: the new secret verifies
        when = stamp_at(datetime.now(UTC) - timedelta(hours=2))
        appcues_post(
            world,
            user,
            {"name": "appcues:flow_completed", "timestamp": when, "attributes": {"flowName": "A"}},
        )
        wait_drained(world, receiver)
        (event,) = query(world, f"SELECT Id, Subject FROM Event WHERE WhoId = '{contact_id}'")
        assert event["Subject"] == "Appcues Flow Completed - A"
        ac = world.connection["appcues"]
        with requests.Session() as http:
            http.trust_env = False
            listed = http.get(
                f"{ac['base_url']}/v2/accounts/{ac['account_id']}/users/{user}/events",
                auth=(ac["api_key"], ac["api_secret"]),
                verify=world.ca,
                timeout=30,
            ).json()
        payload = {**listed[0], "account_id": ac["account_id"]}
        body = json.dumps(payload, separators=(",", ":")).encode()
        now = stamp_at(datetime.now(UTC))
        hour_ago = stamp_at(datetime.now(UTC) - timedelta(hours=1))
        tampered = body.replace(b'"flowName":"A"', b'"flowName":"B"')
        assert tampered != body
        attempts = {
            "bad_signature": [
                (tampered, now, signed(SECRET, now, body)),  # tampered body
                (body, now, signed("not-the-secret", now, body)),  # wrong secret
                (body, now, signed(SECRET, now, body, "body:base64")),  # another scheme
                (body, now, signed(SECRET, now, body, "body:base64")),  # ... logged once
            ],
            "unsigned": [(body, now, "")],
            "stale_timestamp": [(body, hour_ago, signed(SECRET, hour_ago, body))],  # replayed
        }
        for reason, cases in attempts.items():
            for data, stamp, signature in cases:
                headers = {"Content-Type": "application/json", "X-Apc-Timestamp": stamp}
                if signature:
                    headers["X-Apc-Signature"] = signature
                answer = receiver.http.post(receiver.url, data=data, headers=headers, timeout=10)
                assert answer.status_code == 401, (reason, answer.text)
                assert answer.json() == {"error": reason}
        # The same delivery again, correctly signed (a sender retry, or a replay inside the
        # window): accepted, and harmless.
        for secret in (SECRET, NEXT_SECRET):
            answer = receiver.http.post(
                receiver.url,
                data=body,
                headers={"X-Apc-Timestamp": now, "X-Apc-Signature": signed(secret, now, body)},
                timeout=10,
            )
            assert answer.status_code == 202, answer.text
        wait_drained(world, receiver)
        metrics = receiver.metrics()
        refused = {
            k: v for k, v in metrics.items() if k.startswith("appcues_webhook_deliveries_refused")
        }
        assert refused['appcues_webhook_deliveries_refused_total{reason="bad_signature"}'] == 4
        assert refused['appcues_webhook_deliveries_refused_total{reason="unsigned"}'] == 1
        assert refused['appcues_webhook_deliveries_refused_total{reason="stale_timestamp"}'] == 1
        still = query(world, f"SELECT Id FROM Event WHERE WhoId = '{contact_id}'")
        assert [row["Id"] for row in still] == [event["Id"]]  # nothing refused was written
        log = receiver.log()
        assert log.count("matches scheme 'body:base64'") == 1, log[-3000:]
        for secret in (SECRET, NEXT_SECRET):
            assert secret not in log + receiver.files()
        figures.faults += 6
        figures.runs += 1
        checked = H.check_events(world, receiver.dead_letters(), "Appcues_Event_Id__c")
        record(figures, checked, receiver)
    finally:
        world.appcues.call("DELETE", "webhooks")
        assert receiver.stop() in STOPPED, receiver.log()[-3000:]


@pytest.mark.parametrize(
    "scheme", ["timestamp.body:hex", "timestamp.body:base64", "body:hex", "body:base64"]
)
def test_each_plausible_signature_scheme(world, tmp_path, scheme):
    """The real scheme is not public: the sandbox sends each plausible one, and the receiver
    set to it accepts it."""
    reset(world)
    user = "webhook-scheme-user"
    contact_id = new_contact(world, user)
    receiver = Receiver(world, tmp_path / "e", webhook_signature_scheme=scheme).start()
    try:
        subscribe(world, receiver, signature_scheme=scheme)
        when = stamp_at(datetime.now(UTC) - timedelta(hours=1))
        appcues_post(
            world, user, {"name": "appcues:goal_reached", "timestamp": when, "attributes": {}}
        )
        (delivery,) = wait_drained(world, receiver)
        assert delivery["status_codes"] == [202]
        (event,) = query(world, f"SELECT Subject FROM Event WHERE WhoId = '{contact_id}'")
        assert event["Subject"].startswith("Appcues Goal Reached")
    finally:
        world.appcues.call("DELETE", "webhooks")
        assert receiver.stop() in STOPPED, receiver.log()[-3000:]


def test_ledger_only_strategy_is_refused_and_the_spool_keeps_everything(world, tmp_path):
    """Without an Event id field the poll job could not find the receiver's Events: the
    worker refuses to write, says why, and keeps every delivery for when it is fixed."""
    figures = H.figures.scenario("webhook: ledger-only strategy refused, spool kept, fixed")
    reset(world)
    user = "webhook-ledger-user"
    contact_id = new_contact(world, user)
    receiver = Receiver(world, tmp_path / "f", event_id_field="").start()
    try:
        subscribe(world, receiver)
        when = stamp_at(datetime.now(UTC) - timedelta(hours=1))
        appcues_post(world, user, {"name": "appcues:goal_reached", "timestamp": when})
        deadline = time.monotonic() + 60
        while not receiver.health()["last_error"] and time.monotonic() < deadline:
            time.sleep(0.1)
        health = receiver.health()
        assert "event_id_field" in health["last_error"], health
        assert health["status"] == "degraded"
        assert health["spool_depth"] == 1
        assert query(world, f"SELECT Id FROM Event WHERE WhoId = '{contact_id}'") == []
        receiver.stop()
        # Fixed: the same spool is drained by a receiver with the id field.
        receiver.config.pop("event_id_field")
        receiver.config_path.write_text(json.dumps(receiver.config))
        receiver.http = requests.Session()
        receiver.http.trust_env = False
        receiver.start()
        wait_drained(world, receiver)
        assert len(query(world, f"SELECT Id FROM Event WHERE WhoId = '{contact_id}'")) == 1
        figures.runs += 2
        checked = H.check_events(world, receiver.dead_letters(), "Appcues_Event_Id__c")
        record(figures, checked, receiver)
    finally:
        world.appcues.call("DELETE", "webhooks")
        assert receiver.stop() in STOPPED, receiver.log()[-3000:]


def test_salesforce_outage_grows_the_spool_then_drains(world, tmp_path):
    """Salesforce refuses every write for longer than the client's retries: batches fail,
    stay in the spool, the backlog shows in /metrics and /healthz, and once Salesforce is
    back everything is written once."""
    figures = H.figures.scenario("webhook: Salesforce outage (writes 503 beyond retries)")
    reset(world)
    receiver = Receiver(world, tmp_path / "g", webhook_batch_size=50).start()
    try:
        subscribe(world, receiver)
        world.salesforce.faults(rule(status=503, times=40, match=SF_WRITE))
        world.appcues.call("POST", "seed", {**SEED, "events": 200})
        deadline = time.monotonic() + 120
        backlog = 0.0
        while time.monotonic() < deadline:
            metrics = receiver.metrics()
            backlog = max(backlog, metrics["appcues_webhook_spool_depth"])
            if metrics['appcues_webhook_batches_total{result="failed"}'] >= 2:
                break
            time.sleep(0.1)
        assert metrics['appcues_webhook_batches_total{result="failed"}'] >= 2
        assert backlog > 0 and metrics["appcues_webhook_spool_oldest_age_seconds"] > 0
        assert receiver.health()["status"] == "degraded"
        figures.faults += world.salesforce.clear_faults()  # Salesforce is back
        wait_drained(world, receiver)
        assert receiver.health()["status"] == "ok"
        figures.runs += 1
        checked = H.check_events(world, receiver.dead_letters(), "Appcues_Event_Id__c")
        record(figures, checked, receiver)
    finally:
        world.appcues.call("DELETE", "webhooks")
        world.clear_faults()
        assert receiver.stop() in STOPPED, receiver.log()[-3000:]


def test_an_unanswered_insert_is_checked_only_after_the_longest_pause(world, tmp_path):
    """`query_then_insert` (the event id in `Location`, a plain text field): the first Event
    insert is held 3 s at Salesforce, past the receiver's 1 s request timeout, and applied
    when the hold ends. The worker waits `webhook_retry_max_seconds` (6 s) before trying the
    batch again, so its check finds those Events: each once. (With the doubling pause from
    0.5 s, the check ran before the held insert landed and the Events were inserted twice.)
    The ledger-only strategy, the other insert strategy, is refused by the receiver
    (`test_ledger_only_strategy_is_refused_and_the_spool_keeps_everything`)."""
    figures = H.figures.scenario(
        "webhook: an Event insert without answer (held 3 s past a 1 s timeout, applied when "
        "the hold ends), query_then_insert: retried after the longest pause, checked first"
    )
    reset(world)
    user = "webhook-unanswered-user"
    contact_id = new_contact(world, user)
    hold = 3.0
    receiver = Receiver(
        world,
        tmp_path / "h",
        event_id_field="Location",
        request_timeout=1,
        webhook_retry_max_seconds=6,
    ).start()
    try:
        subscribe(world, receiver)
        world.salesforce.faults(
            rule(
                "latency",
                latency_ms=int(hold * 1000),
                match={"method": "POST", "path": r"/composite/sobjects$"},
            )
        )
        start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
        for minute in range(3):
            appcues_post(
                world,
                user,
                {
                    "name": "appcues:goal_reached",
                    "timestamp": stamp_at(start + timedelta(minutes=minute)),
                    "attributes": {"goalName": f"Goal {minute}"},
                },
            )
        deadline = time.monotonic() + 60
        while world.salesforce.fired() < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        held_at = time.monotonic()  # the hold began at or before this
        assert world.salesforce.fired() == 1, receiver.log()[-3000:]
        wait_drained(world, receiver)
        # Whatever the receiver did, the held insert has landed by now (applied as the hold
        # ends): a second insert of the same Events would show.
        time.sleep(max(0.0, held_at + hold + 2 - time.monotonic()))
        events = query(world, f"SELECT Id, Location FROM Event WHERE WhoId = '{contact_id}'")
        assert len(events) == 3, events
        assert len({e["Location"] for e in events}) == 3, events
        assert receiver.health()["spool_depth"] == 0
        log = receiver.log()
        assert "UnansweredInsertError" in log and "retrying in 6.0 s" in log, log[-3000:]
        metrics = receiver.metrics()
        assert metrics['appcues_webhook_batches_total{result="failed"}'] == 1
        figures.faults += world.salesforce.clear_faults()
        figures.runs += 1
        checked = H.check_events(world, receiver.dead_letters(), "Location", nps=False)
        record(figures, checked, receiver)
    finally:
        world.appcues.call("DELETE", "webhooks")
        world.clear_faults()
        assert receiver.stop() in STOPPED, receiver.log()[-3000:]
