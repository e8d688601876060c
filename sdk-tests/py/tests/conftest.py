"""Registers the fixtures defined in support.py (server, client, rx, rx2, wf, per-test checks)."""

from support import (  # noqa: F401
    _every_delivery_verified,
    _workflow_sdk_accepted_everything,
    client,
    rx,
    rx2,
    server,
    wf,
)
