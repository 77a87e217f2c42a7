"""Operating a running gateway (CONTRACT 6): the admin API on its own listener, what it does
(`control`), its OpenAPI document, and the command-line client that talks to it."""
