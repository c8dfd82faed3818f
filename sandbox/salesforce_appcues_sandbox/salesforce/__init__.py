"""The emulated Salesforce org: OAuth, REST, SOQL, sObject Collections, Bulk API 2.0."""
