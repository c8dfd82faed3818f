"""Salesforce and Appcues API clients shared by the three plugins."""
