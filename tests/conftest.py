"""Fixtures shared by every test directory.

Postgres gate: tests marked ``postgres`` need the server at 127.0.0.1:5432 (user ``postgres``,
database ``test``, trust auth; dlt insists on a password, so the DSN carries a dummy one; override
with ``INTERCOM_TEST_POSTGRES``). When ``INTERCOM_REQUIRE_POSTGRES=1`` or ``CI=true`` an unreachable server is a hard failure, so CI can
never go green by silently skipping; elsewhere those tests skip and say why.
"""

from __future__ import annotations

import functools
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# no network in tests: keep dlt from trying to send anonymous usage telemetry
os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")

POSTGRES_DSN = os.environ.get("INTERCOM_TEST_POSTGRES", "postgresql://postgres:postgres@127.0.0.1:5432/test")


def postgres_required() -> bool:
    """True when a missing Postgres must fail the run instead of skipping."""
    return os.environ.get("INTERCOM_REQUIRE_POSTGRES") == "1" or os.environ.get("CI", "").lower() == "true"


@functools.lru_cache(maxsize=1)
def postgres_unavailable_reason() -> str | None:
    """Connect once per worker; return why Postgres is unusable, or None when it works."""
    try:
        import psycopg2
    except ImportError as exc:  # pragma: no cover - psycopg2-binary is a dependency
        return f"psycopg2 is not installed ({exc})"
    try:
        conn = psycopg2.connect(POSTGRES_DSN, connect_timeout=3)
    except Exception as exc:  # any driver error means "not reachable / not usable"
        return f"Postgres at {POSTGRES_DSN} is unreachable: {str(exc).strip().splitlines()[0]}"
    conn.close()
    return None


def _require_postgres() -> None:
    reason = postgres_unavailable_reason()
    if reason is None:
        return
    if postgres_required():
        pytest.fail(f"{reason} (required: INTERCOM_REQUIRE_POSTGRES=1 or CI=true)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(autouse=True)
def _postgres_gate(request: pytest.FixtureRequest) -> None:
    """Skip or fail tests marked ``postgres`` according to the gate above."""
    if request.node.get_closest_marker("postgres") is not None:
        _require_postgres()


@pytest.fixture
def postgres_credentials() -> str:
    """A dlt-compatible Postgres connection string for the test server."""
    _require_postgres()
    return POSTGRES_DSN


def drop_schemas(dsn: str, *schemas: str) -> None:
    """Drop schemas (and everything in them) if they exist."""
    import psycopg2
    from psycopg2 import sql

    conn = psycopg2.connect(dsn, connect_timeout=5)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            for schema in schemas:
                cur.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
    finally:
        conn.close()


def write_job_file(path: Path, fmt: str, columns: dict[str, Any], chunks: list[list[dict[str, Any]]]) -> Path:
    """A load job file written by dlt's own writer for `fmt` (Postgres' escaping), chunk by chunk
    as dlt's buffered writer appends them: the files the loader and the resume code read."""
    from dlt.common.data_writers import DataWriter
    from dlt.destinations import postgres

    spec = DataWriter.writer_spec_from_file_format(fmt, "object")
    with open(path, "wb" if spec.is_binary_format else "w", **({} if spec.is_binary_format else {"encoding": "utf-8"})) as f:
        writer = DataWriter.from_file_format(fmt, "object", f, caps=postgres().capabilities())
        writer.write_header(columns)
        for chunk in chunks:
            writer.write_data(chunk)
        writer.write_footer()
        writer.close()
    return path


@pytest.fixture
def postgres_dataset(postgres_credentials: str) -> Iterator[str]:
    """A unique dataset (schema) name; it, dlt's ``<name>_staging`` and the views' ``<name>_fivetran`` are dropped after."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    yield name
    drop_schemas(postgres_credentials, f"{name}_fivetran", name, f"{name}_staging")
