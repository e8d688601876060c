"""Registers the fixtures defined in support.py (server, client, rx, per-test signature check)."""

from support import _every_delivery_verified, client, rx, server  # noqa: F401
