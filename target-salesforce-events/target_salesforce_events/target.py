"""TargetSalesforceEvents: the target's entry point and configuration schema."""

from __future__ import annotations

from singer_sdk import Target
from singer_sdk import typing as th

from .sinks import EventSink


class TargetSalesforceEvents(Target):
    """Loads Appcues events into Salesforce Event records and Latest NPS fields."""

    name = "target-salesforce-events"
    config_jsonschema = th.PropertiesList(
        th.Property(
            "user_id_field",
            th.StringType,
            default="Product_User_Id__c",
            title="User id field",
            description="Text field on Lead/Contact holding the Appcues user id.",
        ),
    ).to_dict()
    default_sink_class = EventSink


if __name__ == "__main__":
    TargetSalesforceEvents.cli()
