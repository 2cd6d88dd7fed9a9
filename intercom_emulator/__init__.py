"""A faithful, deterministic Intercom REST API emulator (the connector's independent witness).

Imports nothing from `sources/` or `pipelines/`. The store (`Workspace`) is importable without the
HTTP server.
"""

from __future__ import annotations

from intercom_emulator.clock import VirtualClock
from intercom_emulator.store import PROFILES, Workspace

__all__ = ["PROFILES", "VirtualClock", "Workspace"]
