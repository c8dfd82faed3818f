"""The emulated Appcues API v2: profiles, groups, events, imports, analytics, webhooks."""
