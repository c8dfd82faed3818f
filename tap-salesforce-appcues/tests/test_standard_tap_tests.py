"""singer-sdk's standard tap tests against a seeded sandbox.

The SDK builds its test class at import time (it discovers the streams to parametrize the
per-stream tests), so this module runs its own in-process sandbox, started on import and
stopped when the module's tests are done.
"""

from __future__ import annotations

import atexit
from datetime import UTC, datetime, timedelta

import pytest
from singer_sdk.testing import SuiteConfig, get_tap_test_class

from salesforce_appcues_sandbox.server import Sandbox
from salesforce_appcues_sandbox.testing import SandboxControl, appcues_config, salesforce_config
from tap_salesforce_appcues.tap import TapSalesforceAppcues


def _start() -> tuple[Sandbox, dict]:
    sandbox = Sandbox().start()
    atexit.register(sandbox.stop)
    conn = sandbox.connection
    with SandboxControl.of(conn, "salesforce", timeout=60) as salesforce:
        salesforce.seed({"Account": 6, "Contact": 12, "Lead": 6, "seed": 3})
    now = datetime.now(UTC)
    with SandboxControl.of(conn, "appcues", timeout=60) as appcues:
        appcues.seed(
            {
                "Contact": 12,
                "Lead": 6,
                "events": 400,
                "seed": 3,
                "start": (now - timedelta(days=3)).isoformat(),
                "end": (now - timedelta(hours=1)).isoformat(),
            }
        )
    config = {
        **salesforce_config(conn),
        **appcues_config(conn, "appcues_"),
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
