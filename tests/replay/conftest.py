"""The replay server fixture: one server per `Intercom-Version` the replay records exist for."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.replay.records import VERSIONS
from tests.replay.server import ReplayServer
from tests.replay.workspace import build


@pytest.fixture(params=VERSIONS, ids=[f"v{v}" for v in VERSIONS])
def replay(request: pytest.FixtureRequest) -> Iterator[ReplayServer]:
    """Real HTTP on 127.0.0.1 serving the replay workspace in the shapes of one version."""
    with ReplayServer(build(request.param, int(time.time()))) as server:
        yield server
