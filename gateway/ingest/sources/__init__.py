"""Any-format ingest: turn a provider's own webhook into a verified CloudEvent.

A configured source (`config/sources/*.yaml`) names how its requests are verified
(`verify`), how their body is read (`bodies`) and how each CloudEvent attribute is built from the
request (`templates`, `mapping`); `presets` fill all of that for well-known providers.
"""
