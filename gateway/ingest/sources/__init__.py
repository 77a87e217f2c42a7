"""Any-format ingest: turn a provider's own webhook into a verified CloudEvent.

A configured source (`config/sources/*.yaml`) names how its requests are verified
(`verify`), how their body is read (`bodies`) and how each CloudEvent attribute is built from the
request (`mapping`, with the templates and presets of `gateway.sources`).
"""
