"""Singer target: Salesforce records become Appcues user and group profiles."""
