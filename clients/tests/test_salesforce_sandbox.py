"""SalesforceClient against the Salesforce sandbox: auth flows, faults, quota, writes, bulk."""

from __future__ import annotations

import base64
import logging
import string
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from salesforce_appcues_clients import soql
from salesforce_appcues_clients.errors import (
    AuthenticationError,
    ConfigurationError,
    QuotaExceededError,
    RetriesExhaustedError,
    SalesforceError,
    UncertainWriteError,
)
from salesforce_appcues_clients.salesforce import SalesforceClient
from salesforce_appcues_sandbox.salesforce.service import SalesforceService
from salesforce_appcues_sandbox.server import Sandbox

QUERY_PATH = r"/services/data/v[\d.]+/query"
COLLECTIONS = r"/services/data/v[\d.]+/composite/sobjects$"


def _ids(sf, tag, **kwargs):
    soql_text = f"SELECT Id FROM Contact WHERE LastName = {soql.quote(tag)} ORDER BY Id"
    return [r["Id"] for r in sf.query(soql_text, **kwargs)]


# --- auth flows ----------------------------------------------------------------------
@pytest.mark.parametrize("flow", ["refresh_token", "jwt_bearer", "client_credentials"])
def test_each_auth_flow_reaches_the_api(sandbox, sf_control, flow, sf_config, new_sf):
    client = new_sf(sf_config(flow))
    assert client._tokens.flow == flow
    names = {o["name"] for o in client.describe_global()["sobjects"]}
    assert {"Contact", "Lead", "Account", "Event"} <= names
    assert client.calls_made == 1
    client.close()


@pytest.mark.parametrize("instance_url", ["http://127.0.0.1:9", "127.0.0.1:9"])
def test_a_login_answering_a_plain_http_instance_is_refused(instance_url, tmp_path):
    """The access token never follows an instance_url that is not https://."""
    options = {"salesforce": {"instance_url": instance_url}}
    with Sandbox(options=options) as other:
        conn = other.connection["salesforce"]
        client = SalesforceClient.from_config(
            {
                "domain": conn["login_url"],
                "client_id": conn["client_id"],
                "client_secret": conn["client_secret"],
                "refresh_token": conn["refresh_token"],
                "ca_bundle": other.connection["ca_bundle"],
                "token_store_dir": str(tmp_path / "tokens"),
            }
        )
        try:
            with pytest.raises(AuthenticationError) as info:
                client.limits()
        finally:
            client.close()
        assert "instance_url" in str(info.value) and "https://" in str(info.value)
        assert client.calls_made == 0


def test_refused_login_is_a_clear_error_without_secrets(
    sandbox, sf_control, debug_logs, capsys, sf_config, assert_no_secrets, new_sf
):
    config = sf_config(refresh_token="5Aep861-not-a-valid-token-xyz")
    client = new_sf(config)
    with pytest.raises(AuthenticationError) as info:
        client.limits()
    text = str(info.value)
    assert "invalid_grant" in text and "refresh_token" in text
    out = capsys.readouterr()
    assert_no_secrets(
        [text, repr(info.value), debug_logs.text, out.out, out.err],
        ["5Aep861-not-a-valid-token-xyz", config["client_secret"]],
    )


def test_ca_bundle_from_the_environment(sandbox, sf_control, sandbox_ca_env, sf_config, new_sf):
    config = sf_config()
    del config["ca_bundle"]
    client = new_sf(config)
    assert "DailyApiRequests" in client.limits()


# --- sessions ------------------------------------------------------------------------
def test_expired_session_mid_query_refreshes_once_and_continues(
    sf, sf_control, tag, insert_contacts
):
    insert_contacts(sf, tag, 450)
    records = sf.query(
        f"SELECT Id FROM Contact WHERE LastName = {soql.quote(tag)} ORDER BY Id", batch_size=200
    )
    first_page = [next(records) for _ in range(200)]
    generation = sf._tokens.current().generation
    sf_control.faults({"match": {"path": QUERY_PATH}, "action": "expire_session", "times": 1})
    rest = list(records)
    assert len(first_page) + len(rest) == 450
    assert len({r["Id"] for r in first_page + rest}) == 450
    assert sf_control.fired_by_rule() == [1]
    assert sf._tokens.current().generation == generation + 1


# --- transient faults ----------------------------------------------------------------
def test_503_burst_is_retried(sf, sf_control, tag, debug_logs, insert_contacts):
    insert_contacts(sf, tag, 3)
    sf_control.faults({"match": {"path": QUERY_PATH}, "action": "error", "status": 503, "times": 3})
    before = sf.calls_made
    assert len(_ids(sf, tag)) == 3
    assert sf_control.fired_by_rule() == [3]
    assert sf.calls_made - before == 4
    assert debug_logs.text.count("answered 503") == 3


def test_429_with_retry_after_is_honoured(sf, sf_control, tag, debug_logs, insert_contacts):
    insert_contacts(sf, tag, 1)
    sf_control.faults(
        {
            "match": {"path": QUERY_PATH},
            "action": "error",
            "status": 429,
            "retry_after": 1,
            "times": 1,
        }
    )
    assert len(_ids(sf, tag)) == 1
    assert "answered 429" in debug_logs.text and "retrying in 1.0 s" in debug_logs.text


def test_connection_resets_on_reads_are_retried(sf, sf_control, tag, insert_contacts):
    insert_contacts(sf, tag, 2)
    sf_control.faults(
        {"match": {"method": "GET", "path": QUERY_PATH}, "action": "reset", "times": 2}
    )
    assert len(_ids(sf, tag)) == 2
    assert sf_control.fired_by_rule() == [2]


def test_a_reset_insert_is_not_replayed(sf, sf_control, tag):
    sf_control.faults(
        {"match": {"method": "POST", "path": COLLECTIONS}, "action": "reset", "times": 1}
    )
    with pytest.raises(UncertainWriteError, match="not retried") as err:
        sf.insert("Contact", [{"LastName": tag}])
    assert err.value.unanswered  # kept through the collections client's message
    assert sf_control.fired_by_rule() == [1]
    assert _ids(sf, tag) == []  # nothing was written twice (here: the sandbox dropped it)


@pytest.mark.parametrize(
    ("status", "page", "unanswered"),
    [(504, None, True), (502, "<html>Bad Gateway</html>", True), (500, None, False)],
)
def test_an_insert_answered_with_a_5xx_after_it_was_applied(
    sf, sf_control, tag, status, page, unanswered
):
    """Applied, then a 5xx: not replayed. Only Salesforce's own 500 says it finished with the
    request; a gateway's 502/504 is as unanswered as a timeout (it may still be applying)."""
    rule = {
        "match": {"method": "POST", "path": COLLECTIONS},
        "action": "error_after",
        "status": status,
        "times": 1,
    }
    if page:
        rule["body"] = page
    sf_control.faults(rule)
    with pytest.raises(UncertainWriteError, match=f"answered {status}") as err:
        sf.insert("Contact", [{"LastName": tag}])
    assert err.value.unanswered is unanswered
    assert sf_control.fired_by_rule() == [1]
    assert len(_ids(sf, tag)) == 1  # applied once, never sent again


def test_a_reset_upsert_is_replayed(sf, sf_control, tag):
    sf_control.faults({"match": {"method": "PATCH"}, "action": "reset", "times": 1})
    results = sf.upsert(
        "Contact", "Product_User_Id__c", [{"LastName": tag, "Product_User_Id__c": tag}]
    )
    assert results[0].success and results[0].created is True
    assert sf_control.fired_by_rule() == [1]
    assert len(_ids(sf, tag)) == 1


def test_retry_budget_is_bounded(sf, sf_control):
    sf_control.faults({"match": {"path": QUERY_PATH}, "action": "error", "status": 503})
    with pytest.raises(RetriesExhaustedError, match="gave up after 5 attempts"):
        sf.query_count("SELECT COUNT() FROM Contact")
    assert sf_control.fired_by_rule() == [5]


def test_a_rejected_query_is_not_retried(sf, sf_control):
    sf.limits()
    before = sf_control.count_calls("query")
    with pytest.raises(SalesforceError) as info:
        list(sf.query("SELECT NoSuchField__c FROM Contact"))
    assert info.value.error_code == "INVALID_FIELD"
    assert sf_control.count_calls("query") - before == 1


# --- quota guard ---------------------------------------------------------------------
@pytest.fixture
def org_usage(sf_control):
    """Sets the org's API usage counters; restores them afterwards."""
    saved = sf_control.call("GET", "api-usage")
    yield lambda used, maximum: sf_control.call("POST", "api-usage", {"used": used, "max": maximum})
    sf_control.call("POST", "api-usage", saved)


def test_quota_guard_stops_a_run_at_its_per_run_share(
    sf, sf_control, tag, insert_contacts, sf_config, org_usage, new_sf
):
    insert_contacts(sf, tag, 450)
    org_usage(100, 1000)
    # 0.2 % of 1000 = 2 calls for this run
    guarded = new_sf(sf_config(quota_percent_per_run=0.2))
    seen = []
    with pytest.raises(QuotaExceededError) as info:
        seen.extend(
            guarded.query(
                f"SELECT Id FROM Contact WHERE LastName = {soql.quote(tag)}", batch_size=200
            )
        )
    assert len(seen) == 400  # two pages arrived, the third call was stopped
    assert guarded.calls_made == 2
    message = str(info.value)
    assert "quota_percent_per_run" in message and "made 2 API calls" in message
    assert "/1000" in message  # the org's usage is stated too
    assert info.value.error_code == "QUOTA_PER_RUN"


def test_quota_guard_stops_when_the_org_passes_its_total_share(
    sf_control, sf_config, org_usage, new_sf
):
    org_usage(850, 1000)
    guarded = new_sf(sf_config(quota_percent_total=80))
    guarded.limits()  # the first call learns the usage
    with pytest.raises(QuotaExceededError) as info:
        guarded.limits()
    message = str(info.value)
    assert "quota_percent_total" in message and "of its 1000" in message
    assert info.value.error_code == "QUOTA_TOTAL"
    assert guarded.calls_made == 1


def test_request_limit_exceeded_becomes_a_quota_error(sf, sf_control):
    sf_control.faults(
        {
            "match": {"path": QUERY_PATH},
            "action": "error",
            "status": 403,
            "error_code": "REQUEST_LIMIT_EXCEEDED",
            "times": 1,
        }
    )
    with pytest.raises(QuotaExceededError, match="REQUEST_LIMIT_EXCEEDED"):
        sf.query_count("SELECT COUNT() FROM Contact")
    assert sf_control.fired_by_rule() == [1]


# --- SOQL literals ---------------------------------------------------------------------
HOSTILE = [
    "x' OR Name != '",
    "a\\' OR Id != null OR Title = \\'",
    "tab\there\nline",
    'quote"s',
    "ünï ✓ 𝄞",
    "50%_off",
    "back\\slash\\",
]


def test_hostile_literals_match_only_themselves(sf, sf_control, tag):
    sf.insert("Contact", [{"LastName": tag, "Title": v} for v in [*HOSTILE, "decoy", ""]])
    for value in HOSTILE:
        rows = list(
            sf.query(
                f"SELECT Title FROM Contact WHERE LastName = {soql.quote(tag)} "
                f"AND Title = {soql.quote(value)}"
            )
        )
        assert [r["Title"] for r in rows] == [value]


@settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(value=st.text(min_size=1, max_size=40))
def test_any_string_round_trips_to_an_exact_match(sf, tag, value):
    sf.insert("Contact", [{"LastName": tag, "Title": value}])
    rows = list(
        sf.query(
            f"SELECT Title FROM Contact WHERE LastName = {soql.quote(tag)} "
            f"AND Title = {soql.quote(value)}"
        )
    )
    # SOQL `=` on text ignores case (ASCII here, as SQLite's NOCASE), so an earlier example's
    # 'K' may answer a query for 'k'; the exact value must be among the rows.
    assert any(r["Title"] == value for r in rows)
    assert all(_ascii_lower(r["Title"]) == _ascii_lower(value) for r in rows)


def _ascii_lower(text: str) -> str:
    return text.translate(_ASCII_LOWER)


_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


def test_in_chunks_queries_find_every_record(sf, sf_control, tag, insert_contacts):
    ids = insert_contacts(sf, tag, 30)
    found = []
    for query in soql.in_chunks("SELECT Id FROM Contact WHERE", "Id", ids, max_uri_length=1200):
        found.extend(r["Id"] for r in sf.query(query))
    assert sorted(found) == sorted(ids)


def test_in_chunks_fill_query_urls_up_to_the_safe_limit_and_never_to_414(
    sf, sf_control, tag, insert_contacts
):
    """At the default limit each chunk's URL comes close to SAFE_URL_LENGTH and is answered;
    a chunk sized to the bare 16,384 bytes plus 2 KB is refused with 414, as Salesforce does."""
    assert SalesforceService.max_request_line == soql.DEFAULT_MAX_URI_LENGTH
    ids = insert_contacts(sf, tag, 3)
    # "é" is 6 bytes in a URL (%C3%A9): long values fill a chunk with few of them.
    names = [tag, *(f"{tag}-{i:04d}-" + "é" * 40 for i in range(1200))]
    queries = list(soql.in_chunks("SELECT Id FROM Contact WHERE", "LastName", names))
    assert len(queries) > 2
    endpoint = "/services/data/v62.0/query"  # the request line's target, before `?q=`
    lengths = [soql.query_url_length(endpoint, q) for q in queries]
    assert max(lengths) <= soql.SAFE_URL_LENGTH
    assert max(lengths) > soql.SAFE_URL_LENGTH - 1_000  # filled, not just short
    found = [r["Id"] for q in queries for r in sf.query(q)]
    assert sorted(found) == sorted(ids)

    (too_long, *_) = soql.in_chunks(
        "SELECT Id FROM Contact WHERE",
        "LastName",
        names,
        max_uri_length=soql.DEFAULT_MAX_URI_LENGTH + soql.URL_MARGIN,
    )
    assert soql.query_url_length(endpoint, too_long) > soql.DEFAULT_MAX_URI_LENGTH
    with pytest.raises(SalesforceError) as refused:
        list(sf.query(too_long))
    assert refused.value.status == 414


# --- writes ----------------------------------------------------------------------------
def test_collections_chunk_by_200_with_per_record_outcomes(sf, sf_control, tag):
    records = [{"LastName": tag, "FirstName": f"n{i}"} for i in range(450)]
    records[7] = {"FirstName": "no last name"}
    before_calls, before_sandbox = sf.calls_made, sf_control.count_calls("POST /services/data")
    results = sf.insert("Contact", records)
    assert sf.calls_made - before_calls == 3
    assert sf_control.count_calls("POST /services/data") - before_sandbox == 3
    assert [r.index for r in results] == list(range(450))
    assert [r.index for r in results if not r.success] == [7]
    assert results[7].errors[0]["statusCode"] == "REQUIRED_FIELD_MISSING"
    assert len(_ids(sf, tag)) == 449
    count = f"SELECT COUNT() FROM Contact WHERE LastName = {soql.quote(tag)}"
    assert sf.query_count(count) == 449

    updates = [{"Id": r.id, "Title": "updated"} for r in results if r.success]
    assert all(r.success for r in sf.update("Contact", updates))


def test_upsert_by_external_id_is_idempotent(sf, sf_control, tag):
    rows = [{"LastName": tag, "Product_User_Id__c": f"{tag}-{i}"} for i in range(3)]
    first = sf.upsert("Contact", "Product_User_Id__c", rows)
    second = sf.upsert("Contact", "Product_User_Id__c", rows)
    assert [r.created for r in first] == [True] * 3
    assert [r.created for r in second] == [False] * 3
    assert [r.id for r in first] == [r.id for r in second]
    assert len(_ids(sf, tag)) == 3


# --- describe, limits, clock -----------------------------------------------------------
def test_describe_uses_one_batch_and_caches(sf, sf_control):
    sf.limits()
    before = sf.calls_made
    described = sf.describe(["Contact", "Lead", "Account"])
    assert sf.calls_made - before == 1
    assert {f["name"] for f in described["Contact"]["fields"]} >= {"Id", "LastName"}
    assert sf.describe(["Lead", "Contact"]).keys() == {"Lead", "Contact"}
    assert sf.calls_made - before == 1  # cached: no call


def test_describe_of_an_unknown_object_names_it(sf, sf_control):
    with pytest.raises(SalesforceError, match="No_Such__c"):
        sf.describe(["Contact", "No_Such__c"])


def test_an_api_version_the_org_does_not_serve_is_a_clear_error(
    sandbox, sf_config, new_sf, sf_control
):
    versions_url = f"{sandbox.connection['salesforce']['instance_url']}/services/data/"
    offered = sf_control.session.get(versions_url, timeout=30).json()
    highest = max((v["version"] for v in offered), key=lambda v: tuple(map(int, v.split("."))))
    beyond = f"{int(highest.split('.')[0]) + 1}.0"
    client = new_sf(sf_config(api_version=beyond))
    with pytest.raises(ConfigurationError) as info:
        client.limits()
    message = str(info.value)
    assert (
        "api_version" in message
        and beyond in message
        and f"highest it offers is {highest}" in message
    )


def test_a_404_with_a_served_version_stays_not_found_and_checks_the_version_once(sf, sf_control):
    from simple_salesforce.exceptions import SalesforceResourceNotFound

    sf.limits()
    before = sf.calls_made
    with pytest.raises(SalesforceResourceNotFound):
        sf.simple.Contact.get("003000000000001AAA")
    assert sf.calls_made - before == 2  # the 404, then the versions list once
    with pytest.raises(SalesforceResourceNotFound):
        sf.simple.Contact.get("003000000000002AAA")
    assert sf.calls_made - before == 3


def test_server_time_follows_the_org_clock(sf, sf_control):
    saved = sf_control.call("GET", "clock")["now"]
    sf_control.call("POST", "clock", {"now": "2031-05-06T07:08:09Z", "freeze": True})
    try:
        sf.limits()
        assert sf.server_time() == datetime(2031, 5, 6, 7, 8, 9, tzinfo=UTC)
    finally:
        was_real = abs(datetime.fromisoformat(saved) - datetime.now(UTC)).total_seconds() < 1
        sf_control.call("POST", "clock", {"reset": True} if was_real else {"now": saved})


def test_server_time_before_any_call_costs_no_api_call(sf_config, sf_control):
    before = sf_control.stats()["calls"]
    client = SalesforceClient.from_config(sf_config())
    try:
        assert abs(client.server_time() - datetime.now(UTC)).total_seconds() < 60
    finally:
        client.close()
    after = sf_control.stats()["calls"]
    made = {k: n - before.get(k, 0) for k, n in after.items() if n != before.get(k, 0)}
    assert made == {"POST /services/oauth2/token": 1}, made  # the login only
    assert client.calls_made == 0


# --- Bulk 2.0 --------------------------------------------------------------------------
def test_bulk_query_streams_every_page(sf, sf_control, tag, insert_contacts):
    ids = insert_contacts(sf, tag, 450, Title='bulk, "quoted"\nline')
    rows = list(
        sf.bulk_query(
            f"SELECT Id, Title, Email FROM Contact WHERE LastName = {soql.quote(tag)}",
            page_size=100,
        )
    )
    assert sorted(r["Id"] for r in rows) == sorted(ids)
    assert {r["Title"] for r in rows} == {'bulk, "quoted"\nline'}
    assert {r["Email"] for r in rows} == {""}
    assert sf_control.count_calls("results") >= 5  # locator paging


def test_a_failed_bulk_job_is_a_clear_error(sf, sf_control):
    sf_control.call("POST", "bulk", {"fail_jobs": 1, "error_message": "disk on fire"})
    with pytest.raises(SalesforceError) as info:
        list(sf.bulk_query("SELECT Id FROM Contact"))
    assert info.value.error_code == "BULK_JOB_FAILED"
    assert "disk on fire" in str(info.value) and "ended Failed" in str(info.value)


def test_an_aborted_bulk_job_is_a_clear_error(sf, sf_control):
    sf_control.call("POST", "bulk", {"abort_jobs": 1})
    with pytest.raises(SalesforceError) as info:
        list(sf.bulk_query("SELECT Id FROM Contact"))
    assert "Aborted" in str(info.value), str(info.value)


def test_bulk_query_failure_is_a_clear_error(sf, sf_control):
    with pytest.raises(SalesforceError) as info:
        list(sf.bulk_query("SELECT NoSuchField__c FROM Contact"))
    assert "NoSuchField__c" in str(info.value) or info.value.error_code.startswith("BULK_JOB")


# --- safety ----------------------------------------------------------------------------
def test_no_secret_or_token_in_logs_errors_or_reprs(
    sandbox, sf_control, debug_logs, capsys, sf_config, assert_no_secrets, new_sf
):
    conn = sandbox.connection["salesforce"]
    client = new_sf(sf_config())
    client.limits()
    sf_control.faults(
        {"match": {"path": QUERY_PATH}, "action": "expire_session", "times": 1},
        {"match": {"path": QUERY_PATH}, "action": "error", "status": 503, "times": 1},
    )
    client.query_count("SELECT COUNT() FROM Contact")
    token = client._tokens.current().value
    errors = []
    for bad in ["SELECT Nope FROM Contact", "SELECT Id FROM Nope__c"]:
        with pytest.raises(SalesforceError) as info:
            client.query_count(bad)
        errors += [str(info.value), repr(info.value)]
    with open(conn["jwt_private_key_file"]) as fh:
        key_body = fh.read().splitlines()[1]
    logging.getLogger("test").debug("client %r settings %r", client, client.settings)
    out = capsys.readouterr()
    basic = base64.b64encode(f"{conn['client_id']}:{conn['client_secret']}".encode()).decode()
    assert_no_secrets(
        [debug_logs.text, out.out, out.err, repr(client), repr(client._tokens), *errors],
        [conn["client_secret"], conn["refresh_token"], token, key_body, basic, "Bearer "],
    )


def test_an_untrusted_certificate_is_a_configuration_error(sandbox, sf_config, new_sf, monkeypatch):
    import certifi

    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certifi.where())
    config = sf_config()
    del config["ca_bundle"]
    client = new_sf(config)
    with pytest.raises(ConfigurationError, match="ca_bundle"):
        client.limits()


def test_inserts_are_retried_only_when_salesforce_did_not_process_them(sf, sf_control, tag):
    sf_control.faults(
        {
            "match": {"method": "POST", "path": COLLECTIONS},
            "action": "error",
            "status": 503,
            "times": 1,
        }
    )
    assert all(r.success for r in sf.insert("Contact", [{"LastName": tag}]))
    assert sf_control.fired_by_rule() == [1]
    sf_control.faults(
        {
            "match": {"method": "POST", "path": COLLECTIONS},
            "action": "error",
            "status": 500,
            "times": 1,
        }
    )
    with pytest.raises(UncertainWriteError, match="500"):
        sf.insert("Contact", [{"LastName": tag}])
    assert sf_control.fired_by_rule() == [1]
    assert len(_ids(sf, tag)) == 1  # one insert landed, nothing duplicated


def test_a_chunk_rejected_as_a_whole_fails_its_records_and_the_rest_go(sf, sf_control, tag):
    sf_control.faults(
        {
            "match": {"method": "POST", "path": COLLECTIONS},
            "action": "error",
            "status": 400,
            "error_code": "JSON_PARSER_ERROR",
            "times": 1,
        }
    )
    results = sf.insert("Contact", [{"LastName": tag, "FirstName": str(i)} for i in range(250)])
    assert [r.success for r in results] == [False] * 200 + [True] * 50
    assert results[0].errors[0]["statusCode"] == "JSON_PARSER_ERROR"
    assert len(_ids(sf, tag)) == 50


def test_threads_sharing_an_expired_session_refresh_it_once(sandbox, sf, sf_control):
    import threading

    sf.limits()
    sandbox.salesforce.expire_sessions()
    logins_before = sf_control.count_calls("/services/oauth2/token")
    barrier = threading.Barrier(4)
    errors = []

    def work():
        barrier.wait()
        try:
            sf.limits()
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sf_control.count_calls("/services/oauth2/token") - logins_before == 1


# --- mixed-type updates and query sizing -------------------------------------------------
def test_update_mixed_sends_contacts_and_leads_together(sf, sf_control, tag):
    contacts = sf.insert("Contact", [{"LastName": tag} for _ in range(210)])
    leads = sf.insert("Lead", [{"LastName": tag, "Company": "Acme"} for _ in range(40)])
    assert all(r.success for r in contacts + leads)
    # Interleaved as a caller would produce them; one record is bad.
    lead_updates = [{"attributes": {"type": "Lead"}, "Id": r.id} for r in leads]
    records = []
    for i, contact in enumerate(contacts):
        records.append({"attributes": {"type": "Contact"}, "Id": contact.id})
        if i % 5 == 4 and lead_updates:
            records.append(lead_updates.pop())
    assert len(records) == 250
    for i, record in enumerate(records):
        record["Title"] = f"t{i}"
    records[3]["LastName"] = None  # required
    before = sf_control.count_calls("PATCH /services/data")
    results = sf.update_mixed(records)
    assert sf_control.count_calls("PATCH /services/data") - before == 2  # ceil(250/200), not 2 + 1
    assert [r.index for r in results] == list(range(250))
    assert [r.index for r in results if not r.success] == [3]
    assert results[3].errors[0]["statusCode"] == "REQUIRED_FIELD_MISSING"
    assert all(r.id == records[r.index]["Id"] for r in results if r.success)
    for sobject in ("Contact", "Lead"):
        rows = sf.query(f"SELECT Id, Title FROM {sobject} WHERE LastName = {soql.quote(tag)}")
        titles = {r["Id"]: r["Title"] for r in rows}
        for record in records[4:]:
            if record["attributes"]["type"] == sobject:
                assert titles[record["Id"]] == record["Title"]


def test_update_mixed_needs_a_type_and_an_id(sf):
    with pytest.raises(ValueError, match=r"record 1 has no attributes\.type"):
        sf.update_mixed([{"attributes": {"type": "Lead"}, "Id": "00Q"}, {"Id": "003"}])
    with pytest.raises(ValueError, match="record 0 has no Id"):
        sf.update_mixed([{"attributes": {"type": "Lead"}, "Title": "x"}])


def test_collection_calls_hold_at_most_ten_types():
    from salesforce_appcues_clients.salesforce_collections import collection_chunks

    typed = [(i, f"T{i % 12}__c", {}) for i in range(24)]
    typed.sort(key=lambda e: e[1])
    chunks = list(collection_chunks(typed))
    assert [len({t for _, t, _ in c}) for c in chunks] == [10, 2]
    assert sum(len(c) for c in chunks) == 24
    many = [(i, "Contact", {}) for i in range(450)]
    assert [len(c) for c in collection_chunks(many)] == [200, 200, 50]


def test_query_total_size_comes_with_the_first_page(sf, sf_control, tag, insert_contacts):
    insert_contacts(sf, tag, 450)
    text = f"SELECT Id FROM Contact WHERE LastName = {soql.quote(tag)}"
    before = sf_control.count_calls("GET /services/data")
    result = sf.query(text, batch_size=200)
    assert sf_control.count_calls("GET /services/data") == before  # lazy until asked
    assert result.total_size == 450
    assert sf_control.count_calls("GET /services/data") - before == 1
    assert len(list(result)) == 450  # the first page is not fetched again
    assert sf_control.count_calls("GET /services/data") - before == 3

    sized = sf.query(text, include_deleted=True, batch_size=200)
    assert sized.total_size == 450
    sized.close()  # sized up, then left: no further page is fetched
    assert list(sized) == []
    assert sf_control.count_calls("GET /services/data") - before == 4
