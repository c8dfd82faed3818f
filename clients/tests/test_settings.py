"""Setting schemas, validation and the secret-free reprs."""

import jsonschema
import pytest

from salesforce_appcues_clients.errors import ConfigurationError, SalesforceError, scrub
from salesforce_appcues_clients.plugin_kit.dead_letter_threshold import (
    DeadLetterThreshold,
    threshold_properties,
)
from salesforce_appcues_clients.settings import (
    APPCUES_REGIONS,
    AppcuesSettings,
    SalesforceSettings,
    appcues_properties,
    login_url_for,
    salesforce_properties,
    schema_defaults,
)

SECRET_SF = {"client_secret", "refresh_token", "private_key"}


def test_property_dicts_are_valid_schemas_with_docs_and_marked_secrets():
    for props, secrets in [
        (salesforce_properties(), SECRET_SF),
        (appcues_properties(), {"api_secret"}),
        (appcues_properties("appcues_"), {"appcues_api_secret"}),
    ]:
        schema = {"type": "object", "properties": props}
        jsonschema.Draft7Validator.check_schema(schema)
        for name, spec in props.items():
            assert spec["title"] and len(spec["description"]) > 20, name
            assert spec.get("secret", False) is (name in secrets), name
            if name in secrets:
                assert spec["writeOnly"] is True
    assert set(appcues_properties("appcues_")) == {f"appcues_{n}" for n in appcues_properties()}
    assert salesforce_properties()["quota_percent_total"]["default"] == 80
    assert salesforce_properties()["quota_percent_per_run"]["default"] == 25
    assert appcues_properties()["max_requests_per_second"]["default"] == 50


APPCUES_CREDENTIALS = {"account_id": "1", "api_key": "k", "api_secret": "s"}


def _parsed_defaults(parsed, names, derived):
    """What the parser made of each defaulted setting: its attribute, else a derived value."""
    return {name: derived[name] if name in derived else getattr(parsed, name) for name in names}


def test_an_empty_salesforce_config_parses_to_the_schema_defaults():
    defaults = schema_defaults(salesforce_properties())
    parsed = SalesforceSettings.from_config({})
    refused_http = False
    try:
        SalesforceSettings.from_config({"domain": "http://127.0.0.1:1"})
    except ConfigurationError:
        refused_http = True
    derived = {
        "domain": parsed.login_url.removeprefix("https://").removesuffix(".salesforce.com"),
        "allow_insecure_http": not refused_http,
    }
    assert _parsed_defaults(parsed, defaults, derived) == defaults


@pytest.mark.parametrize("prefix", ["", "appcues_"])
def test_a_minimal_appcues_config_parses_to_the_schema_defaults(prefix):
    defaults = schema_defaults(appcues_properties(prefix))
    config = {prefix + name: value for name, value in APPCUES_CREDENTIALS.items()}
    parsed = AppcuesSettings.from_config(config, prefix)
    refused_http = False
    try:
        AppcuesSettings.from_config({**config, prefix + "base_url": "http://127.0.0.1:1"}, prefix)
    except ConfigurationError:
        refused_http = True
    region = next(name for name, url in APPCUES_REGIONS.items() if url == parsed.base_url)
    derived = {"region": region, "allow_insecure_http": not refused_http}
    found = {
        prefix + name: value
        for name, value in _parsed_defaults(
            parsed, [n.removeprefix(prefix) for n in defaults], derived
        ).items()
    }
    assert found == defaults


def test_an_empty_config_parses_to_the_dead_letter_threshold_defaults():
    parsed = DeadLetterThreshold.from_config({})
    assert {
        "dead_letter_max_fraction": parsed.max_fraction,
        "dead_letter_min_count": parsed.min_count,
    } == schema_defaults(threshold_properties())


@pytest.mark.parametrize(
    ("domain", "sandbox", "url"),
    [
        (None, False, "https://login.salesforce.com"),
        ("login", False, "https://login.salesforce.com"),
        (None, True, "https://test.salesforce.com"),
        ("login", True, "https://test.salesforce.com"),
        ("acme.my", True, "https://acme.my.salesforce.com"),
        ("test", False, "https://test.salesforce.com"),
        ("acme.my", False, "https://acme.my.salesforce.com"),
        ("https://127.0.0.1:8443/", False, "https://127.0.0.1:8443"),
    ],
)
def test_login_url(domain, sandbox, url):
    assert login_url_for(domain, sandbox) == url


@pytest.mark.parametrize(
    ("config", "audience"),
    [
        ({}, "https://login.salesforce.com"),
        ({"domain": "acme.my"}, "https://login.salesforce.com"),
        ({"domain": "https://127.0.0.1:8443"}, "https://login.salesforce.com"),
        ({"domain": "test"}, "https://test.salesforce.com"),
        ({"is_sandbox": True}, "https://test.salesforce.com"),
        ({"domain": "acme--uat.sandbox.my"}, "https://test.salesforce.com"),
        ({"domain": "https://ACME--uat.sandbox.my.salesforce.com"}, "https://test.salesforce.com"),
        ({"domain": "https://127.0.0.1:8443", "is_sandbox": True}, "https://test.salesforce.com"),
    ],
)
def test_jwt_audience_is_login_or_test_never_the_my_domain_host(config, audience):
    assert SalesforceSettings.from_config(config).jwt_audience == audience


@pytest.mark.parametrize(
    ("value", "sandbox"),
    [
        (True, True),
        (False, False),
        ("true", True),
        ("TRUE", True),
        (" Yes ", True),
        ("1", True),
        ("false", False),
        ("False", False),
        ("no", False),
        ("0", False),
        ("", False),  # empty: the default
        (None, False),
    ],
)
def test_is_sandbox_takes_booleans_and_their_words(value, sandbox):
    """bool("false") is True: a library caller passing text must get what the text says."""
    settings = SalesforceSettings.from_config({"is_sandbox": value})
    assert settings.is_sandbox is sandbox
    expected = "https://test.salesforce.com" if sandbox else "https://login.salesforce.com"
    assert (settings.login_url, settings.jwt_audience) == (expected, expected)


@pytest.mark.parametrize("value", ["maybe", "ture", "2", 2, 0.5, [], {"x": 1}])
def test_is_sandbox_refuses_anything_else_naming_the_setting(value):
    with pytest.raises(ConfigurationError, match="setting 'is_sandbox' must be true or false"):
        SalesforceSettings.from_config({"is_sandbox": value})


def test_bad_domain_names_the_setting():
    with pytest.raises(ConfigurationError, match="domain"):
        login_url_for("127.0.0.1:8443")


def test_private_key_file_is_read(tmp_path):
    key = tmp_path / "key.pem"
    key.write_text("PEM TEXT")
    settings = SalesforceSettings.from_config(
        {"private_key_file": str(key), "username": "u", "client_id": "c", "api_version": "v61.0"}
    )
    assert settings.private_key == "PEM TEXT"
    assert settings.api_version == "61.0"
    assert "PEM" not in repr(settings)


def test_reprs_hide_secrets():
    sf = SalesforceSettings.from_config(
        {"client_id": "cid", "client_secret": "sec-123456", "refresh_token": "rt-abcdef"}
    )
    ac = AppcuesSettings.from_config(
        {"appcues_account_id": "1", "appcues_api_key": "k", "appcues_api_secret": "s-987654"},
        prefix="appcues_",
    )
    for text in (repr(sf), str(sf), repr(ac), str(ac)):
        assert "sec-123456" not in text and "rt-abcdef" not in text and "s-987654" not in text
    assert ac.base_url == "https://api.appcues.com"


def test_appcues_region_and_missing_settings():
    base = {"account_id": "1", "api_key": "k", "api_secret": "s"}
    assert AppcuesSettings.from_config({**base, "region": "eu"}).base_url == (
        "https://api.eu.appcues.com"
    )
    with pytest.raises(ConfigurationError, match="appcues_api_secret"):
        AppcuesSettings.from_config({"appcues_account_id": "1", "appcues_api_key": "k"}, "appcues_")
    with pytest.raises(ConfigurationError, match="region"):
        AppcuesSettings.from_config({**base, "region": "mars"})


def test_scrub_removes_tokens_and_known_secrets():
    text = (
        "Authorization: Bearer 00Dxx0000001gPL!AR8AQJXg5oj8jXSgxJfA0lBog.39AsX "
        "refresh_token=abc123&client_secret=zzz999 Basic dXNlcjpwYXNzd29yZA== mysecretvalue"
    )
    out = scrub(text, ["mysecretvalue"])
    for secret in [
        "00Dxx0000001gPL!AR8AQ",
        "abc123",
        "zzz999",
        "dXNlcjpwYXNzd29yZA==",
        "mysecretvalue",
    ]:
        assert secret not in out


def test_scrub_spares_prose():
    text = "Basic authentication failed: see the basic information page."
    assert scrub(text) == text
    assert "YWJjOmRlZg==" not in scrub("Authorization: Basic YWJjOmRlZg==")


def test_salesforce_error_shapes():
    err = SalesforceError.from_body(
        400, [{"errorCode": "INVALID_FIELD", "message": "No such column", "fields": ["Foo"]}]
    )
    assert (err.status, err.error_code, err.fields) == (400, "INVALID_FIELD", ["Foo"])
    limit = SalesforceError.from_body(
        403, [{"errorCode": "REQUEST_LIMIT_EXCEEDED", "message": "TotalRequests Limit exceeded."}]
    )
    assert type(limit).__name__ == "QuotaExceededError"
    oauth = SalesforceError.from_body(400, {"error": "invalid_grant", "error_description": "bad"})
    assert oauth.error_code == "invalid_grant"


def test_salesforce_login_choice_and_missing_settings():
    from salesforce_appcues_clients.salesforce import SalesforceClient

    with pytest.raises(ConfigurationError, match="no Salesforce login configured"):
        SalesforceClient.from_config({"client_id": "c"})
    with pytest.raises(ConfigurationError, match="client_id"):
        SalesforceClient.from_config({"refresh_token": "r"})
    with pytest.raises(ConfigurationError, match="username, private_key"):
        SalesforceClient.from_config({"auth_flow": "jwt_bearer", "client_id": "c"})
    jwt_client = SalesforceClient.from_config(
        {"client_id": "c", "username": "u", "private_key": "not a key", "refresh_token": "r"}
    )
    assert jwt_client._tokens.flow == "jwt_bearer"
    with pytest.raises(ConfigurationError, match="private_key") as info:
        jwt_client.limits()
    assert "not a key" not in str(info.value)


@pytest.mark.parametrize("prefix", ["", "appcues_"])
def test_allow_insecure_http_refuses_a_word_that_is_not_yes_or_no(prefix):
    """The same parser: an unclear value never quietly decides whether secrets go in clear."""
    config = {f"{prefix}{n}": "x" for n in ("account_id", "api_key", "api_secret")}
    config[f"{prefix}allow_insecure_http"] = "sometimes"
    with pytest.raises(ConfigurationError, match=f"setting '{prefix}allow_insecure_http'"):
        if prefix:
            AppcuesSettings.from_config(config, prefix)
        else:
            SalesforceSettings.from_config(config)
