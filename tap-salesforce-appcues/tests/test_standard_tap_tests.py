"""singer-sdk's standard tap tests against a seeded sandbox.

The SDK builds its test class at import time (it discovers the streams to parametrize the
per-stream tests), so this module runs its own in-process sandbox, started on import and
stopped when the module's tests are done.
"""

from __future__ import annotations

import atexit
from datetime import UTC, datetime, timedelta

import pytest
import requests
from singer_sdk.testing import SuiteConfig, get_tap_test_class

from salesforce_appcues_sandbox.server import Sandbox
from tap_salesforce_appcues.tap import TapSalesforceAppcues


def _start() -> tuple[Sandbox, dict]:
    sandbox = Sandbox().start()
    atexit.register(sandbox.stop)
    conn = sandbox.connection
    session = requests.Session()
    session.trust_env = False
    session.verify = conn["ca_bundle"]
    seed = {"Account": 6, "Contact": 12, "Lead": 6, "seed": 3}
    session.post(f"{conn['salesforce']['control_url']}/seed", json=seed, timeout=60)
    now = datetime.now(UTC)
    session.post(
        f"{conn['appcues']['control_url']}/seed",
        json={
            "Contact": 12,
            "Lead": 6,
            "events": 400,
            "seed": 3,
            "start": (now - timedelta(days=3)).isoformat(),
            "end": (now - timedelta(hours=1)).isoformat(),
        },
        timeout=60,
    )
    session.close()
    sf, ac = conn["salesforce"], conn["appcues"]
    config = {
        "domain": sf["login_url"],
        "client_id": sf["client_id"],
        "client_secret": sf["client_secret"],
        "refresh_token": sf["refresh_token"],
        "ca_bundle": conn["ca_bundle"],
        "appcues_base_url": ac["base_url"],
        "appcues_account_id": ac["account_id"],
        "appcues_api_key": ac["api_key"],
        "appcues_api_secret": ac["api_secret"],
        "appcues_ca_bundle": conn["ca_bundle"],
        "user_objects": ["Contact", "Lead"],
        "account_object": "Account",
        "relationship_fields": {"Contact": ["Account.Product_Account_Id__c"]},
        "appcues_start_date": (now - timedelta(days=4)).isoformat(),
    }
    return sandbox, config


# Attribute tests of fields the seed leaves empty have nothing to check (the SDK template
# lets this warning through too).
pytestmark = pytest.mark.filterwarnings("ignore:No records were available to test:UserWarning")

SANDBOX, CONFIG = _start()

StandardTests = get_tap_test_class(
    tap_class=TapSalesforceAppcues,
    config=CONFIG,
    suite_config=SuiteConfig(max_records_limit=50),
)


class TestTapSalesforceAppcues(StandardTests):
    """The SDK's tap, stream and attribute tests."""


@pytest.fixture(scope="module", autouse=True)
def _stop_sandbox():
    yield
    SANDBOX.stop()
