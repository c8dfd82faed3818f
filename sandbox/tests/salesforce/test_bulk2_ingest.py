"""Bulk API 2.0 ingest jobs: lifecycle, state errors, CSV dialects, results, faults, and record
errors identical to sObject Collections'."""

import csv
import gzip
import io
import time

import pytest


def _create(org, **body):
    response = org.http.post(org.url("jobs/ingest"), json={"contentType": "CSV", **body})
    assert response.status_code == 200, response.text
    return response.json()


def _upload(org, job_id, data, content_type="text/csv"):
    return org.http.put(
        org.url(f"jobs/ingest/{job_id}/batches"),
        data=data.encode() if isinstance(data, str) else data,
        headers={"Content-Type": content_type},
    )


def _close(org, job_id):
    return org.http.patch(org.url(f"jobs/ingest/{job_id}"), json={"state": "UploadComplete"})


def _wait(org, job_id):
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        info = org.http.get(org.url(f"jobs/ingest/{job_id}")).json()
        if info["state"] in ("JobComplete", "Failed", "Aborted"):
            return info
        time.sleep(0.02)
    raise AssertionError("job did not finish")


def _run(org, data, **body):
    job = _create(org, **body)
    assert _upload(org, job["id"], data).status_code == 201
    assert _close(org, job["id"]).status_code == 200
    return _wait(org, job["id"])


def _results(org, job_id, kind, delimiter=","):
    response = org.http.get(org.url(f"jobs/ingest/{job_id}/{kind}/"))
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(response.text, newline=""), delimiter=delimiter))


def test_insert_lifecycle_and_results(org):
    job = _create(org, object="Contact", operation="insert", lineEnding="LF")
    assert job["state"] == "Open" and job["id"].startswith("750")
    assert job["jobType"] == "V2Ingest" and job["contentUrl"].endswith(f"{job['id']}/batches")
    assert "numberRecordsProcessed" not in job  # the create answer carries no counters
    data = "LastName,Email,Product_User_Number__c\nAda,ada@example.com,7\nBob,not-an-email,8\n"
    assert _upload(org, job["id"], data).status_code == 201
    closed = _close(org, job["id"])
    assert closed.json()["state"] == "UploadComplete"
    info = _wait(org, job["id"])
    assert info["state"] == "JobComplete"
    assert info["numberRecordsProcessed"] == 2 and info["numberRecordsFailed"] == 1
    assert "errorMessage" not in info

    ok = _results(org, job["id"], "successfulResults")
    assert [(r["sf__Created"], r["LastName"], r["Product_User_Number__c"]) for r in ok] == [
        ("true", "Ada", "7")
    ]
    stored = org.get("Contact", ok[0]["sf__Id"])
    assert stored["Email"] == "ada@example.com" and stored["Product_User_Number__c"] == 7
    failed = _results(org, job["id"], "failedResults")
    assert failed[0]["sf__Id"] == "" and failed[0]["Email"] == "not-an-email"
    assert failed[0]["sf__Error"].startswith("INVALID_EMAIL_ADDRESS:Email: invalid email address")
    assert _results(org, job["id"], "unprocessedrecords") == []

    listed = org.http.get(org.url("jobs/ingest")).json()
    assert [j["id"] for j in listed["records"]] == [job["id"]] and listed["done"] is True
    assert org.http.delete(org.url(f"jobs/ingest/{job['id']}")).status_code == 204
    assert org.http.get(org.url(f"jobs/ingest/{job['id']}")).status_code == 404


def test_state_errors(org, errors_of):
    job = _create(org, object="Contact", operation="insert")
    assert org.http.delete(org.url(f"jobs/ingest/{job['id']}")).status_code == 400  # Open
    early = org.http.get(org.url(f"jobs/ingest/{job['id']}/successfulResults/"))
    assert early.status_code == 400 and errors_of(early) == ["INVALIDJOBSTATE"]
    assert _upload(org, job["id"], "LastName\nA\n").status_code == 201
    second = _upload(org, job["id"], "LastName\nB\n")
    assert second.status_code == 400 and errors_of(second) == ["INVALIDJOBSTATE"]
    assert "only do 'PUT' once" in second.json()[0]["message"]
    assert _close(org, job["id"]).status_code == 200
    after_close = _upload(org, job["id"], "LastName\nC\n")
    assert after_close.status_code == 400 and errors_of(after_close) == ["INVALIDJOBSTATE"]
    assert _close(org, job["id"]).status_code == 400  # closing twice
    info = _wait(org, job["id"])
    assert info["numberRecordsProcessed"] == 1  # the refused uploads added nothing
    abort_done = org.http.patch(org.url(f"jobs/ingest/{job['id']}"), json={"state": "Aborted"})
    assert abort_done.status_code == 400 and errors_of(abort_done) == ["INVALIDJOBSTATE"]
    bogus = org.http.patch(org.url(f"jobs/ingest/{job['id']}"), json={"state": "Closed"})
    assert bogus.status_code == 400
    missing = org.http.get(org.url("jobs/ingest/7505g0000000000ZZZAAA"))
    assert missing.status_code == 404


def test_create_refusals(org, errors_of):
    cases = [
        {"object": "Contact", "operation": "merge"},
        {"object": "Nope__c", "operation": "insert"},
        {"object": "Contact", "operation": "upsert"},
        {"object": "Contact", "operation": "upsert", "externalIdFieldName": "LastName"},
        {"object": "Contact", "operation": "insert", "columnDelimiter": "SPACE"},
        {"object": "Contact", "operation": "insert", "lineEnding": "CR"},
        {"object": "Contact", "operation": "insert", "contentType": "JSON"},
    ]
    for body in cases:
        response = org.http.post(org.url("jobs/ingest"), json=body)
        assert response.status_code == 400 and errors_of(response) == ["INVALIDJOB"], body


@pytest.mark.parametrize(
    ("delimiter", "char", "line_ending", "eol"),
    [("TAB", "\t", "CRLF", "\r\n"), ("PIPE", "|", "LF", "\n"), ("SEMICOLON", ";", "CRLF", "\r\n")],
)
def test_delimiters_and_line_endings(org, delimiter, char, line_ending, eol):
    rows = [
        ["LastName", "Title", "Product_User_Number__c"],
        ["Semi;Pipe|Tab\tName", 'says "hi"', "1"],
        ["Multi\nLine", "", "2"],
    ]
    out = io.StringIO()
    csv.writer(out, delimiter=char, lineterminator=eol).writerows(rows)
    info = _run(
        org, out.getvalue(), object="Contact", operation="insert",
        columnDelimiter=delimiter, lineEnding=line_ending,
    )  # fmt: skip
    assert info["state"] == "JobComplete" and info["numberRecordsFailed"] == 0
    response = org.http.get(org.url(f"jobs/ingest/{info['id']}/successfulResults"))
    assert eol in response.text and response.text.endswith(eol)
    ok = list(csv.DictReader(io.StringIO(response.text, newline=""), delimiter=char))
    assert [r["LastName"] for r in ok] == ["Semi;Pipe|Tab\tName", "Multi\nLine"]
    names = org.query("SELECT LastName, Title FROM Contact ORDER BY Product_User_Number__c")
    assert [(r["LastName"], r["Title"]) for r in names["records"]] == [
        ("Semi;Pipe|Tab\tName", 'says "hi"'),
        ("Multi\nLine", None),
    ]


def test_wrong_line_ending_and_unknown_column_fail_the_job(org):
    crlf = _run(org, "LastName\r\nA\r\n", object="Contact", operation="insert", lineEnding="LF")
    assert crlf["state"] == "Failed"
    assert crlf["errorMessage"].startswith("ClientInputError : LineEnding is invalid")
    assert _results(org, crlf["id"], "unprocessedrecords") == [{"LastName": "A"}]
    unknown = _run(org, "LastName,Bogus__c\nA,1\n", object="Contact", operation="insert")
    assert unknown["state"] == "Failed"
    assert unknown["errorMessage"] == "InvalidBatch : Field name not found : Bogus__c"
    assert org.query("SELECT COUNT() FROM Contact")["totalSize"] == 0


def test_null_and_empty_cells_and_types(org):
    cid = org.create(
        "Contact", LastName="Keep", Title="CTO", Email="k@example.com", Product_User_Number__c=3
    )
    data = f"Id,Title,Email,Product_User_Number__c\n{cid},,#N/A,4.0\n"
    info = _run(org, data, object="Contact", operation="update")
    assert info["numberRecordsFailed"] == 0
    stored = org.get("Contact", cid)
    assert stored["Title"] == "CTO"  # empty cell: left alone
    assert stored["Email"] is None  # #N/A: set to null
    assert stored["Product_User_Number__c"] == 4
    assert _results(org, info["id"], "successfulResults")[0]["sf__Created"] == "false"

    events = (
        "Subject,ActivityDateTime,DurationInMinutes,IsAllDayEvent\n"
        "a,2024-05-01T09:00:00.000+0200,30,false\n"
        "b,2024-05-01T09:00:00Z,30,TRUE\n"
        "c,yesterday,30,false\n"
    )
    info = _run(org, events, object="Event", operation="insert")
    assert info["numberRecordsFailed"] == 1
    stored = org.query(
        "SELECT Subject, ActivityDateTime, IsAllDayEvent FROM Event ORDER BY Subject"
    )
    assert [(r["Subject"], r["IsAllDayEvent"]) for r in stored["records"]] == [
        ("a", False),
        ("b", True),
    ]
    assert stored["records"][0]["ActivityDateTime"].startswith("2024-05-01T07:00:00.000")
    failed = _results(org, info["id"], "failedResults")
    assert failed[0]["sf__Error"].startswith("INVALID_TYPE_ON_FIELD_IN_RECORD:")


def test_upsert_by_external_id_and_relationship_columns(org):
    contact = org.create("Contact", LastName="Known", Product_User_Id__c="u-1")
    lead = org.create("Lead", LastName="L", Company="C", Product_User_Id__c="u-2")
    data = (
        "Appcues_Event_Id__c,Subject,ActivityDateTime,DurationInMinutes,Contact:Who.Product_User_Id__c\n"
        "e-1,first,2024-05-01T09:00:00Z,0,U-1\n"
        "e-2,second,2024-05-01T09:00:00Z,0,nobody\n"
    )
    info = _run(
        org, data, object="Event", operation="upsert", externalIdFieldName="Appcues_Event_Id__c"
    )
    assert (info["numberRecordsProcessed"], info["numberRecordsFailed"]) == (2, 1)
    created = _results(org, info["id"], "successfulResults")[0]
    assert created["sf__Created"] == "true"
    assert org.get("Event", created["sf__Id"])["WhoId"] == contact  # matched ignoring case
    failed = _results(org, info["id"], "failedResults")[0]
    assert failed["sf__Error"] == (
        "INVALID_FIELD:Foreign key external ID: nobody not found for field "
        "Product_User_Id__c in entity Contact:WhoId --"
    )

    again = _run(
        org,
        f"Appcues_Event_Id__c,Subject,WhoId\nE-1,renamed,{lead}\n",
        object="Event",
        operation="upsert",
        externalIdFieldName="Appcues_Event_Id__c",
    )
    row = _results(org, again["id"], "successfulResults")[0]
    assert (row["sf__Id"], row["sf__Created"]) == (created["sf__Id"], "false")
    assert org.query("SELECT COUNT() FROM Event")["totalSize"] == 1


def _collection_errors(org, records, *, upsert_field=None):
    if upsert_field:
        response = org.http.patch(
            org.url(f"composite/sobjects/Event/{upsert_field}"),
            json={"allOrNone": False, "records": records},
        )
    else:
        response = org.http.post(
            org.url("composite/sobjects"), json={"allOrNone": False, "records": records}
        )
    assert response.status_code == 200, response.text
    return [
        [(e["statusCode"], e["message"], e["fields"]) for e in r["errors"]] for r in response.json()
    ]


def _bulk_errors(org, header, rows, **job):
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows([header, *rows])
    info = _run(org, out.getvalue(), object="Event", **job)
    assert info["numberRecordsFailed"] == len(rows)
    return [r["sf__Error"] for r in _results(org, info["id"], "failedResults")]


def test_record_errors_equal_the_collections_errors(org):
    """The same bad Events through Collections and Bulk ingest: same codes, same messages."""
    lead = org.create("Lead", LastName="L", Company="C")
    converted = org.create("Lead", LastName="M", Company="D")
    org.anon.post(f"{org.control}/leads/{converted}/convert").raise_for_status()
    account = org.create("Account", Name="A")
    header = [
        "Appcues_Event_Id__c",
        "Subject",
        "ActivityDateTime",
        "DurationInMinutes",
        "WhoId",
        "WhatId",
    ]
    rows = [
        ["x-1", "no start", "", "30", "", ""],
        ["x-2", "lead and what", "2024-05-01T09:00:00Z", "30", lead, account],
        ["x-3", "converted", "2024-05-01T09:00:00Z", "30", converted, ""],
        ["x-4", "negative", "2024-05-01T09:00:00Z", "-5", "", ""],
        ["x-5", "too long", "2024-05-01T09:00:00Z", str(15 * 24 * 60), "", ""],
        ["x-6", "bad who", "2024-05-01T09:00:00Z", "30", account, ""],
    ]
    records = [
        {"attributes": {"type": "Event"}, **{k: v for k, v in zip(header, row, strict=True) if v}}
        for row in rows
    ]
    expected = _collection_errors(org, records)
    assert all(expected)
    assert org.query("SELECT COUNT() FROM Event")["totalSize"] == 0
    via_bulk = _bulk_errors(org, header, rows, operation="insert")
    assert via_bulk == [
        " ".join(f"{c}:{m}:{','.join(f)} --" for c, m, f in errors) for errors in expected
    ]
    # upsert: the same external id twice ignoring case is refused the same way in both
    dupes = [["d-1", "a", "2024-05-01T09:00:00Z", "30", "", ""]] * 1 + [
        ["D-1", "b", "2024-05-01T09:00:00Z", "30", "", ""]
    ]
    upsert_records = [
        {"attributes": {"type": "Event"}, **{k: v for k, v in zip(header, row, strict=True) if v}}
        for row in dupes
    ]
    expected = _collection_errors(org, upsert_records, upsert_field="Appcues_Event_Id__c")
    via_bulk = _bulk_errors(
        org, header, dupes, operation="upsert", externalIdFieldName="Appcues_Event_Id__c"
    )
    assert via_bulk == [
        " ".join(f"{c}:{m}:{','.join(f)} --" for c, m, f in errors) for errors in expected
    ]


def test_readonly_field_is_refused_as_collections_refuse_it(org):
    """Field permissions: a read-only field in the header fails each row, not the job."""
    info = _run(
        org,
        "Subject,ActivityDateTime,DurationInMinutes,AccountId\nx,2024-05-01T09:00:00Z,5,001\n",
        object="Event",
        operation="insert",
    )
    assert info["state"] == "JobComplete" and info["numberRecordsFailed"] == 1
    error = _results(org, info["id"], "failedResults")[0]["sf__Error"]
    assert error.startswith("INVALID_FIELD_FOR_INSERT_UPDATE:Unable to create/update fields")


def test_injected_failure_partial_then_unprocessed(org):
    control = org.anon.post(
        f"{org.control}/bulk",
        json={
            "fail_ingest_jobs": 1,
            "ingest_fail_after_records": 200,
            "ingest_error_message": "InternalServerError : boom",
        },
    )
    assert control.json()["fail_ingest_jobs"] == 1
    data = "LastName\n" + "".join(f"N{i}\n" for i in range(450))
    info = _run(org, data, object="Contact", operation="insert")
    assert info["state"] == "Failed" and info["errorMessage"] == "InternalServerError : boom"
    ok = _results(org, info["id"], "successfulResults")
    rest = _results(org, info["id"], "unprocessedrecords")
    assert len(ok) == 200 and len(rest) == 250 and rest[0] == {"LastName": "N200"}
    assert org.query("SELECT COUNT() FROM Contact")["totalSize"] == 200
    org.anon.post(f"{org.control}/bulk", json={"abort_ingest_jobs": 1}).raise_for_status()
    aborted = _run(org, "LastName\nY\n", object="Contact", operation="insert")
    assert aborted["state"] == "Aborted" and "errorMessage" not in aborted
    assert _results(org, aborted["id"], "unprocessedrecords") == [{"LastName": "Y"}]
    # the next job is not affected
    assert _run(org, "LastName\nZ\n", object="Contact", operation="insert")["state"] == (
        "JobComplete"
    )


def test_abort_while_waiting_leaves_every_row_unprocessed(org):
    org.anon.post(f"{org.control}/bulk", json={"ingest_processing_seconds": 30})
    job = _create(org, object="Contact", operation="insert")
    _upload(org, job["id"], "LastName\nA\nB\n")
    _close(org, job["id"])
    assert org.http.get(org.url(f"jobs/ingest/{job['id']}")).json()["state"] == "UploadComplete"
    aborted = org.http.patch(org.url(f"jobs/ingest/{job['id']}"), json={"state": "Aborted"})
    assert aborted.status_code == 200 and aborted.json()["state"] == "Aborted"
    assert len(_results(org, job["id"], "unprocessedrecords")) == 2
    assert org.query("SELECT COUNT() FROM Contact")["totalSize"] == 0


def test_every_request_is_an_api_call_and_sessions_expire_while_polling(org):
    before = org.anon.get(f"{org.control}/api-usage").json()["used"]
    info = _run(org, "LastName\nA\n", object="Contact", operation="insert")
    polls = org.anon.get(f"{org.control}/stats").json()["calls"]
    gets = sum(v for k, v in polls.items() if k.startswith("GET") and "jobs/ingest/{id}" in k)
    used = org.anon.get(f"{org.control}/api-usage").json()["used"]
    assert used - before == 3 + gets  # create, upload, close and each poll
    limits = org.http.get(org.url("limits")).json()["DailyBulkApiBatches"]
    assert limits["Max"] - limits["Remaining"] == 1
    org.anon.post(f"{org.control}/expire-sessions").raise_for_status()
    expired = org.http.get(org.url(f"jobs/ingest/{info['id']}"))
    assert expired.status_code == 401 and expired.json()[0]["errorCode"] == "INVALID_SESSION_ID"


def test_fault_rules_apply_to_ingest_paths(org):
    org.faults(
        {"match": {"path": "jobs/ingest$", "method": "POST"}, "status": 503, "times": 1},
        {"match": {"path": r"jobs/ingest/\w+$", "method": "GET"}, "action": "expire_session"},
    )
    refused = org.http.post(
        org.url("jobs/ingest"), json={"object": "Contact", "operation": "insert"}
    )
    assert refused.status_code == 503 and refused.json()[0]["errorCode"] == "SERVER_UNAVAILABLE"
    job = _create(org, object="Contact", operation="insert")
    assert job["state"] == "Open"
    polled = org.http.get(org.url(f"jobs/ingest/{job['id']}"))  # the session expires mid-poll
    assert polled.status_code == 401 and polled.json()[0]["errorCode"] == "INVALID_SESSION_ID"


def test_upload_size_limit(org, errors_of):
    org.anon.post(f"{org.control}/bulk", json={"ingest_max_upload_bytes": 100})
    job = _create(org, object="Contact", operation="insert")
    too_big = _upload(org, job["id"], "LastName\n" + "x" * 200 + "\n")
    assert too_big.status_code == 413 and errors_of(too_big) == ["EXCEEDED_MAX_SIZE_REQUEST"]
    assert _upload(org, job["id"], "LastName\nok\n").status_code == 201


def test_delete_relationship_columns_and_ragged_rows(org):
    account = org.create("Account", Name="A", Product_Account_Id__c="acc-1")
    data = "LastName,Account.Product_Account_Id__c\nLinked,ACC-1\nRagged,acc-1,extra\nShort\n"
    info = _run(org, data, object="Contact", operation="insert")
    assert (info["numberRecordsProcessed"], info["numberRecordsFailed"]) == (3, 1)
    ok = {r["LastName"]: r["sf__Id"] for r in _results(org, info["id"], "successfulResults")}
    assert org.get("Contact", ok["Linked"])["AccountId"] == account
    assert org.get("Contact", ok["Short"])["AccountId"] is None
    failed = _results(org, info["id"], "failedResults")
    assert failed[0]["sf__Error"].startswith("INVALID_FIELD:The row has 3 values")

    polymorphic = _run(
        org, "Subject,Who.Product_User_Id__c\nx,u\n", object="Event", operation="insert"
    )
    assert polymorphic["errorMessage"] == (
        "InvalidBatch : Field name not found : Who.Product_User_Id__c"
    )

    gone = _run(org, f"Id\n{ok['Linked']}\n{ok['Linked']}\n", object="Contact", operation="delete")
    assert (gone["numberRecordsProcessed"], gone["numberRecordsFailed"]) == (2, 1)
    deleted = _results(org, gone["id"], "successfulResults")
    assert [(r["sf__Id"], r["sf__Created"]) for r in deleted] == [(ok["Linked"], "false")]
    assert _results(org, gone["id"], "failedResults")[0]["sf__Error"] == (
        "ENTITY_IS_DELETED:entity is deleted: --"
    )
    assert org.query("SELECT COUNT() FROM Contact")["totalSize"] == 1


def test_switches_for_guessed_behaviour(org):
    """Each guess has a switch so product tests can prove they survive the other reading."""
    settings = org.anon.post(
        f"{org.control}/bulk",
        json={
            "ingest_error_format": "plain",
            "ingest_processed_counts_failed": False,
            "ingest_results_order": "reversed",
            "ingest_empty_results": "empty",
        },
    ).json()
    assert settings["ingest_results_order"] == "reversed"
    data = 'LastName,Email\nA,a@example.com\n"B\nB",b@example.com\nC,bad\n'
    info = _run(org, data, object="Contact", operation="insert")
    assert (info["numberRecordsProcessed"], info["numberRecordsFailed"]) == (2, 1)
    ok = _results(org, info["id"], "successfulResults")
    assert [r["LastName"] for r in ok] == ["B\nB", "A"]
    failed = _results(org, info["id"], "failedResults")
    assert failed[0]["sf__Error"] == "INVALID_EMAIL_ADDRESS:Email: invalid email address: bad"
    empty = org.http.get(org.url(f"jobs/ingest/{info['id']}/unprocessedrecords"))
    assert empty.status_code == 200 and empty.content == b""
    bad = org.anon.post(f"{org.control}/bulk", json={"ingest_results_order": "random"})
    assert bad.status_code == 400
    org.anon.post(f"{org.control}/reset").raise_for_status()
    info = _run(org, "LastName,Email\nC,bad\n", object="Contact", operation="insert")
    assert info["numberRecordsProcessed"] == 1  # reset restored the defaults
    assert _results(org, info["id"], "failedResults")[0]["sf__Error"].endswith(":Email --")


def test_compressed_upload_and_results(org):
    job = _create(org, object="Contact", operation="insert")
    data = gzip.compress(b"LastName\nZipped\n")
    sent = org.http.put(
        org.url(f"jobs/ingest/{job['id']}/batches"),
        data=data,
        headers={"Content-Type": "text/csv", "Content-Encoding": "gzip"},
    )
    assert sent.status_code == 201
    _close(org, job["id"])
    _wait(org, job["id"])
    raw = org.http.get(
        org.url(f"jobs/ingest/{job['id']}/successfulResults"),
        headers={"Accept-Encoding": "gzip"},
        stream=True,
    )
    assert raw.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(raw.raw.read()).decode().endswith(',"true",Zipped\n')
    plain = org.http.get(
        org.url(f"jobs/ingest/{job['id']}/successfulResults"),
        headers={"Accept-Encoding": "identity"},
    )
    assert "Content-Encoding" not in plain.headers and plain.text.startswith('"sf__Id"')


@pytest.mark.parametrize("echo", ["sent", "stored"])
def test_results_echo_switch(org, echo):
    """`ingest_results_echo`: a successful row's cells as uploaded, or as the record holds
    them (whole-second datetimes, 18-character ids); failed rows always as sent."""
    contact = org.http.post(org.url("sobjects/Contact"), json={"LastName": "Echo"}).json()["id"]
    short_id = contact[:15]
    org.anon.post(f"{org.control}/bulk", json={"ingest_results_echo": echo}).raise_for_status()
    try:
        data = (
            "Subject,WhoId,ActivityDateTime,DurationInMinutes\n"
            f"Echo,{short_id},2026-01-01T10:20:30.789Z,30\n"
            f"Bad,{short_id},not a time,30\n"
        )
        info = _run(org, data, object="Event", operation="insert")
        (ok,) = _results(org, info["id"], "successfulResults")
        (failed,) = _results(org, info["id"], "failedResults")
    finally:
        org.anon.post(f"{org.control}/bulk", json={"ingest_results_echo": "sent"})
    if echo == "sent":
        assert (ok["WhoId"], ok["ActivityDateTime"]) == (short_id, "2026-01-01T10:20:30.789Z")
    else:
        assert (ok["WhoId"], ok["ActivityDateTime"]) == (contact, "2026-01-01T10:20:30.000Z")
    assert ok["DurationInMinutes"] == "30"
    assert failed["ActivityDateTime"] == "not a time"
    bad = org.anon.post(f"{org.control}/bulk", json={"ingest_results_echo": "typed"})
    assert bad.status_code == 400
