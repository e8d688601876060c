"""Registers the fixtures defined in support.py (server, client, rx, rx2, per-test signature check)."""

from support import _every_delivery_verified, client, rx, rx2, server  # noqa: F401
