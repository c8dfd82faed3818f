"""Wrong configs (issue 11): unknown object, unknown field, numeric id field, wrong
credentials, unreachable host. Each plugin stops before moving data, with a message that
names the setting (or the refused login / unreachable host), and never echoes a secret."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

BIN = Path(sys.executable).parent
H = SimpleNamespace()
UNREACHABLE = "https://127.0.0.1:9"  # the discard port: connection refused


@pytest.fixture(autouse=True)
def _bind(harness):
    H.__dict__.update({k: getattr(harness, k) for k in dir(harness) if not k.startswith("__")})


def run_plugin(executable: str, config: dict, tmp_path: Path, *args: str, stdin: str = ""):
    path = tmp_path / f"{executable}-{len(list(tmp_path.iterdir()))}.json"
    path.write_text(json.dumps(config))
    done = subprocess.run(
        [BIN / executable, "--config", path, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, **H.debug_env},
        cwd=tmp_path,
        check=False,
    )
    H.remember(f"{executable} {' '.join(args)}", done.stdout + done.stderr)
    return done


def assert_refused(done, *needles: str) -> None:
    assert done.returncode != 0, done.stderr[-2000:]
    output = done.stdout + done.stderr
    for needle in needles:
        assert needle in output, f"{needle!r} not in:\n{output[-3000:]}"


def assert_failed_in_one_line(done, *needles: str) -> None:
    """Exit 1 (docs/operations.md, "Exit codes"), the cause on the last error line, no
    traceback."""
    assert done.returncode == 1, done.stderr[-3000:]
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    errors = [line for line in done.stderr.splitlines() if "| ERROR" in line]
    assert errors and "Run failed: " in errors[-1], done.stderr[-3000:]
    for needle in needles:
        assert needle in errors[-1], f"{needle!r} not in {errors[-1]!r}"


def tap_config(world, **overrides):
    return {
        **world.salesforce_config(max_retries=1, retry_max_seconds=1),
        **world.appcues_config("appcues_", appcues_max_retries=1),
        "user_objects": ["Contact"],
        "account_object": "Account",
        "lag": 1,
        **overrides,
    }


def events_config(world, tmp_path, **overrides):
    return {
        **world.salesforce_config(max_retries=1, retry_max_seconds=1),
        "state_dir": str(tmp_path / "state"),
        **overrides,
    }


def profiles_config(world, tmp_path, **overrides):
    return {
        **world.appcues_config(max_retries=1),
        "state_dir": str(tmp_path / "state"),
        **overrides,
    }


EVENT_LINES = "\n".join(
    json.dumps(m)
    for m in [
        {
            "type": "SCHEMA",
            "stream": "appcues_events",
            "key_properties": ["id"],
            "schema": {"type": "object", "properties": {"id": {}, "name": {}, "timestamp": {}}},
        },
        {
            "type": "RECORD",
            "stream": "appcues_events",
            "record": {
                "id": "e1",
                "name": "appcues:goal_reached",
                "timestamp": "2026-01-01T00:00:00Z",
                "user_id": "usr_c0000001",
            },
        },
    ]
)
PROFILE_LINES = "\n".join(
    json.dumps(m)
    for m in [
        {
            "type": "SCHEMA",
            "stream": "Contact",
            "key_properties": ["Id"],
            "schema": {"type": "object", "properties": {"Id": {}, "Product_User_Id__c": {}}},
        },
        {
            "type": "RECORD",
            "stream": "Contact",
            "record": {"Id": "0035g0000000000001", "Product_User_Id__c": "u1", "Title": "x"},
        },
    ]
)


def no_events(world) -> bool:
    return event_ids_in_salesforce(world) == 0


@pytest.fixture(scope="module")
def seeded(world):
    world.reset(events=False)
    return world


# --- the tap ---------------------------------------------------------------------------------
def test_tap_unknown_object(seeded, tmp_path):
    done = run_plugin(
        "tap-salesforce-appcues",
        tap_config(seeded, account_object="Nope__c"),
        tmp_path,
        "--discover",
    )
    assert_refused(done, "account_object", "Nope__c")


def test_tap_unknown_user_object(seeded, tmp_path):
    done = run_plugin(
        "tap-salesforce-appcues",
        tap_config(seeded, user_objects=["Person"]),
        tmp_path,
        "--discover",
    )
    assert_refused(done, "user_objects", "Person")


def test_tap_wrong_credentials(seeded, tmp_path):
    done = run_plugin(
        "tap-salesforce-appcues",
        tap_config(seeded, refresh_token="5Aep861-not-a-real-refresh-token"),
        tmp_path,
        "--discover",
    )
    assert_refused(done, "invalid_grant")
    assert "5Aep861-not-a-real-refresh-token" not in done.stdout + done.stderr


def test_tap_unreachable_host(seeded, tmp_path):
    done = run_plugin(
        "tap-salesforce-appcues", tap_config(seeded, domain=UNREACHABLE), tmp_path, "--discover"
    )
    assert_refused(done, "127.0.0.1:9")


# --- target-salesforce-events ----------------------------------------------------------------
def test_events_target_unknown_field(seeded, tmp_path):
    done = run_plugin(
        "target-salesforce-events",
        events_config(seeded, tmp_path, nps_score_field="Nope__c"),
        tmp_path,
        stdin=EVENT_LINES,
    )
    assert_refused(done, "Nope__c")
    assert no_events(seeded)


def test_events_target_unknown_object(seeded, tmp_path):
    done = run_plugin(
        "target-salesforce-events",
        events_config(seeded, tmp_path, user_objects=["Person__c"]),
        tmp_path,
        "--check",
    )
    assert_refused(done, "Person__c", "[FAIL]")


def test_events_target_numeric_id_field(seeded, tmp_path):
    done = run_plugin(
        "target-salesforce-events",
        events_config(seeded, tmp_path, user_id_field="Product_User_Number__c"),
        tmp_path,
        "--check",
    )
    assert_refused(done, "Product_User_Number__c", "TEXT(Product_User_Number__c)")


def test_events_target_wrong_credentials(seeded, tmp_path):
    done = run_plugin(
        "target-salesforce-events",
        events_config(seeded, tmp_path, client_secret="wrong-secret-0123456789"),
        tmp_path,
        stdin=EVENT_LINES,
    )
    assert_refused(done, "invalid_client")
    assert "wrong-secret-0123456789" not in done.stdout + done.stderr
    assert no_events(seeded)


def test_events_target_unreachable_host(seeded, tmp_path):
    done = run_plugin(
        "target-salesforce-events",
        events_config(seeded, tmp_path, domain=UNREACHABLE),
        tmp_path,
        stdin=EVENT_LINES,
    )
    assert_refused(done, "127.0.0.1:9")
    assert '"bookmarks"' not in done.stdout


# --- target-appcues-profiles -----------------------------------------------------------------
def test_profiles_target_unknown_id_field(seeded, tmp_path):
    """An id field no record has: every record is dead-lettered naming the field (the
    target cannot know the source's fields before records arrive)."""
    done = run_plugin(
        "target-appcues-profiles",
        profiles_config(seeded, tmp_path, user_id_field="Nope__c"),
        tmp_path,
        stdin=PROFILE_LINES,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    letters = [
        json.loads(line)
        for line in (tmp_path / "state" / "dead-letters.jsonl").read_text().splitlines()
    ]
    assert [d["reason"] for d in letters] == ["missing_id"]
    assert "Nope__c" in letters[0]["message"]


def test_profiles_target_wrong_credentials(seeded, tmp_path):
    done = run_plugin(
        "target-appcues-profiles",
        profiles_config(seeded, tmp_path, api_secret="wrong-appcues-secret-42"),
        tmp_path,
        stdin=PROFILE_LINES,
    )
    assert_refused(done, "401")
    assert "wrong-appcues-secret-42" not in done.stdout + done.stderr
    assert '"bookmarks"' not in done.stdout


def test_profiles_target_unreachable_host(seeded, tmp_path):
    done = run_plugin(
        "target-appcues-profiles",
        profiles_config(seeded, tmp_path, base_url=UNREACHABLE),
        tmp_path,
        stdin=PROFILE_LINES,
    )
    assert_refused(done, "127.0.0.1:9")


# --- issue 15: settings that passed preflight, then dead-lettered everything ------------------
def event_ids_in_salesforce(world) -> int:
    sf, _ = H.verification_clients(world)
    try:
        return sf.query_count("SELECT COUNT() FROM Event")
    finally:
        sf.close()


@pytest.mark.parametrize("minutes", [-5, 10**9])
def test_events_target_duration_out_of_range(seeded, tmp_path, minutes):
    config = events_config(seeded, tmp_path, duration_minutes=minutes)
    checked = run_plugin("target-salesforce-events", config, tmp_path, "--check")
    assert_refused(checked, "duration_minutes")
    assert "ready to run" not in checked.stdout
    done = run_plugin("target-salesforce-events", config, tmp_path, stdin=EVENT_LINES)
    assert_refused(done, "duration_minutes")
    assert '"bookmarks"' not in done.stdout
    assert no_events(seeded)


@pytest.mark.parametrize("field", ["Appcues_Event_ld__c", "Hidden_Event_Id__c"])
def test_events_target_named_event_id_field_the_org_lacks(seeded, tmp_path, field):
    """A typo, or a field hidden from the integration user (the describe does not list it):
    never a silent fall-back to the local ledger."""
    config = events_config(seeded, tmp_path, event_id_field=field)
    checked = run_plugin("target-salesforce-events", config, tmp_path, "--check")
    assert_refused(checked, "[FAIL] idempotency", field, "event_id_field")
    done = run_plugin("target-salesforce-events", config, tmp_path, stdin=EVENT_LINES)
    assert_refused(done, field, "event_id_field")
    assert '"bookmarks"' not in done.stdout
    assert no_events(seeded)


def test_events_target_ledger_chosen_explicitly(seeded, tmp_path):
    done = run_plugin(
        "target-salesforce-events",
        events_config(seeded, tmp_path, event_id_field=""),
        tmp_path,
        "--check",
    )
    assert done.returncode == 0, done.stdout + done.stderr[-2000:]
    assert "strategy local_ledger" in done.stdout


@pytest.mark.parametrize(
    ("setting", "value", "needles"),
    [
        ("api_version", "abc", ("api_version", "62.0")),
        ("request_timeout", -1, ("request_timeout", "1")),
        ("start_date", "yesterday", ("start_date", "ISO 8601")),
        ("lag", 10**9, ("lag", "86400")),
        ("appcues_max_requests_per_second", 0, ("appcues_max_requests_per_second",)),
    ],
)
def test_tap_bad_setting_is_named_with_its_form(seeded, tmp_path, setting, value, needles):
    done = run_plugin("tap-salesforce-appcues", tap_config(seeded, **{setting: value}), tmp_path)
    assert_refused(done, *needles)
    assert "Traceback" not in done.stderr
    assert '"RECORD"' not in done.stdout


@pytest.mark.parametrize(
    ("executable", "setting", "value"),
    [
        ("target-salesforce-events", "request_timeout", -1),
        ("target-salesforce-events", "api_version", "abc"),
        ("target-salesforce-events", "ledger_retention_days", -3),
        ("target-appcues-profiles", "request_timeout", -1),
        ("target-appcues-profiles", "max_concurrency", 1000),
    ],
)
def test_targets_bad_setting_is_named(seeded, tmp_path, executable, setting, value):
    make = events_config if executable == "target-salesforce-events" else profiles_config
    stdin = EVENT_LINES if executable == "target-salesforce-events" else PROFILE_LINES
    done = run_plugin(executable, make(seeded, tmp_path, **{setting: value}), tmp_path, stdin=stdin)
    assert_refused(done, setting)
    assert '"bookmarks"' not in done.stdout


# --- issue 15: plain HTTP ------------------------------------------------------------------------
def _plain(url: str) -> str:
    return "http://" + url.split("://", 1)[1]


def test_plain_http_endpoints_are_refused(seeded, tmp_path):
    """Loopback included: a refresh token, client secret or Basic credentials never leave
    over plain HTTP unless allow_insecure_http says so."""
    sf_url = _plain(seeded.connection["salesforce"]["login_url"])
    ac_url = _plain(seeded.connection["appcues"]["base_url"])
    runs = [
        run_plugin("tap-salesforce-appcues", tap_config(seeded, domain=sf_url), tmp_path),
        run_plugin(
            "tap-salesforce-appcues",
            tap_config(seeded, user_objects=[], account_object="", appcues_base_url=ac_url),
            tmp_path,
        ),
        run_plugin(
            "target-salesforce-events",
            events_config(seeded, tmp_path, domain=sf_url),
            tmp_path,
            stdin=EVENT_LINES,
        ),
        run_plugin(
            "target-salesforce-events",
            events_config(seeded, tmp_path, domain=sf_url),
            tmp_path,
            "--check",
        ),
        run_plugin(
            "target-appcues-profiles",
            profiles_config(seeded, tmp_path, base_url=ac_url),
            tmp_path,
            stdin=PROFILE_LINES,
        ),
    ]
    secrets = seeded.secrets().values()
    for done in runs:
        assert_refused(done, "http://", "allow_insecure_http")
        output = done.stdout + done.stderr
        assert not [s for s in secrets if s and s in output]
        assert '"bookmarks"' not in done.stdout
    assert no_events(seeded)


# --- issue 15: the tap's state ---------------------------------------------------------------
def _state_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "state.json"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        ("{not json", ("state.json", "not JSON")),
        ('{"bookmarks": ["Contact"]}', ("state.json", "bookmarks")),
        ('{"bookmarks": {"Contact": "2026-01-01"}}', ("state.json", "'Contact'")),
        (
            '{"bookmarks": {"Contact": {"replication_key": "SystemModstamp", '
            '"replication_key_value": "last tuesday"}}}',
            ("state.json", "'Contact'", "last tuesday", "ISO 8601"),
        ),
    ],
)
def test_tap_bad_state_names_the_state_and_stream(seeded, tmp_path, text, needles):
    state = _state_file(tmp_path, text)
    done = run_plugin("tap-salesforce-appcues", tap_config(seeded), tmp_path, "--state", str(state))
    assert_refused(done, *needles)
    assert "Traceback" not in done.stderr
    assert '"RECORD"' not in done.stdout


FUTURE = "2100-01-01T00:00:00.000Z"


@pytest.mark.parametrize(
    ("stream", "key", "clock"),
    [("Contact", "SystemModstamp", "org's clock"), ("appcues_events", "timestamp", "clock")],
)
def test_tap_future_bookmark_is_refused_unless_allowed(seeded, tmp_path, stream, key, clock):
    bookmark = {"replication_key": key, "replication_key_value": FUTURE}
    state = _state_file(tmp_path, json.dumps({"bookmarks": {stream: bookmark}}))
    config = tap_config(seeded)
    refused = run_plugin("tap-salesforce-appcues", config, tmp_path, "--state", str(state))
    assert_refused(refused, f"'{stream}'", FUTURE, clock, "allow_future_bookmark")

    allowed = run_plugin(
        "tap-salesforce-appcues",
        {**config, "allow_future_bookmark": True},
        tmp_path,
        "--state",
        str(state),
    )
    assert allowed.returncode == 0, allowed.stderr[-2000:]
    assert FUTURE in allowed.stderr  # the warning names the bookmark
    states = [json.loads(line) for line in allowed.stdout.splitlines() if '"STATE"' in line]
    kept = states[-1]["value"]["bookmarks"][stream]
    assert kept["replication_key_value"] == FUTURE
    records = [line for line in allowed.stdout.splitlines() if '"RECORD"' in line]
    assert not [r for r in records if json.loads(r)["stream"] == stream]


# --- issue 15: damaged ledgers and local files -------------------------------------------------
def test_events_target_damaged_ledger_stops_and_names_the_file(seeded, tmp_path):
    ledger = tmp_path / "state" / "ledger.sqlite3"
    ledger.parent.mkdir(parents=True)
    ledger.write_bytes(b"SQLite format 3\x00" + b"\x07" * 3000)  # a truncated, garbled file
    done = run_plugin(
        "target-salesforce-events", events_config(seeded, tmp_path), tmp_path, stdin=EVENT_LINES
    )
    assert_failed_in_one_line(done, str(ledger), "backup", "local_ledger")
    assert '"bookmarks"' not in done.stdout
    assert no_events(seeded)
    assert ledger.read_bytes().startswith(b"SQLite format 3\x00\x07")  # left as it was


def _profile_lines(*user_ids: str) -> str:
    schema = json.loads(PROFILE_LINES.splitlines()[0])
    records = [
        {
            "type": "RECORD",
            "stream": "Contact",
            "record": {"Id": f"0035g00000000{i:05d}", "Product_User_Id__c": uid, "Title": "t"},
        }
        for i, uid in enumerate(user_ids)
    ]
    return "\n".join(json.dumps(m) for m in [schema, *records])


def test_profiles_target_damaged_ledger_is_set_aside(seeded, tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    ledger = state / "appcues-profiles-ledger.sqlite3"
    ledger.write_bytes(b"this is no database" * 100)
    user = "usr-ledger-aside-1"
    done = run_plugin(
        "target-appcues-profiles",
        profiles_config(seeded, tmp_path),
        tmp_path,
        stdin=_profile_lines(user),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert str(ledger) in done.stderr and "set aside" in done.stderr
    (aside,) = state.glob("appcues-profiles-ledger.sqlite3.damaged-*")
    assert aside.read_bytes().startswith(b"this is no database")
    _, ac = H.verification_clients(seeded)
    try:
        assert (ac.get_user_profile(user) or {}).get("Title") == "t"
    finally:
        ac.close()


@pytest.mark.parametrize("executable", ["target-salesforce-events", "target-appcues-profiles"])
def test_local_path_problems_name_the_path_and_cause(seeded, tmp_path, executable):
    make = events_config if executable == "target-salesforce-events" else profiles_config
    stdin = EVENT_LINES if executable == "target-salesforce-events" else PROFILE_LINES
    folder = tmp_path / "letters"
    folder.mkdir()
    done = run_plugin(
        executable, make(seeded, tmp_path, dead_letter_path=str(folder)), tmp_path, stdin=stdin
    )
    assert_refused(done, "dead_letter_path", str(folder), "folder")
    in_the_way = tmp_path / "a-file"
    in_the_way.write_text("")
    done = run_plugin(
        executable, make(seeded, tmp_path, state_dir=str(in_the_way)), tmp_path, stdin=stdin
    )
    assert_refused(done, "state_dir", str(in_the_way), "is a file")
    assert '"bookmarks"' not in done.stdout


# --- issue 15: ids that URL normalisation would turn into another route -----------------------
def test_dot_user_ids_never_reach_another_route(seeded, tmp_path):
    good = "usr-dot-neighbour"
    done = run_plugin(
        "target-appcues-profiles",
        profiles_config(seeded, tmp_path, import_threshold=1000),  # PATCH per profile
        tmp_path,
        stdin=_profile_lines(".", "..", good),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    letters = [
        json.loads(line)
        for line in (tmp_path / "state" / "dead-letters.jsonl").read_text().splitlines()
    ]
    assert sorted(d["reason"] for d in letters) == ["unaddressable_id", "unaddressable_id"]
    _, ac = H.verification_clients(seeded)
    try:
        assert (ac.get_user_profile(good) or {}).get("Title") == "t"
        for bad in (".", ".."):
            with pytest.raises(ValueError, match="URL path"):
                ac.patch_user_profile(bad, {"Title": "x"})
    finally:
        ac.close()
    requests_seen = seeded.appcues.call("GET", "stats")
    assert "users/../profile" not in json.dumps(requests_seen)


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (ENOSPC on write)")
@pytest.mark.parametrize("executable", ["target-salesforce-events", "target-appcues-profiles"])
def test_disk_full_on_dead_letters_names_the_path(seeded, tmp_path, executable):
    """/dev/full answers every write with ENOSPC, as a full disk does."""
    if executable == "target-salesforce-events":
        config = events_config(seeded, tmp_path, dead_letter_path="/dev/full")
        stdin = EVENT_LINES.replace('"user_id": "usr_c0000001"', '"user_id": "usr-nobody-42"')
    else:
        config = profiles_config(seeded, tmp_path, dead_letter_path="/dev/full")
        stdin = _profile_lines("")  # a blank id: dead-lettered
    done = run_plugin(executable, config, tmp_path, stdin=stdin)
    assert_failed_in_one_line(done, "dead_letter_path", "/dev/full", "disk is full")
    assert '"bookmarks"' not in done.stdout


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (ENOSPC on write)")
def test_events_target_ledger_on_a_full_disk_fails_in_one_line(seeded, tmp_path):
    """SQLite's first write to /dev/full gets ENOSPC, as on a full disk."""
    config = events_config(seeded, tmp_path, ledger_path="/dev/full")
    done = run_plugin("target-salesforce-events", config, tmp_path, stdin=EVENT_LINES)
    assert_failed_in_one_line(done, "ledger_path", "/dev/full", "disk is full")
    assert '"bookmarks"' not in done.stdout
    assert no_events(seeded)


def _event_lines(first: int, count: int) -> str:
    """`count` integration events of seeded users, then a STATE."""
    schema = json.loads(EVENT_LINES.splitlines()[0])
    records = [
        {
            "type": "RECORD",
            "stream": "appcues_events",
            "record": {
                "id": f"evt-ledger-full-{i}",
                "name": "appcues:goal_reached",
                "timestamp": "2026-01-02T00:00:00Z",
                "user_id": f"usr_c{i % 4 + 1:07d}",
            },
        }
        for i in range(first, first + count)
    ]
    state = {"type": "STATE", "value": {"bookmarks": {"batch": first + count}}}
    return "\n".join(json.dumps(m) for m in [schema, *records, state])


def _run_with_file_size_limit(
    executable: str, config: dict, tmp_path: Path, stdin: str, limit: int | None
) -> subprocess.CompletedProcess:
    """A target whose files cannot grow past `limit` bytes (RLIMIT_FSIZE: the kernel answers
    EFBIG as a full disk answers ENOSPC; CPython ignores SIGXFSZ)."""
    path = tmp_path / f"{executable}.json"
    path.write_text(json.dumps(config))

    def apply_limit() -> None:
        if limit is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    done = subprocess.run(
        [BIN / executable, "--config", path],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=180,
        # A limited run at the default log level: DEBUG adds the traceback on purpose.
        env={**os.environ, **H.debug_env} if limit is None else None,
        cwd=tmp_path,
        preexec_fn=apply_limit,
        check=False,
    )
    H.remember(f"{executable} (file size limit {limit})", done.stdout + done.stderr)
    return done


# Room for SQLite's 32 KiB shared-memory index, not for a batch's ledger writes.
FULL_DISK = 48 * 1024


@pytest.mark.timeout(600)
def test_events_ledger_write_on_a_full_disk_fails_in_one_line_and_the_rerun_writes_once(
    seeded, tmp_path
):
    """The ledger cannot grow mid-run, under the local_ledger strategy, whose only defence
    against duplicates is that file: one line, exit 1, no STATE; the run after space is
    freed writes every event exactly once."""
    config = events_config(seeded, tmp_path, event_id_field="")
    ledger = tmp_path / "state" / "ledger.sqlite3"
    before = event_ids_in_salesforce(seeded)

    def run(stdin: str, limit: int | None = None) -> subprocess.CompletedProcess:
        return _run_with_file_size_limit("target-salesforce-events", config, tmp_path, stdin, limit)

    first = run(_event_lines(0, 50))  # the ledger exists, as after earlier runs
    assert first.returncode == 0, first.stderr[-3000:]
    assert event_ids_in_salesforce(seeded) == before + 50

    full = run(_event_lines(1000, 300), FULL_DISK)
    assert_failed_in_one_line(full, "ledger", str(ledger))
    assert '"bookmarks"' not in full.stdout
    # The case that matters: Salesforce confirmed inserts the ledger could not record.
    assert event_ids_in_salesforce(seeded) > before + 50

    again = run(_event_lines(1000, 300))
    assert again.returncode == 0, again.stderr[-3000:]
    assert '"batch": 1300' in again.stdout
    assert event_ids_in_salesforce(seeded) == before + 350  # none twice, none missing


def test_profiles_ledger_write_on_a_full_disk_fails_in_one_line(seeded, tmp_path):
    config = profiles_config(seeded, tmp_path)
    ledger = tmp_path / "state" / "appcues-profiles-ledger.sqlite3"
    users = [f"usr-ledger-full-{i}" for i in range(300)]
    first = _run_with_file_size_limit(
        "target-appcues-profiles", config, tmp_path, _profile_lines(*users[:50]), None
    )
    assert first.returncode == 0, first.stderr[-3000:]
    full = _run_with_file_size_limit(
        "target-appcues-profiles", config, tmp_path, _profile_lines(*users), FULL_DISK
    )
    assert_failed_in_one_line(full, "state_dir", "ledger", str(ledger))
    assert '"bookmarks"' not in full.stdout
    again = _run_with_file_size_limit(
        "target-appcues-profiles", config, tmp_path, _profile_lines(*users), None
    )
    assert again.returncode == 0, again.stderr[-3000:]


def test_profiles_target_unopenable_ledger_fails_in_one_line(seeded, tmp_path):
    """A folder where the ledger file belongs (chmod would not stop root): SQLite cannot open
    it, and nothing is set aside or written."""
    ledger = tmp_path / "state" / "appcues-profiles-ledger.sqlite3"
    ledger.mkdir(parents=True)
    user = "usr-ledger-unopenable-1"
    done = run_plugin(
        "target-appcues-profiles",
        profiles_config(seeded, tmp_path),
        tmp_path,
        stdin=_profile_lines(user),
    )
    assert_failed_in_one_line(done, "state_dir", str(ledger), "cannot open the ledger")
    assert '"bookmarks"' not in done.stdout
    assert ledger.is_dir() and not list(ledger.parent.glob("*.damaged-*"))
    _, ac = H.verification_clients(seeded)
    try:
        assert ac.get_user_profile(user) is None
    finally:
        ac.close()
