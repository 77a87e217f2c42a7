"""Configuration: YAML files -> frozen dataclasses (`model`), with file:line problems."""

from __future__ import annotations

from gateway.config.loader import collect, load, parse_duration

__all__ = ["collect", "load", "parse_duration"]
