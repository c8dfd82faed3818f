"""TapSalesforceAppcues: the tap's entry point and configuration schema."""

from __future__ import annotations

from singer_sdk import Stream, Tap
from singer_sdk import typing as th


class TapSalesforceAppcues(Tap):
    """Reads changed Salesforce user and account records, and Appcues events."""

    name = "tap-salesforce-appcues"
    config_jsonschema = th.PropertiesList(
        th.Property(
            "start_date",
            th.DateTimeType,
            title="Start date",
            description="Earliest SystemModstamp to read on the first run (ISO 8601).",
        ),
    ).to_dict()

    def discover_streams(self) -> list[Stream]:
        return []


if __name__ == "__main__":
    TapSalesforceAppcues.cli()
