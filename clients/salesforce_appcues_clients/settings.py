"""The shared settings as JSON-schema properties, and typed views of a plugin's config.

Plugins merge `salesforce_properties()` / `appcues_properties(prefix)` into their
`config_jsonschema["properties"]`; the descriptions become the Meltano docs of each setting.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .errors import ConfigurationError

# Settings that may be fractional also admit numeric text: Meltano 4.4.1 turns a text value of
# a `decimal` setting into a Decimal it cannot serialise, so meltano.yml declares them as
# strings, and `bounded` parses them (naming the setting when the text is no number).
FRACTION_TYPE = ["number", "string"]

DEFAULT_API_VERSION = "62.0"
# The only JWT bearer audiences Salesforce accepts besides an Experience Cloud site URL; a
# My Domain host answers invalid_grant "audience is invalid".
JWT_AUDIENCE_PRODUCTION = "https://login.salesforce.com"
JWT_AUDIENCE_SANDBOX = "https://test.salesforce.com"
API_VERSION_FORM = re.compile(r"[vV]?\d{2,3}\.0")
APPCUES_REGIONS = {"us": "https://api.appcues.com", "eu": "https://api.eu.appcues.com"}

# The org's conventions every plugin defaults to: the objects whose records are Appcues users
# (in priority order), and the Text fields holding the ids the product passes to
# `Appcues.identify()` and `Appcues.group()`.
USER_OBJECTS = ("Contact", "Lead")
USER_ID_FIELD = "Product_User_Id__c"
GROUP_ID_FIELD = "Product_Account_Id__c"


def _secret(spec: dict[str, Any]) -> dict[str, Any]:
    return {**spec, "secret": True, "writeOnly": True}


def _insecure_http(service: str, endpoints: str) -> dict[str, Any]:
    return {
        "type": "boolean",
        "title": f"Allow plain HTTP to {service}",
        "default": False,
        "description": (
            f"Accept an `http://` URL in {endpoints}. Credentials then cross the network "
            "in clear text: meant only for a local test double you trust. Off: any "
            "endpoint that is not `https://` (loopback included) is refused at start."
        ),
    }


def salesforce_properties() -> dict[str, dict[str, Any]]:
    """JSON-schema properties of the Salesforce connection settings."""
    return {
        "client_id": {
            "type": "string",
            "title": "Client ID",
            "description": "Consumer key of the Salesforce connected app (or External Client App).",
        },
        "client_secret": _secret(
            {
                "type": "string",
                "title": "Client secret",
                "description": (
                    "Consumer secret of the connected app. Needed for the refresh-token flow "
                    "when the app requires it, and for the client-credentials flow."
                ),
            }
        ),
        "refresh_token": _secret(
            {
                "type": "string",
                "title": "Refresh token",
                "description": (
                    "OAuth refresh token of the integration user. If the connected app rotates "
                    "refresh tokens, the newest one is kept in `token_store_dir` and used by "
                    "later runs; putting a new token here starts over from it."
                ),
            }
        ),
        "token_store_dir": {
            "type": "string",
            "title": "Refresh token store",
            "default": ".salesforce-tokens",
            "description": (
                "Folder where a refresh token Salesforce rotates is kept for the next runs "
                "(one owner-only file per configured token, under a lock). Give the tap and "
                "the events target the same folder when they share a refresh token; a "
                "relative path starts at the working directory (the Meltano project)."
            ),
        },
        "username": {
            "type": "string",
            "title": "Username",
            "description": (
                "Salesforce username of the integration user, for the JWT bearer flow "
                "(with `private_key`)."
            ),
        },
        "private_key": _secret(
            {
                "type": "string",
                "title": "Private key (PEM)",
                "description": (
                    "PEM text of the RSA private key whose certificate is uploaded to the "
                    "connected app; selects the JWT bearer flow together with `username`."
                ),
            }
        ),
        "private_key_file": {
            "type": "string",
            "title": "Private key file",
            "description": "Path to a PEM file, instead of `private_key`.",
        },
        "auth_flow": {
            "type": "string",
            "title": "OAuth flow",
            "enum": ["auto", "refresh_token", "jwt_bearer", "client_credentials"],
            "default": "auto",
            "description": (
                "Which OAuth flow to use. `auto` picks JWT bearer when `username` and a private "
                "key are set, else the refresh-token flow when `refresh_token` is set, else "
                "client credentials (My Domain only)."
            ),
        },
        "domain": {
            "type": "string",
            "title": "Login domain",
            "default": "login",
            "description": (
                "Where to log in: `login` (production), `test` (sandbox orgs), a My Domain "
                "prefix such as `acme.my`, or a full base URL `https://host[:port]` (a proxy "
                "or a local emulator)."
            ),
        },
        "is_sandbox": {
            "type": "boolean",
            "title": "Sandbox org",
            "default": False,
            "description": (
                "The org is a Salesforce sandbox: shorthand for `domain: test` (when `domain` "
                "is unset or `login`), and the JWT audience `https://test.salesforce.com` "
                "(chosen anyway for `domain: test` and `*.sandbox.my` hosts; set it for a "
                "sandbox My Domain without `.sandbox.`, e.g. `acme--uat.my`)."
            ),
        },
        "api_version": {
            "type": "string",
            "title": "API version",
            "default": DEFAULT_API_VERSION,
            "pattern": r"^[vV]?\d{2,3}\.0$",
            "description": "Salesforce REST API version, e.g. `62.0`.",
        },
        "allow_insecure_http": _insecure_http("Salesforce", "`domain`"),
        "request_timeout": {
            "type": "integer",
            "title": "Request timeout (seconds)",
            "default": 120,
            "minimum": 1,
            "maximum": 3600,
            "description": "Seconds to wait for Salesforce to answer one HTTP request.",
        },
        "ca_bundle": {
            "type": "string",
            "title": "CA bundle",
            "description": (
                "Path to a PEM file of certificate authorities to trust (a TLS-inspecting "
                "proxy, a local emulator). Unset: the standard `REQUESTS_CA_BUNDLE` / "
                "`SSL_CERT_FILE` variables, else the system store."
            ),
        },
        "quota_percent_total": {
            "type": list(FRACTION_TYPE),
            "title": "Org API quota cap (%)",
            "default": 80,
            "exclusiveMinimum": 0,
            "maximum": 100,
            "description": (
                "Stop the run when the org's rolling 24-hour API usage (all integrations) "
                "passes this share of its daily limit."
            ),
        },
        "quota_percent_per_run": {
            "type": list(FRACTION_TYPE),
            "title": "Per-run API quota cap (%)",
            "default": 25,
            "exclusiveMinimum": 0,
            "maximum": 100,
            "description": (
                "Stop the run when the calls made by this run pass this share of the org's "
                "daily API limit."
            ),
        },
        "max_retries": {
            "type": "integer",
            "title": "Retries per request",
            "default": 5,
            "minimum": 0,
            "maximum": 20,
            "description": (
                "How often a request is retried after a transient failure (connection error, "
                "timeout, 429, 5xx) before the run fails."
            ),
        },
        "retry_max_seconds": {
            "type": "integer",
            "title": "Retry time budget (seconds)",
            "default": 300,
            "minimum": 0,
            "maximum": 86400,
            "description": "Total seconds one request may spend waiting between retries.",
        },
        "retry_base_delay": {
            "type": list(FRACTION_TYPE),
            "title": "First retry delay (seconds)",
            "default": 1.0,
            "minimum": 0,
            "maximum": 600,
            "description": "Backoff before the first retry; doubles on each further retry.",
        },
        "bulk_timeout": {
            "type": "integer",
            "title": "Bulk query timeout (seconds)",
            "default": 1800,
            "minimum": 1,
            "maximum": 86400,
            "description": "A Bulk API 2.0 query job still running after this is aborted.",
        },
    }


def appcues_properties(prefix: str = "") -> dict[str, dict[str, Any]]:
    """JSON-schema properties of the Appcues settings, names optionally prefixed."""
    props: dict[str, dict[str, Any]] = {
        "account_id": {
            "type": "string",
            "title": "Appcues account ID",
            "description": "Your Appcues account ID (Studio: Settings > Account).",
        },
        "api_key": {
            "type": "string",
            "title": "Appcues API key",
            "description": "API key created in Appcues Studio (Settings > API keys).",
        },
        "api_secret": _secret(
            {
                "type": "string",
                "title": "Appcues API secret",
                "description": "Secret of the API key; Appcues shows it once when the key is made.",
            }
        ),
        "region": {
            "type": "string",
            "title": "Appcues region",
            "enum": ["us", "eu"],
            "default": "us",
            "description": "Data region of the account: `us` (api.appcues.com) or `eu`.",
        },
        "base_url": {
            "type": "string",
            "title": "Appcues base URL",
            "description": "Overrides `region` with `https://host[:port]` (a proxy, an emulator).",
        },
        "allow_insecure_http": _insecure_http("Appcues", "the Appcues `base_url`"),
        "max_requests_per_second": {
            "type": "integer",
            "title": "Appcues request rate cap",
            "default": 50,
            "minimum": 1,
            "description": (
                "Requests per second this process sends to Appcues, shared by all threads "
                "(Appcues allows 60 per account)."
            ),
        },
        "request_timeout": {
            "type": "integer",
            "title": "Appcues request timeout (seconds)",
            "default": 60,
            "minimum": 1,
            "maximum": 3600,
            "description": "Seconds to wait for Appcues to answer one HTTP request.",
        },
        "ca_bundle": {
            "type": "string",
            "title": "Appcues CA bundle",
            "description": "PEM file of certificate authorities to trust for Appcues.",
        },
        "max_retries": {
            "type": "integer",
            "title": "Appcues retries per request",
            "default": 3,
            "minimum": 0,
            "maximum": 20,
            "description": "Retries after a 429 or 5xx answer before the run fails.",
        },
        "retry_base_delay": {
            "type": list(FRACTION_TYPE),
            "title": "Appcues first retry delay (seconds)",
            "default": 1.0,
            "minimum": 0,
            "maximum": 600,
            "description": "Wait before a retry without Retry-After; doubles, capped at 60.",
        },
    }
    return {f"{prefix}{name}": spec for name, spec in props.items()}


def _get(config: Mapping[str, Any], name: str, default: Any = None) -> Any:
    value = config.get(name)
    return default if value is None or value == "" else value


def schema_defaults(props: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Each property's schema default: the one place a setting's default is written (the
    parsers fall back to these, the generated Meltano settings and docs show them)."""
    return {name: spec["default"] for name, spec in props.items() if "default" in spec}


def bounded(config: Mapping[str, Any], name: str, spec: Mapping[str, Any]) -> float:
    """The setting as a number within the schema's range, else the schema's default (text is
    parsed, as Meltano may pass numbers as text); the error names the setting and the range."""
    low, above, high = spec.get("minimum"), spec.get("exclusiveMinimum"), spec.get("maximum")
    whole = spec.get("type") == "integer"
    kind = "a whole number" if whole else "a number"
    span = " ".join(
        part
        for part in (
            f"from {low} to {high}" if low is not None and high is not None else "",
            f"of at least {low}" if low is not None and high is None else "",
            f"above {above}" if above is not None else "",
            f"up to {high}" if high is not None and low is None else "",
        )
        if part
    )
    problem = f"setting {name!r} must be {kind} {span}".rstrip()
    value = _get(config, name, spec.get("default"))
    try:
        if isinstance(value, bool):
            raise ValueError
        number = float(value)
        if whole and number != int(number):
            raise ValueError
    except (TypeError, ValueError, OverflowError):
        raise ConfigurationError(f"{problem}; got {value!r}") from None
    if (
        number != number  # NaN
        or (low is not None and number < low)
        or (above is not None and number <= above)
        or (high is not None and number > high)
    ):
        raise ConfigurationError(f"{problem}; got {value!r}")
    return number


def require_https(url: str, setting: str, allowed: bool, allow_setting: str) -> str:
    """Refuse a plain-HTTP endpoint (credentials would cross the network in clear text)."""
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme == "https" or (scheme == "http" and allowed):
        return url
    if scheme == "http":
        raise ConfigurationError(
            f"setting {setting!r} is a plain http:// URL: the credentials would be sent in "
            f"clear text. Use https://host[:port], or set {allow_setting} to true for a "
            "local test double you trust"
        )
    raise ConfigurationError(f"setting {setting!r} must be an https://host[:port] URL; got {url!r}")


_FLAG_WORDS = {
    **dict.fromkeys(("true", "1", "yes", "on"), True),
    **dict.fromkeys(("false", "0", "no", "off"), False),
}


def _flag(config: Mapping[str, Any], name: str, default: bool) -> bool:
    return setting_flag(config.get(name), name, default)


def setting_flag(value: Any, name: str, default: bool) -> bool:
    """A boolean setting's value (None or "": `default`). Meltano or a library caller may pass
    it as text, where bool("false") would be True: only the words for yes and no are taken,
    anything else is refused with a ConfigurationError naming the setting."""
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _FLAG_WORDS:
        return _FLAG_WORDS[value.strip().lower()]
    raise ConfigurationError(
        f"setting {name!r} must be true or false (or the text true/false, 1/0, yes/no); "
        f"got {value!r}"
    )


def login_url_for(domain: str | None, is_sandbox: bool = False, allow_http: bool = False) -> str:
    """The OAuth base URL for a `domain` setting."""
    domain = (domain or "").strip()
    if not domain or (is_sandbox and domain == "login"):  # "login" may just be the default
        domain = "test" if is_sandbox else "login"
    if "://" in domain:
        return require_https(domain, "domain", allow_http, "allow_insecure_http").rstrip("/")
    if "/" in domain or ":" in domain:
        raise ConfigurationError(
            f"setting 'domain' must be login, test, a My Domain prefix or https://host[:port]; "
            f"got {domain!r}"
        )
    host = domain if domain.endswith(".salesforce.com") else f"{domain}.salesforce.com"
    return f"https://{host}"


@dataclass(frozen=True, repr=False)
class SalesforceSettings:
    """The Salesforce settings of one config, validated; repr hides secrets."""

    login_url: str
    client_id: str | None
    client_secret: str | None
    refresh_token: str | None
    username: str | None
    private_key: str | None
    auth_flow: str
    api_version: str
    request_timeout: float
    ca_bundle: str | None
    quota_percent_total: float
    quota_percent_per_run: float
    max_retries: int
    retry_max_seconds: float
    retry_base_delay: float
    bulk_timeout: float
    is_sandbox: bool
    token_store_dir: str
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> SalesforceSettings:
        props = salesforce_properties()
        defaults = schema_defaults(props)

        def get(name: str) -> Any:
            return _get(config, name, defaults.get(name))

        def number(name: str) -> float:
            return bounded(config, name, props[name])

        private_key = get("private_key")
        key_file = get("private_key_file")
        if not private_key and key_file:
            try:
                private_key = Path(key_file).read_text()
            except OSError as exc:
                raise ConfigurationError(
                    f"setting 'private_key_file': cannot read {key_file}: {exc.strerror}"
                ) from None
        raw_version = str(get("api_version")).strip()
        if not API_VERSION_FORM.fullmatch(raw_version):
            raise ConfigurationError(
                f"setting 'api_version' must be a Salesforce API version such as "
                f"{DEFAULT_API_VERSION} (digits, '.0'); got {raw_version!r}"
            )
        version = raw_version.lstrip("vV")
        flow = str(get("auth_flow"))
        if flow not in props["auth_flow"]["enum"]:
            raise ConfigurationError(f"setting 'auth_flow' has an unknown value {flow!r}")
        is_sandbox = _flag(config, "is_sandbox", defaults["is_sandbox"])
        return cls(
            login_url=login_url_for(
                get("domain"),
                is_sandbox,
                _flag(config, "allow_insecure_http", defaults["allow_insecure_http"]),
            ),
            client_id=get("client_id"),
            client_secret=get("client_secret"),
            refresh_token=get("refresh_token"),
            username=get("username"),
            private_key=private_key,
            auth_flow=flow,
            api_version=version,
            request_timeout=number("request_timeout"),
            ca_bundle=get("ca_bundle"),
            quota_percent_total=number("quota_percent_total"),
            quota_percent_per_run=number("quota_percent_per_run"),
            max_retries=int(number("max_retries")),
            retry_max_seconds=number("retry_max_seconds"),
            retry_base_delay=number("retry_base_delay"),
            bulk_timeout=number("bulk_timeout"),
            is_sandbox=is_sandbox,
            token_store_dir=str(get("token_store_dir")),
        )

    @property
    def jwt_audience(self) -> str:
        """`aud` of a JWT bearer assertion: test.salesforce.com for sandbox orgs, else
        login.salesforce.com, whatever host the token request goes to."""
        host = (urlsplit(self.login_url).hostname or "").lower()
        if (
            self.is_sandbox
            or host == "test.salesforce.com"
            or host.endswith(".sandbox.my.salesforce.com")
        ):
            return JWT_AUDIENCE_SANDBOX
        return JWT_AUDIENCE_PRODUCTION

    def secrets(self) -> tuple[str, ...]:
        return tuple(s for s in (self.client_secret, self.refresh_token, self.private_key) if s)

    def __repr__(self) -> str:
        return f"SalesforceSettings(login_url={self.login_url!r}, flow={self.auth_flow!r})"


@dataclass(frozen=True, repr=False)
class AppcuesSettings:
    """The Appcues settings of one config (optionally prefixed), validated; repr hides secrets."""

    account_id: str
    api_key: str
    api_secret: str
    base_url: str
    max_requests_per_second: float
    request_timeout: float
    ca_bundle: str | None
    max_retries: int
    retry_base_delay: float
    prefix: str = ""  # how the plugin spells the setting names (for messages)

    @classmethod
    def from_config(cls, config: Mapping[str, Any], prefix: str = "") -> AppcuesSettings:
        props = appcues_properties(prefix)
        defaults = schema_defaults(props)

        def get(name: str) -> Any:
            return _get(config, prefix + name, defaults.get(prefix + name))

        def number(name: str) -> float:
            return bounded(config, prefix + name, props[prefix + name])

        missing = [prefix + n for n in ("account_id", "api_key", "api_secret") if not get(n)]
        if missing:
            raise ConfigurationError(f"missing Appcues setting(s): {', '.join(missing)}")
        region = str(get("region")).lower()
        base_url = get("base_url")
        if not base_url:
            if region not in APPCUES_REGIONS:
                raise ConfigurationError(
                    f"setting {prefix}region must be one of {sorted(APPCUES_REGIONS)}"
                )
            base_url = APPCUES_REGIONS[region]
        base_url = require_https(
            str(base_url).strip(),
            prefix + "base_url" if get("base_url") else prefix + "region",
            _flag(config, prefix + "allow_insecure_http", defaults[prefix + "allow_insecure_http"]),
            prefix + "allow_insecure_http",
        )
        return cls(
            account_id=str(get("account_id")),
            api_key=str(get("api_key")),
            api_secret=str(get("api_secret")),
            base_url=str(base_url).rstrip("/"),
            max_requests_per_second=number("max_requests_per_second"),
            request_timeout=number("request_timeout"),
            ca_bundle=get("ca_bundle"),
            max_retries=int(number("max_retries")),
            retry_base_delay=number("retry_base_delay"),
            prefix=prefix,
        )

    def __repr__(self) -> str:
        return f"AppcuesSettings(account_id={self.account_id!r}, base_url={self.base_url!r})"
