"""Definitions of any-format sources that both config and ingest use (CONTRACT 1, config/sources).

`presets` (well-known providers written as a user would write them), `templates` (the syntax
that builds a CloudEvent attribute from a request) and `kinds` (how a request may be verified).
Config reads them to check a source file; ingest runs them on requests.
"""
