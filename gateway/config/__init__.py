"""Configuration: YAML files -> frozen dataclasses (`model`), with file:line problems."""
