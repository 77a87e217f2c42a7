"""A CloudEvents-native event gateway: ingest, validate, store durably, deliver to webhooks."""

__version__ = "0.1.0"
