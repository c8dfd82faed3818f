"""TargetAppcuesProfiles: the target's entry point and configuration schema."""

from __future__ import annotations

from singer_sdk import Target
from singer_sdk import typing as th

from .sinks import ProfileSink


class TargetAppcuesProfiles(Target):
    """Loads user and group records into Appcues profiles."""

    name = "target-appcues-profiles"
    config_jsonschema = th.PropertiesList(
        th.Property(
            "user_id_field",
            th.StringType,
            default="Product_User_Id__c",
            title="User id field",
            description="Record field holding the id the product passes to Appcues.identify().",
        ),
    ).to_dict()
    default_sink_class = ProfileSink


if __name__ == "__main__":
    TargetAppcuesProfiles.cli()
