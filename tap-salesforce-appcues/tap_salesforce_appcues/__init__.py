"""Singer tap: incremental Salesforce Lead/Contact/account records and Appcues events."""
