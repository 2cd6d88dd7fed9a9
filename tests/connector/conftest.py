"""Fixtures for connector tests: an in-process emulator and dlt pipelines on real DuckDB files."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dlt
import duckdb
import pytest

from intercom_elt.sources.intercom import IntercomClient, intercom_source, settings
from intercom_emulator.testing import EmulatorServer

# an early start date keeps activity-log windows few while covering all generated history
START = "2024-06-01"


@pytest.fixture
def emu() -> Iterator[EmulatorServer]:
    with EmulatorServer(profile="tiny", seed=1) as server:
        yield server


class Sync:
    """One dlt pipeline on a DuckDB file in tmp_path, run against the emulator."""

    def __init__(self, emu: EmulatorServer, tmp_path: Path, destination: Any = None, dataset: str = "intercom") -> None:
        self.emu = emu
        self.dataset = dataset
        self.db_path = tmp_path / "warehouse.duckdb"
        self.pipeline = dlt.pipeline(
            pipeline_name=f"intercom_{uuid.uuid4().hex[:8]}",
            destination=destination or dlt.destinations.duckdb(str(self.db_path)),
            dataset_name=dataset,
            pipelines_dir=str(tmp_path / "pipelines"),
        )
        self.client: IntercomClient | None = None

    def run(self, loader_file_format: Any = None, **kwargs: Any) -> IntercomClient:
        """Run the source with a fresh client; the emulator request log is reset first."""
        kwargs.setdefault("start_date", START)
        self.emu.reset_log()
        version = kwargs.get("intercom_version", settings.DEFAULT_VERSION)
        self.client = IntercomClient(
            self.emu.token, base_url=self.emu.base_url, backoff_base=0.01, intercom_version=version
        )
        source = intercom_source(
            access_token=self.emu.token, base_url=self.emu.base_url, client=self.client, **kwargs
        )
        self.pipeline.run(source, loader_file_format=loader_file_format)
        return self.client

    def rows_loaded(self) -> dict[str, int]:
        """Rows per table normalized by the last run (user tables only)."""
        info = self.pipeline.last_trace.last_normalize_info
        counts = info.row_counts if info else {}
        return {t: n for t, n in counts.items() if not t.startswith("_dlt")}

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        with duckdb.connect(str(self.db_path), read_only=True) as con:
            con.execute(f"SET search_path = '{self.dataset}'")
            return con.execute(sql).fetchall()


@pytest.fixture
def sync(emu: EmulatorServer, tmp_path: Path) -> Sync:
    return Sync(emu, tmp_path)
