"""Stopped, concurrent and misconfigured runs (issue 15, items 1, 4 and 6): the plugins as
processes against the sandbox, the end state checked in it.

- The tap stops emitting on SIGTERM and exits 143 (the targets' signal scenarios are in the
  fault matrix and under `meltano run`, test_meltano_faults.py).
- A second target on the same state refuses to start (exit 75) while the first holds the
  lock; the end state holds every Event once.
- A run that dead-letters past the threshold exits 65 and emits no STATE beyond the last
  batch under it; a quiet run with a few dead letters stays green.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest

from tap_salesforce_appcues.events import EVENT_SCHEMA  # what the tap sends

pytestmark = pytest.mark.slow

H = SimpleNamespace()
SF_QUERY = r"/services/data/v[\d.]+/query"
SF_WRITE = r"/services/data/v[\d.]+/composite(?:/sobjects|/?$)"  # collections or Composite
EXIT_LOCKED = 75
EXIT_TOO_MANY_DEAD_LETTERS = 65

CONTACT_SCHEMA = {
    "type": "object",
    "properties": {
        "Id": {"type": "string"},
        "Product_User_Id__c": {"type": ["string", "null"]},
        "Email": {"type": ["string", "null"]},
    },
}


@pytest.fixture(autouse=True)
def _bind(harness):
    H.__dict__.update({k: getattr(harness, k) for k in dir(harness) if not k.startswith("__")})


def msg(message: dict) -> str:
    return json.dumps(message)


def state(n: int) -> str:
    return msg({"type": "STATE", "value": {"bookmarks": {"batch": n}}})


def states_of(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def start(command: list, workdir: Path, name: str, stdin=None) -> subprocess.Popen:
    with (workdir / f"{name}.out").open("w") as out, (workdir / f"{name}.log").open("w") as log:
        return subprocess.Popen(  # the child keeps its own copies of the descriptors
            command,
            stdin=stdin if stdin is not None else subprocess.DEVNULL,
            stdout=out,
            stderr=log,
            env={**os.environ, **H.debug_env},
            cwd=workdir,
        )


def output(workdir: Path, name: str) -> tuple[str, str]:
    out, log = (workdir / f"{name}.out").read_text(), (workdir / f"{name}.log").read_text()
    H.remember(f"lifecycle {name} ({workdir.name})", out + log)
    return out, log


def wait_until(condition, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


# --- the tap ---------------------------------------------------------------------------------
def test_tap_stops_emitting_on_sigterm(world, tmp_path):
    """A SIGTERM while the tap waits out a 503's Retry-After before its query: exit 143, no
    STATE written after it, every line it wrote whole (singer-sdk's handler wrote a last
    STATE and exited 0)."""
    world.reset(events=False)
    pipeline = H.profiles_pipeline(world, tmp_path)
    catalog = pipeline.catalog()
    config = tmp_path / "tap-run.json"
    config.write_text(json.dumps(pipeline.tap_config))
    world.salesforce.faults(
        {
            "action": "error",
            "status": 503,
            "retry_after": 8,
            "times": 100,
            "match": {"path": SF_QUERY},
        }
    )
    tap = start(
        [H.bin / "tap-salesforce-appcues", "--config", config, "--catalog", catalog],
        tmp_path,
        "tap",
    )
    wait_until(lambda: world.salesforce.fired() > 0)
    time.sleep(0.5)  # the tap has its answer and waits
    tap.send_signal(signal.SIGTERM)
    tap.wait(timeout=60)
    world.clear_faults()
    out, log = output(tmp_path, "tap")
    assert tap.returncode == 128 + signal.SIGTERM, log[-3000:]
    assert "stopped by SIGTERM" in log
    messages = [json.loads(line) for line in out.splitlines()]  # no line cut in half
    assert all(m["type"] != "STATE" for m in messages), "no STATE after the stop"


# --- one run at a time -----------------------------------------------------------------------
def _events(world, count: int) -> list[str]:
    """`count` events of seeded Contacts (their product ids), one a minute."""
    sf, _ = H.verification_clients(world)
    try:
        users = [
            str(r[H.user_id])
            for r in sf.query(f"SELECT {H.user_id} FROM Contact WHERE {H.user_id} != null")
        ]
    finally:
        sf.close()
    return [
        msg(
            {
                "type": "RECORD",
                "stream": "appcues_events",
                "record": {
                    "id": f"lifecycle-{n}",
                    "name": "appcues:goal_reached",
                    "timestamp": f"2026-03-04T05:{n % 60:02d}:07.000Z",
                    "user_id": users[n % len(users)],
                    "attributes": {"goalName": "Activated"},
                },
            }
        )
        for n in range(count)
    ]


@pytest.mark.parametrize("plugin", ["target-salesforce-events", "target-appcues-profiles"])
def test_second_run_on_the_same_state_is_refused(world, tmp_path, plugin):
    """Two targets on one state_dir (the events target with its local ledger): while the
    first holds a write in flight, the second refuses at start, naming the lock, exit 75;
    the end state has every Event once (before issue 15: 20 events became 40 Events)."""
    world.reset(events=False)
    if plugin == "target-salesforce-events":
        config = {
            **world.salesforce_config(),
            "state_dir": str(tmp_path / "state"),
            "event_id_field": "",  # the local ledger: the strategy a second run would break
        }
        lines = [
            msg(
                {
                    "type": "SCHEMA",
                    "stream": "appcues_events",
                    "schema": EVENT_SCHEMA,
                    "key_properties": ["id"],
                }
            ),
            *_events(world, 20),
            state(1),
        ]
        control = world.salesforce
        rule = {"path": SF_WRITE}
    else:
        config = {
            **world.appcues_config(),
            "user_streams": ["Contact"],
            "group_streams": [],
            "state_dir": str(tmp_path / "state"),
        }
        lines = [
            msg(
                {
                    "type": "SCHEMA",
                    "stream": "Contact",
                    "schema": CONTACT_SCHEMA,
                    "key_properties": ["Id"],
                }
            ),
            *[
                msg(
                    {
                        "type": "RECORD",
                        "stream": "Contact",
                        "record": {"Id": f"003{n:015d}", "Product_User_Id__c": f"lock-{n}"},
                    }
                )
                for n in range(20)
            ],
            state(1),
        ]
        control = world.appcues
        rule = {"method": "PATCH", "path": r"/profile$"}
    config_path = tmp_path / "target.json"
    config_path.write_text(json.dumps(config))
    source = tmp_path / "input.jsonl"
    source.write_text("\n".join(lines) + "\n")
    control.faults({"action": "latency", "latency_ms": 8000, "times": 1, "match": rule})
    command = [H.bin / plugin, "--config", config_path]
    with source.open() as first_in, source.open() as second_in:
        first = start(command, tmp_path, "first", stdin=first_in)
        wait_until(lambda: control.fired() > 0)  # the first run's write is in flight
        second = start(command, tmp_path, "second", stdin=second_in)
        second.wait(timeout=60)
        first.wait(timeout=120)
    faults = world.clear_faults()
    first_out, first_log = output(tmp_path, "first")
    H.remember(
        f"lifecycle {plugin} state files",
        "".join(
            p.read_bytes().decode("utf-8", "replace")
            for p in (tmp_path / "state").rglob("*")
            if p.is_file()
        ),
    )
    second_out, second_log = output(tmp_path, "second")
    assert second.returncode == EXIT_LOCKED, second_log[-3000:]
    assert "Run refused" in second_log
    assert str(tmp_path / "state") in second_log, "the message names the lock's path"
    assert second_out == "", "a refused run emits no STATE"
    assert first.returncode == 0, first_log[-3000:]
    assert states_of(first_out) == [{"bookmarks": {"batch": 1}}]
    if plugin == "target-salesforce-events":
        assert "Exactly-once strategy: local_ledger" in first_log
        sf, _ = H.verification_clients(world)
        try:
            subjects = [
                r["WhoId"] + r["ActivityDateTime"]
                for r in sf.query("SELECT WhoId, ActivityDateTime FROM Event")
            ]
        finally:
            sf.close()
        assert len(subjects) == 20 and len(set(subjects)) == 20, subjects
        figures = H.figures.scenario("events: a second run on the same ledger (refused)")
        figures.faults, figures.runs, figures.checked = faults + 1, 2, 20
        figures.duplicates = len(subjects) - len(set(subjects))
    # The lock went with the first process: a third run starts (and finds nothing to do).
    with source.open() as third_in:
        third = start(command, tmp_path, "third", stdin=third_in)
        third.wait(timeout=120)
    assert third.returncode == 0, output(tmp_path, "third")[1][-3000:]


# --- the dead-letter threshold ---------------------------------------------------------------
def test_events_run_with_the_wrong_user_id_field_fails(world, tmp_path):
    """`user_id_field: Email` (valid, wrong): every event is unmatched. Exit 65, the summary
    in the log, no STATE; the next run with the right field delivers every Event."""
    world.reset(events=False)
    lines = [
        msg(
            {
                "type": "SCHEMA",
                "stream": "appcues_events",
                "schema": EVENT_SCHEMA,
                "key_properties": ["id"],
            }
        ),
        *_events(world, 60),
        state(1),
    ]
    wrong = H.feed_target(
        "target-salesforce-events",
        {
            **world.salesforce_config(),
            "state_dir": str(tmp_path / "state"),
            "user_id_field": "Email",
        },
        lines,
        tmp_path / "wrong",
    )
    assert wrong.returncode == EXIT_TOO_MANY_DEAD_LETTERS, wrong.stderr[-3000:]
    assert "60 of the 60 records read so far were dead-lettered" in wrong.stderr
    assert "Run summary" in wrong.stderr
    assert wrong.stdout.strip() == "", "no STATE past the threshold"
    assert len(wrong.dead_letters) == 60
    right = H.feed_target(
        "target-salesforce-events",
        {**world.salesforce_config(), "state_dir": str(tmp_path / "state")},
        lines,
        tmp_path / "right",
    )
    assert right.returncode == 0, right.stderr[-3000:]
    assert states_of(right.stdout) == [{"bookmarks": {"batch": 1}}]
    sf, _ = H.verification_clients(world)
    try:
        written = list(sf.query("SELECT Id FROM Event"))
    finally:
        sf.close()
    assert len(written) == 60
    figures = H.figures.scenario("events: user_id_field Email (all dead-lettered), then fixed")
    figures.faults, figures.runs, figures.checked = 1, 2, 60
    figures.dead_lettered = len(wrong.dead_letters)


def _contacts(first: int, count: int, *, with_id: bool) -> list[str]:
    return [
        msg(
            {
                "type": "RECORD",
                "stream": "Contact",
                "record": {
                    "Id": f"003{n:015d}",
                    "Email": f"u{n}@example.com",
                    "Product_User_Id__c": f"th-{n}" if with_id else None,
                },
            }
        )
        for n in range(first, first + count)
    ]


def test_profiles_run_stops_at_the_batch_that_crossed_the_threshold(world, tmp_path):
    """Batches of 10: 10 good, STATE 1, 10 without id, 10 without id, 10 good, STATE 2.
    After the second batch 10 of 20 are dead letters (not more than half): the run goes on.
    After the third, 20 of 30: exit 65 with the summary, the fourth batch is not sent and
    no STATE is emitted (singer-sdk emits STATE only after a full drain)."""
    world.reset(events=False)
    config = {
        **world.appcues_config(),
        "user_streams": ["Contact"],
        "group_streams": [],
        "state_dir": str(tmp_path / "state"),
        "batch_size_rows": 10,
        "dead_letter_min_count": 5,
    }
    lines = [
        msg(
            {
                "type": "SCHEMA",
                "stream": "Contact",
                "schema": CONTACT_SCHEMA,
                "key_properties": ["Id"],
            }
        ),
        *_contacts(0, 10, with_id=True),
        state(1),
        *_contacts(10, 20, with_id=False),
        *_contacts(30, 10, with_id=True),
        state(2),
    ]
    fed = H.feed_target("target-appcues-profiles", config, lines, tmp_path)
    assert fed.returncode == EXIT_TOO_MANY_DEAD_LETTERS, fed.stderr[-3000:]
    assert "20 of the 30 records read so far were dead-lettered" in fed.stderr
    assert '"dead_lettered": 20' in fed.stderr  # the summary
    assert states_of(fed.stdout) == []
    _, ac = H.verification_clients(world)
    try:
        assert all(ac.get_user_profile(f"th-{n}") for n in range(10))
        assert not any(ac.get_user_profile(f"th-{n}") for n in range(30, 40))
    finally:
        ac.close()
    # The right settings: the next run sends the rest and confirms the input.
    again = H.feed_target(
        "target-appcues-profiles",
        {**config, "dead_letter_max_fraction": 1},
        lines,
        tmp_path / "again",
    )
    assert again.returncode == 0, again.stderr[-3000:]
    assert states_of(again.stdout) == [{"bookmarks": {"batch": 2}}]


def test_quiet_runs_with_a_few_dead_letters_stay_green(world, tmp_path):
    """Two unmatched users of three events, two Contacts without id of three: exit 0."""
    world.reset(events=False)
    events = _events(world, 1) + [
        msg(
            {
                "type": "RECORD",
                "stream": "appcues_events",
                "record": {
                    "id": str(uuid.uuid4()),
                    "name": "appcues:goal_reached",
                    "timestamp": "2026-03-04T05:06:07.000Z",
                    "user_id": f"nobody-{n}",
                },
            }
        )
        for n in range(2)
    ]
    fed = H.feed_target(
        "target-salesforce-events",
        {**world.salesforce_config(), "state_dir": str(tmp_path / "events" / "state")},
        [
            msg(
                {
                    "type": "SCHEMA",
                    "stream": "appcues_events",
                    "schema": EVENT_SCHEMA,
                    "key_properties": ["id"],
                }
            ),
            *events,
            state(1),
        ],
        tmp_path / "events",
    )
    assert fed.returncode == 0, fed.stderr[-3000:]
    assert len(fed.dead_letters) == 2
    assert states_of(fed.stdout) == [{"bookmarks": {"batch": 1}}]
    fed = H.feed_target(
        "target-appcues-profiles",
        {
            **world.appcues_config(),
            "user_streams": ["Contact"],
            "group_streams": [],
            "state_dir": str(tmp_path / "profiles" / "state"),
        },
        [
            msg(
                {
                    "type": "SCHEMA",
                    "stream": "Contact",
                    "schema": CONTACT_SCHEMA,
                    "key_properties": ["Id"],
                }
            ),
            *_contacts(0, 1, with_id=True),
            *_contacts(1, 2, with_id=False),
            state(1),
        ],
        tmp_path / "profiles",
    )
    assert fed.returncode == 0, fed.stderr[-3000:]
    assert len(fed.dead_letters) == 2
    assert states_of(fed.stdout) == [{"bookmarks": {"batch": 1}}]
