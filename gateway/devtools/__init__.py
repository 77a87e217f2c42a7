"""Trying the gateway on one machine: `gateway send` publishes, `gateway sink` receives."""
