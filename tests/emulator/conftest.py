"""Fixtures for emulator tests: a live emulator on a free 127.0.0.1 port, and an httpx client.

Why function-scoped: most tests mutate the workspace, move its clock or change faults, so each
test gets its own server and workspace (the tiny profile builds in well under a second).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from intercom_emulator.testing import EmulatorServer


@pytest.fixture
def emulator_knobs() -> dict[str, Any]:
    """Override in a test module (or parametrize indirectly) to start the emulator with knobs."""
    return {}


@pytest.fixture
def emulator(emulator_knobs: dict[str, Any]) -> Iterator[EmulatorServer]:
    """An in-process emulator (tiny profile, seed 1) serving real HTTP."""
    with EmulatorServer(profile="tiny", seed=1, **emulator_knobs) as emu:
        yield emu


@pytest.fixture
def api(emulator: EmulatorServer) -> Iterator[httpx.Client]:
    """An httpx client with the default token and Intercom-Version 2.15."""
    with emulator.client(timeout=30) as client:
        yield client

