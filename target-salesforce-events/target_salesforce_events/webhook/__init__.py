"""The real-time path: Appcues webhooks -> a durable local spool -> the events target's pipeline.

Lives inside the events target's package because it is the same product (same settings,
same matching, templates, exactly-once and Latest NPS code: `EventPipeline`), only fed by
HTTP deliveries instead of Singer records. See docs/architecture.md, "Webhook receiver".
"""
