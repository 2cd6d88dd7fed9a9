"""Fixtures for the CLI tests: an in-process emulator and argv pointing everything at tmp_path."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from intercom_elt.pipelines import cli
from intercom_emulator.testing import EmulatorServer

LIMITED_TOKEN = "limited-token"  # admins/tags only: no contacts, companies, conversations


@pytest.fixture(autouse=True)
def _cli_logging_undone() -> Iterator[None]:
    """`main()` run in-process leaves its stderr handler on the root logger, at DEBUG after
    `--debug`; a later test's own set-up logs (an emulator starting) then landed in its captured
    stderr, before its `main()` set the handler back, and failed its one-line error check."""
    root = logging.getLogger()
    level = root.level
    yield
    for handler in [h for h in root.handlers if isinstance(h, cli._StderrHandler)]:
        root.removeHandler(handler)
    root.setLevel(level)
    for name in ("intercom_elt.sources", "intercom_elt.pipelines"):
        logging.getLogger(name).setLevel(logging.NOTSET)


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
