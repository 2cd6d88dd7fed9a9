"""A default `intercom-sync run` on a workspace whose built-in data attributes carry no `id`.

This is the first sync of every real workspace (issue: the whole run failed with `NormalizeJobFailed
... Column 'id' is declared non-nullable`). It must exit 0 on DuckDB and Postgres with every record
landed, nothing kept aside, and the custom attributes still typed from GET /data_attributes.
"""

from __future__ import annotations

from typing import Any

import duckdb
import psycopg2
import pytest

from intercom_elt.pipelines.cli import main
from intercom_elt.sources.intercom import schema
from intercom_emulator.testing import EmulatorServer

TYPE_NAMES = {"text": {"VARCHAR", "text", "character varying"}, "bigint": {"BIGINT", "bigint"},
              "double": {"DOUBLE", "double precision"}, "bool": {"BOOLEAN", "boolean"},
              "timestamp": {"TIMESTAMP WITH TIME ZONE", "timestamp with time zone"}}


def _expectations(emu: EmulatorServer) -> tuple[list[tuple[str, str]], dict[str, str]]:
    """(model, full_name) of every data attribute, and the contacts' custom columns with their types."""
    attrs = emu.workspace.ground_truth("data_attributes")
    assert any(a.get("id") is None for a in attrs), "the emulator must serve built-ins without an id"
    keys = sorted((a["model"], a["full_name"]) for a in attrs)
    types = schema.custom_attribute_types([a for a in attrs if a["model"] == "contact"])
    columns = {types.columns[name]: schema.ATTRIBUTE_TYPES[dt] for name, dt in types.items()}
    assert columns, "the workspace must have custom contact attributes"
    return keys, columns


def _check(rows: list[tuple[Any, ...]], column_types: dict[str, str], keys: list[tuple[str, str]],
           expected_columns: dict[str, str], tables: set[str]) -> None:
    assert sorted(rows) == keys
    for column, dlt_type in expected_columns.items():
        if column in column_types:  # a column appears once a contact has a value for it
            assert column_types[column] in TYPE_NAMES[dlt_type], (column, column_types[column])
    assert set(expected_columns) & set(column_types), "no custom attribute column landed"
    assert "_intercom_rejects" not in tables


def test_builtin_attributes_without_id_land_on_duckdb(emulator, token_env, target_args, duckdb_file, capsys):
    keys, expected = _expectations(emulator)
    assert main(["run", "--base-url", emulator.base_url, *target_args]) == 0
    out = capsys.readouterr()
    assert "warning:" not in out.err and "error" not in out.err.lower(), out.err
    with duckdb.connect(str(duckdb_file), read_only=True) as con:
        rows = con.execute("select model, full_name from intercom_data.data_attributes").fetchall()
        types = dict(con.execute(
            "select column_name, data_type from information_schema.columns "
            "where table_schema = 'intercom_data' and table_name = 'contacts'").fetchall())
        tables = {r[0] for r in con.execute(
            "select table_name from information_schema.tables where table_schema = 'intercom_data'").fetchall()}
    _check(rows, types, keys, expected, tables)


@pytest.mark.postgres
def test_builtin_attributes_without_id_land_on_postgres(
    emulator, token_env, target_args, postgres_credentials, postgres_dataset, monkeypatch, capsys
):
    keys, expected = _expectations(emulator)
    monkeypatch.setenv("DESTINATION__POSTGRES__CREDENTIALS", postgres_credentials)
    code = main(["run", "--base-url", emulator.base_url, "--destination", "postgres", "--dataset", postgres_dataset,
                 *target_args])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "warning:" not in out.err, out.err
    with psycopg2.connect(postgres_credentials) as conn, conn.cursor() as cur:
        cur.execute(f'select model, full_name from "{postgres_dataset}".data_attributes')
        rows = cur.fetchall()
        cur.execute("select column_name, data_type from information_schema.columns "
                    "where table_schema = %s and table_name = 'contacts'", (postgres_dataset,))
        types = dict(cur.fetchall())
        cur.execute("select table_name from information_schema.tables where table_schema = %s", (postgres_dataset,))
        tables = {r[0] for r in cur.fetchall()}
    _check(rows, types, keys, expected, tables)
