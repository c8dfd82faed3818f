"""The ledger (SQLite, per account) and the dead-letter file (JSON lines)."""

from __future__ import annotations

import threading

from target_appcues_profiles.dead_letter import DeadLetter, DeadLetterFile, read_dead_letters
from target_appcues_profiles.ledger import Ledger


def test_ledger_remembers_confirmed_digests_across_instances(tmp_path):
    ledger = Ledger(tmp_path, "acct1")
    assert ledger.digests("user", "Contact", ["u1", "u2"]) == {}
    ledger.confirm("user", "Contact", {"u1": "d1", "u2": "d2"})
    ledger.confirm("user", "Contact", {"u1": "d1b"})
    ledger.close()
    again = Ledger(tmp_path, "acct1")
    assert again.digests("user", "Contact", ["u1", "u2", "u3"]) == {"u1": "d1b", "u2": "d2"}
    # kinds, streams and accounts are separate keys
    assert again.digests("group", "Contact", ["u1"]) == {}
    assert again.digests("user", "Lead", ["u1"]) == {}
    assert Ledger(tmp_path, "acct2").digests("user", "Contact", ["u1"]) == {}
    assert again.count("user") == 2


def test_ledger_lookup_of_many_ids_and_parallel_writers(tmp_path):
    ledger = Ledger(tmp_path, "a")
    ids = [f"u{i}" for i in range(2300)]

    def write(part):
        ledger.confirm("user", "Contact", {pid: f"d-{pid}" for pid in part})

    threads = [threading.Thread(target=write, args=(ids[i::4],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    found = ledger.digests("user", "Contact", ids)
    assert len(found) == 2300
    assert found["u1999"] == "d-u1999"


def test_dead_letter_lines_and_counts(tmp_path):
    path = tmp_path / "dl" / "dead.jsonl"
    file = DeadLetterFile(path)
    file.write(
        DeadLetter(
            "missing_id",
            "Contact record: no id",
            stream="Contact",
            record_key={"Id": "003A"},
            fields=["Product_User_Id__c"],
        )
    )
    file.write(
        DeadLetter(
            "rejected",
            "refused",
            stream="Contact",
            record_key={"Id": "003B"},
            profile_id="u2",
            status=400,
            detail="attribute too long",
        )
    )
    lines = read_dead_letters(path)
    assert [line["reason"] for line in lines] == ["missing_id", "rejected"]
    assert lines[0]["record_key"] == {"Id": "003A"}
    assert lines[0]["field"] == "Product_User_Id__c"
    assert lines[1]["status"] == 400
    assert lines[1]["detail"] == "attribute too long"
    assert {"format", "at", "target", "stream", "profile_id", "message"} <= set(lines[1])
    assert dict(file.counts) == {"missing_id": 1, "rejected": 1}
