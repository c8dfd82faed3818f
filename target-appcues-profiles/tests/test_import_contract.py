"""Bulk imports whichever way Appcues' undocumented import contract really works.

The sandbox answers each plausible way (`import_job_style`, `import_formats`,
`import_error_row_base`, `import_job_stalls`); whatever it says, every profile ends with
its attributes, the ledger holds only rows Appcues proved written, and a second run is
correct.
"""

from __future__ import annotations

import logging
import sqlite3
from itertools import product
from pathlib import Path

import pytest

PATCH_USER = "PATCH /v2/accounts/{account_id}/users/{user_id}/profile"
GET_USER = "GET /v2/accounts/{account_id}/users/{user_id}/profile"
IMPORT = "POST /v2/accounts/{account_id}/import/profiles"
N = 40
BAD = 17  # Appcues refuses this one (a text over 4,096 characters), mid-job


def _postal(n: int) -> str:
    # Half the contacts have a numeral as postal code: text a CSV import would turn into a
    # number, so those rows must not travel as CSV.
    return "69001" if n % 2 else f"F-{69000 + n}"


def _records(feeds, bad: int | None = BAD):
    records = []
    for n in range(1, N + 1):
        fields = {"MailingAddress": {"city": "Lyon", "postalCode": _postal(n)}}
        if n == bad:
            fields["Email"] = "x" * 5000
        records.append(feeds.contact(n, **fields))
    return [
        feeds.schema("Contact", feeds.CONTACT_PROPERTIES),
        *(feeds.record("Contact", r) for r in records),
        feeds.state({"bookmarks": {"Contact": 1}}),
    ]


def _uid(n: int) -> str:
    return f"usr_c{n:07d}"


def _ledger(tmp_path: Path) -> set[str]:
    db = sqlite3.connect(tmp_path / "state" / "appcues-profiles-ledger.sqlite3")
    try:
        return {row[0] for row in db.execute("SELECT profile_id FROM confirmed")}
    finally:
        db.close()


def _check_end_state(appcues, tmp_path, bad: int | None = BAD) -> None:
    """Profile by profile: every good one holds its attributes with their types; the
    refused one is absent; the ledger holds exactly the profiles Appcues holds."""
    for n in range(1, N + 1):
        profile = appcues.user(_uid(n))
        if n == bad:
            assert profile is None
            continue
        assert profile is not None, _uid(n)
        assert profile["FirstName"] == f"First{n}"
        assert profile["Email"] == f"user{n}@example.com"
        assert profile["MailingPostalCode"] == _postal(n)  # text stays text
        assert profile["MailingCity"] == "Lyon"
        assert profile["NPS_Score__c"] == n % 11
        assert profile["HasOptedOutOfEmail"] is (n % 2 == 0)
        assert profile["Interests__c"] == "Flows;Checklists"
    expected = {_uid(n) for n in range(1, N + 1) if n != bad}
    assert _ledger(tmp_path) == expected


STYLES = ("detailed", "minimal", "ignores_body")
FORMATS = (["ndjson", "csv"], ["csv"], [])


@pytest.mark.parametrize(
    ("style", "formats"),
    list(product(STYLES, FORMATS)),
    ids=[f"{s}-{'+'.join(f) or 'none'}" for s, f in product(STYLES, FORMATS)],
)
def test_every_job_style_and_body_format_ends_correct(
    appcues, tmp_path, feeds, run, style, formats, caplog
):
    appcues.control("POST", "settings", {"import_job_style": style, "import_formats": formats})
    config = appcues.config(tmp_path, import_threshold=10, import_max_rows=20)
    messages = _records(feeds)

    first = run(config, messages)
    assert first.states == [{"bookmarks": {"Contact": 1}}]
    _check_end_state(appcues, tmp_path)
    [letter] = first.dead_letters
    assert letter["profile_id"] == _uid(BAD)
    assert letter["reason"] in ("import_row_error", "rejected")
    assert "Email" in letter["detail"]
    assert first.summary["users_created"] == N - 1

    summary, calls = first.summary, appcues.stats()["calls"]
    if style == "detailed" and "ndjson" in formats:
        # the default path: two jobs with a verdict per row, no read-back; only the
        # refused row and its neighbour (numbering from 0 or 1) re-sent for a verdict
        assert summary["import_jobs"] == 2
        assert summary["import_readbacks"] == summary["import_rows_resent"] == 0
        assert calls[PATCH_USER] == 2
    if not formats:
        assert summary["import_jobs"] == 0
        assert calls[PATCH_USER] == N
    if style == "ignores_body" and formats:
        # the first job's read-back exposes it (its first row already differs); the run
        # goes on by PATCH
        assert summary["import_jobs"] == 1
        assert summary["import_readbacks"] == 1
        assert sum("not trusted for the rest of this run" in m for m in caplog.messages) == 1
    if formats == ["csv"]:
        assert sum("refused the NDJSON import body" in m for m in caplog.messages) == 1, (
            "the format switch is logged once per run"
        )

    # A second run of the same records: nothing new, the refused row tried again
    second = run(config, messages)
    assert second.summary["users_unchanged_skipped"] == N - 1
    assert second.summary["users_created"] == second.summary["users_updated"] == 0
    assert [d["profile_id"] for d in second.dead_letters] == [_uid(BAD)] * 2
    _check_end_state(appcues, tmp_path)


def test_zero_based_error_rows_never_confirm_the_refused_row(appcues, tmp_path, feeds, run):
    """If Appcues numbers errors[].row from 0, the row named is not the 1-based one: the
    refused row must still be found, and its neighbour still be written."""
    appcues.control("POST", "settings", {"import_error_row_base": 0})
    config = appcues.config(tmp_path, import_threshold=10)
    result = run(config, _records(feeds))
    _check_end_state(appcues, tmp_path)
    [letter] = result.dead_letters
    assert letter["profile_id"] == _uid(BAD)
    assert letter["reason"] == "import_row_error"
    assert result.summary["import_readbacks"] == 0
    assert appcues.stats()["calls"][PATCH_USER] == 2  # the refused row and one neighbour


def test_a_job_that_never_ends_is_not_confirmed(appcues, tmp_path, feeds, run, caplog):
    appcues.control("POST", "settings", {"import_job_stalls": True})
    config = appcues.config(tmp_path, import_threshold=10, import_max_rows=20, import_timeout=1)
    result = run(config, _records(feeds, bad=None))
    assert sum("still 'running' after import_timeout" in m for m in caplog.messages) == 1
    assert result.summary["import_jobs"] == 1  # no second wait on a stuck queue
    assert result.summary["import_rows_resent"] == N
    _check_end_state(appcues, tmp_path, bad=None)
    assert result.states == [{"bookmarks": {"Contact": 1}}]


def test_an_unknown_job_route_sends_the_rows_by_patch(appcues, tmp_path, feeds, run, caplog):
    appcues.faults({"match": {"method": "GET", "path": "/jobs/"}, "action": "error", "status": 404})
    config = appcues.config(tmp_path, import_threshold=10, import_max_rows=20)
    result = run(config, _records(feeds, bad=None))
    _check_end_state(appcues, tmp_path, bad=None)
    # the first job's 404 stops imports for the run: the second chunk is not imported
    assert result.summary["import_jobs"] == 1
    assert result.summary["import_rows_resent"] == N
    assert sum("job route answered 404" in m for m in caplog.messages) == 1


def test_minimal_job_with_a_silently_dropped_row_is_caught_by_the_read_back(
    appcues, tmp_path, feeds, run, caplog
):
    """A job that only says `done` and dropped one row: the read-back sample (which always
    holds the largest row) finds it; the job's rows go by PATCH and the run says why."""
    caplog.set_level(logging.WARNING)
    appcues.control("POST", "settings", {"import_job_style": "minimal"})
    config = appcues.config(tmp_path, import_threshold=10)
    result = run(config, _records(feeds))
    _check_end_state(appcues, tmp_path)
    assert result.summary["import_readbacks"] <= 11
    assert result.summary["import_rows_resent"] == N
    assert any("read back differ" in m and "import contract" in m for m in caplog.messages)


def test_minimal_job_that_wrote_everything_costs_only_the_read_back(appcues, tmp_path, feeds, run):
    appcues.control("POST", "settings", {"import_job_style": "minimal"})
    config = appcues.config(tmp_path, import_threshold=10)
    result = run(config, _records(feeds, bad=None))
    _check_end_state(appcues, tmp_path, bad=None)
    calls = appcues.stats()["calls"]
    assert PATCH_USER not in calls
    assert calls[IMPORT] == 1
    # first, last, 8 evenly spaced, and the largest row if not among them
    assert 10 <= result.summary["import_readbacks"] <= 11


@pytest.mark.parametrize("style", STYLES)
def test_group_imports_are_confirmed_only_on_evidence(appcues, tmp_path, feeds, run, style):
    appcues.control("POST", "settings", {"import_job_style": style})
    accounts = [feeds.account(g, Industry=None if g % 3 else "Software") for g in range(30)]
    messages = [
        feeds.schema("Account", feeds.ACCOUNT_PROPERTIES),
        *(feeds.record("Account", a) for a in accounts),
    ]
    config = appcues.config(tmp_path, import_threshold=10)
    result = run(config, messages)
    for g, account in enumerate(accounts):
        group = appcues.group(f"acct_{g:06d}")
        assert group is not None
        assert group["Name"] == account["Name"]
        assert group["AnnualRevenue"] == account["AnnualRevenue"]
        assert group.get("Industry") == account["Industry"]
    assert result.summary["groups_created"] == 30
    # detailed: no read-back; minimal: 10 spread rows and the largest; ignores_body: the
    # first row read back already differs
    readbacks = {"detailed": 0, "minimal": 11, "ignores_body": 1}[style]
    assert result.summary["import_readbacks"] == readbacks
