"""Fixtures for the CLI tests: an in-process emulator and argv pointing everything at tmp_path."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from intercom_emulator.testing import EmulatorServer

LIMITED_TOKEN = "limited-token"  # admins/tags only: no contacts, companies, conversations


@pytest.fixture
def emulator() -> Iterator[EmulatorServer]:
    """A small deterministic workspace on a free local port, plus a token with few permissions."""
    with EmulatorServer(
        profile="tiny", seed=7, tokens=["test-token", f"{LIMITED_TOKEN}:read_admins,read_tags"]
    ) as emu:
        yield emu


@pytest.fixture
def token_env(emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch) -> str:
    """The full-permission token, exported the way users do."""
    monkeypatch.setenv("INTERCOM_ACCESS_TOKEN", "test-token")
    return "test-token"


@pytest.fixture
def duckdb_file(tmp_path: Path) -> Path:
    return tmp_path / "intercom.duckdb"


@pytest.fixture
def target_args(tmp_path: Path, duckdb_file: Path) -> list[str]:
    """--duckdb-path/--pipelines-dir under tmp_path so no test touches ~/.dlt or the repo."""
    return [
        "--duckdb-path",
        str(duckdb_file),
        "--pipelines-dir",
        str(tmp_path / "dlt_pipelines"),
        "--no-progress",
    ]
