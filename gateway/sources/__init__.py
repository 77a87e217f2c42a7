"""Definitions of any-format sources that config and ingest both use (CONTRACT 1, config/sources):
`presets` of well-known providers, the `templates` that build CloudEvent attributes from a
request and the `kinds` of verification. Config checks source files with them; ingest runs them.
"""
