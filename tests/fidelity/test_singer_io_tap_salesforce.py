"""singer-io tap-salesforce (PyPI, its own virtualenv) against the sandbox, REST and BULK
(Bulk API 1.0) modes.

Only its hard-coded login host is redirected (tap_salesforce_login_redirect.py); discovery,
the full sync and the incremental sync run as they would against a real org.
"""

import json
import subprocess
from datetime import datetime
from pathlib import Path

import pytest

from salesforce_appcues_sandbox.common import identities
from salesforce_appcues_sandbox.testing import ca_environment

HERE = Path(__file__).parent
REQUIREMENTS = HERE / "tap-salesforce-requirements.txt"
WRAPPER = HERE / "tap_salesforce_login_redirect.py"
SEED = 5
COUNTS = {"Contact": 2500, "Lead": 300, "Account": 80}
STREAMS = tuple(COUNTS)


@pytest.fixture(scope="module")
def tap_python(pinned_python):
    return pinned_python(REQUIREMENTS, "tap-salesforce")


class Tap:
    def __init__(self, python, org, workdir, api_type="REST"):
        self.python = python
        self.workdir = workdir
        self.config = workdir / "config.json"
        info = org.info
        self.config.write_text(
            json.dumps(
                {
                    "refresh_token": info["refresh_token"],
                    "client_id": info["client_id"],
                    "client_secret": info["client_secret"],
                    "start_date": "2000-01-01T00:00:00Z",
                    "api_type": api_type,
                    "select_fields_by_default": True,
                }
            )
        )
        self.env = ca_environment(org.connection)
        self.env["SANDBOX_SALESFORCE_LOGIN_URL"] = info["login_url"]  # the wrapper's target

    def __call__(self, *args):
        done = subprocess.run(
            [str(self.python), str(WRAPPER), "--config", str(self.config), *args],
            capture_output=True,
            text=True,
            env=self.env,
            cwd=self.workdir,
            timeout=240,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout

    def sync(self, catalog, state=None):
        args = ["--properties", str(catalog)]
        if state is not None:
            path = self.workdir / "state.json"
            path.write_text(json.dumps(state))
            args += ["--state", str(path)]
        records = {s: [] for s in STREAMS}
        last_state = None
        for line in self(*args).splitlines():
            message = json.loads(line)
            if message["type"] == "RECORD":
                records[message["stream"]].append(message["record"])
            elif message["type"] == "STATE":
                last_state = message["value"]
        return records, last_state


def select_incremental(catalog, names):
    """The discovered streams named in `names`, selected incrementally on SystemModstamp
    (also used by bench/singer_io_tap.py)."""
    selected = []
    for stream in catalog["streams"]:
        if stream["stream"] not in names:
            continue
        for entry in stream["metadata"]:
            if entry["breadcrumb"] == []:
                entry["metadata"].update(
                    {
                        "selected": True,
                        "replication-method": "INCREMENTAL",
                        "replication-key": "SystemModstamp",
                    }
                )
        selected.append(stream)
    return selected


def moment(text):
    return datetime.fromisoformat(text)


def expected_user_id(kind, email):
    """The generator's contract: record i has email '...{i}@example.com' (leads offset by
    100,000,000) and product id user_id(kind, i) unless it never signed up."""
    i = int(email.split("@")[0].rsplit(".", 1)[1]) - (100_000_000 if kind == "lead" else 0)
    return identities.user_id(kind, i) if identities.has_user_id(SEED, kind, i) else None


def test_discover_full_sync_then_incremental(org, tap_python, tmp_path):
    assert org.reseed(**COUNTS, seed=SEED)["seeded"] == COUNTS
    tap = Tap(tap_python, org, tmp_path)

    catalog = json.loads(tap("--discover"))
    streams = {s["stream"]: s for s in catalog["streams"]}
    assert set(STREAMS) <= set(streams)
    contact_props = streams["Contact"]["schema"]["properties"]
    assert {"Id", "SystemModstamp", "Product_User_Id__c", "MailingAddress"} <= set(contact_props)
    assert "format" in json.dumps(contact_props["SystemModstamp"])
    for name in STREAMS:
        (top,) = [e for e in streams[name]["metadata"] if e["breadcrumb"] == []]
        assert "SystemModstamp" in top["metadata"]["valid-replication-keys"]
    selected = select_incremental(catalog, STREAMS)
    catalog_path = tmp_path / "catalog.json"
    catalog_path.write_text(json.dumps({"streams": selected}))

    # -- full sync ----------------------------------------------------------------------
    first, state = tap.sync(catalog_path)
    assert {s: len(r) for s, r in first.items()} == COUNTS
    for name in STREAMS:
        assert len({r["Id"] for r in first[name]}) == COUNTS[name]
        stamps = [moment(r["SystemModstamp"]) for r in first[name]]
        assert stamps == sorted(stamps)  # ORDER BY SystemModstamp ASC, across pages
    for contact in first["Contact"]:
        assert contact["Product_User_Id__c"] == expected_user_id("contact", contact["Email"])
        assert contact["IsDeleted"] is False
        if contact["MailingCity"] is not None:
            assert contact["MailingAddress"]["city"] == contact["MailingCity"]
    for lead in first["Lead"]:
        assert lead["Product_User_Id__c"] == expected_user_id("lead", lead["Email"])
    assert {a["Product_Account_Id__c"] for a in first["Account"]} == {
        identities.account_id(k) for k in range(COUNTS["Account"])
    }
    bookmarks = {name: moment(state["bookmarks"][name]["SystemModstamp"]) for name in STREAMS}
    for name in STREAMS:
        assert bookmarks[name] == max(moment(r["SystemModstamp"]) for r in first[name])

    # -- changes through the API ---------------------------------------------------------
    token = org.token()
    api = org.session()
    api.headers["Authorization"] = f"Bearer {token['access_token']}"
    base = f"{token['instance_url']}/services/data/v61.0/sobjects"
    oldest = first["Contact"][:3]
    for n, contact in enumerate(oldest):
        resp = api.patch(f"{base}/Contact/{contact['Id']}", json={"Title": f"Changed {n}"})
        assert resp.status_code == 204, resp.text
    deleted = first["Contact"][3]["Id"]
    assert api.delete(f"{base}/Contact/{deleted}").status_code == 204
    converted = next(r["Id"] for r in first["Lead"] if r["IsConverted"])
    resp = api.patch(f"{base}/Lead/{converted}", json={"Title": "Changed"})
    assert resp.json()[0]["errorCode"] == "CANNOT_UPDATE_CONVERTED_LEAD"
    lead = next(r["Id"] for r in first["Lead"] if not r["IsConverted"])
    assert api.patch(f"{base}/Lead/{lead}", json={"Title": "Changed"}).status_code == 204
    resp = api.post(f"{base}/Account", json={"Name": "Incremental Co"})
    assert resp.status_code == 201, resp.text
    new_account = resp.json()["id"]
    api.close()

    # -- incremental sync from the first run's state ----------------------------------------
    second, _ = tap.sync(catalog_path, state)
    # `SystemModstamp >= bookmark` re-sends the records sharing the bookmark's second
    at_bookmark = {
        name: {r["Id"] for r in first[name] if moment(r["SystemModstamp"]) == bookmarks[name]}
        for name in STREAMS
    }
    assert all(at_bookmark.values())
    changed = {
        "Contact": {c["Id"] for c in oldest} | {deleted},
        "Lead": {lead},
        "Account": {new_account},
    }
    for name in STREAMS:
        got = [r["Id"] for r in second[name]]
        assert len(got) == len(set(got))
        assert set(got) == changed[name] | at_bookmark[name], name
    by_id = {r["Id"]: r for r in second["Contact"]}
    assert [by_id[c["Id"]]["Title"] for c in oldest] == ["Changed 0", "Changed 1", "Changed 2"]
    assert by_id[deleted]["IsDeleted"] is True  # queryAll returns the soft-deleted row
    assert {r["Id"]: r for r in second["Account"]}[new_account]["Name"] == "Incremental Co"


def _select_all(tap, workdir):
    """Discover, select every stream of STREAMS incrementally on SystemModstamp; catalog path."""
    selected = select_incremental(json.loads(tap("--discover")), STREAMS)
    path = workdir / "catalog.json"
    path.write_text(json.dumps({"streams": selected}))
    return path, {s["stream"]: s for s in selected}


def _unsupported(stream):
    return {
        entry["breadcrumb"][1]
        for entry in stream["metadata"]
        if entry["breadcrumb"] and entry["metadata"].get("inclusion") == "unsupported"
    }


BULK_COUNTS = {"Contact": 150, "Lead": 40, "Account": 12}


def test_bulk_mode_records_equal_rest_mode(org, tap_python, tmp_path):
    assert org.reseed(**BULK_COUNTS, seed=SEED)["seeded"] == BULK_COUNTS
    token = org.token()
    api = org.session()
    api.headers["Authorization"] = f"Bearer {token['access_token']}"
    base = f"{token['instance_url']}/services/data/v61.0"
    first = api.get(f"{base}/query", params={"q": "SELECT Id FROM Contact ORDER BY Id LIMIT 1"})
    deleted = first.json()["records"][0]["Id"]
    assert api.delete(f"{base}/sobjects/Contact/{deleted}").status_code == 204
    api.close()

    (tmp_path / "rest").mkdir()
    (tmp_path / "bulk").mkdir()
    rest_tap = Tap(tap_python, org, tmp_path / "rest", api_type="REST")
    bulk_tap = Tap(tap_python, org, tmp_path / "bulk", api_type="BULK")
    rest_catalog, _ = _select_all(rest_tap, tmp_path / "rest")
    bulk_catalog, bulk_streams = _select_all(bulk_tap, tmp_path / "bulk")
    rest, _ = rest_tap.sync(rest_catalog)
    bulk, bulk_state = bulk_tap.sync(bulk_catalog)

    calls = org.control("GET", "stats")["calls"]
    assert calls.get("POST /services/async/61.0/job", 0) == len(STREAMS)
    assert {s: len(r) for s, r in bulk.items()} == BULK_COUNTS
    for name in STREAMS:
        compound = _unsupported(bulk_streams[name])
        if name == "Contact":
            assert "MailingAddress" in compound  # Bulk cannot select compound fields
        expected = {r["Id"]: {k: v for k, v in r.items() if k not in compound} for r in rest[name]}
        assert {r["Id"]: r for r in bulk[name]} == expected, name
        stamps = [moment(r["SystemModstamp"]) for r in bulk[name]]
        assert stamps == sorted(stamps)  # the batch's ORDER BY SystemModstamp
    by_id = {r["Id"]: r for r in bulk["Contact"]}
    assert by_id[deleted]["IsDeleted"] is True  # the tap's jobs are queryAll
    assert bulk_state["bookmarks"]["Contact"]["SystemModstamp"]

    # A batch failing with QUERY_TIMEOUT makes the tap retry with PK chunking
    org.control(
        "POST",
        "bulk",
        {
            "fail_bulk1_batches": 1,
            "bulk1_state_message": "InternalServerError : QUERY_TIMEOUT : query timed out",
        },
    )
    chunked, _ = bulk_tap.sync(bulk_catalog)
    batches = org.control("GET", "stats")["bulk1_batches"]
    assert batches["Failed"] == 1 and batches["Not Processed"] == 1
    for name in STREAMS:
        assert {r["Id"]: r for r in chunked[name]} == {r["Id"]: r for r in bulk[name]}, name
