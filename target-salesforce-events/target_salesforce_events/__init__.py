"""Singer target: Appcues events become Salesforce Event records and Latest NPS fields."""
