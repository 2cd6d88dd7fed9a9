"""`intercom-sync` end to end: the real CLI against the in-process emulator, real DuckDB/Postgres."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dlt
import duckdb
import pendulum
import pytest

from intercom_elt.pipelines.cli import main
from intercom_elt.pipelines.config import Target
from intercom_emulator.testing import EmulatorServer, free_port
from tests.pipelines.conftest import LIMITED_TOKEN

ID_STREAMS = (
    "contacts",
    "companies",
    "conversations",
    "conversation_parts",
    "admins",
    "tags",
    "teams",
    "segments",
    "activity_logs",
)


def _ids(con: duckdb.DuckDBPyConnection, table: str, dataset: str = "intercom_data") -> list[str]:
    return [str(r[0]) for r in con.execute(f"select id from {dataset}.{table}").fetchall()]


def _truth_ids(emu: EmulatorServer, stream: str) -> set[str]:
    return {str(r["id"]) for r in emu.workspace.ground_truth(stream)}


def _summary_rows(out: str) -> dict[str, int]:
    """Parse the 'Rows loaded per table' block of the summary."""
    rows: dict[str, int] = {}
    block = out.split("Rows loaded per table:", 1)[1].split("Requests:", 1)[0]
    for line in block.strip().splitlines():
        name, count = line.split()
        rows[name] = int(count.replace(",", ""))
    total = rows.pop("total", None)
    assert total == sum(rows.values()), block
    return rows


def assert_one_line_error(err: str, *needles: str) -> str:
    """Expected failures print exactly one line, no traceback, naming what to fix."""
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: "), err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def _blank_a_name(emulator: EmulatorServer) -> str:
    """Give one contact an empty name: it must land as '' (not NULL) in every destination."""
    contact_id = emulator.workspace.ids("contacts")[0]
    emulator.workspace.update_contact(contact_id, name="")
    return contact_id


def test_run_into_duckdb_matches_ground_truth(emulator, token_env, target_args, duckdb_file, tmp_path, capsys):
    blank = _blank_a_name(emulator)
    rc = main(["run", "--base-url", emulator.base_url, *target_args])
    out = capsys.readouterr()
    assert rc == 0, out.err
    con = duckdb.connect(str(duckdb_file), read_only=True)
    try:
        for stream in ID_STREAMS:
            got = _ids(con, stream)
            assert len(got) == len(set(got)), f"duplicate ids in {stream}"
            assert set(got) == _truth_ids(emulator, stream), stream
        n_attrs = con.execute("select count(*) from intercom_data.data_attributes").fetchone()[0]
        assert n_attrs == len(emulator.workspace.ground_truth("data_attributes"))
        assert con.execute("select name from intercom_data.contacts where id = ?", [blank]).fetchone() == ("",)
    finally:
        con.close()
    rows = _summary_rows(out.out)
    for stream in ("contacts", "companies", "conversations", "conversation_parts", "admins"):
        assert rows[stream] == len(emulator.workspace.ground_truth(stream)), stream
    con = duckdb.connect(str(duckdb_file), read_only=True)
    try:  # a first load lands every row once, child tables included
        for table, count in rows.items():
            assert con.execute(f"select count(*) from intercom_data.{table}").fetchone()[0] == count, table
    finally:
        con.close()
    # the loaded files are gone (dlt would keep a copy of every load for ever), the package stays
    loaded = tmp_path / "dlt_pipelines" / "intercom" / "load" / "loaded"
    assert [p.name for p in loaded.iterdir()], "no loaded package"
    assert not list(loaded.glob("*/completed_jobs/*"))
    # the summary counts every request this run made: the emulator saw exactly as many
    total_requests = sum(emulator.request_log.values())
    assert f"Requests: {total_requests:,}   retries: 0" in out.out
    assert "GET /conversations/{id} " + str(len(_truth_ids(emulator, "conversations"))) in out.out
    assert "test-token" not in out.out + out.err

    # the README's table reference is generated from exactly such a file
    from intercom_elt.pipelines.table_reference import load_schema, render

    reference = render(load_schema(str(duckdb_file), "intercom_data"))
    assert "#### `contacts`\n\nKey: `id`. Write disposition: merge." in reference
    assert "#### `teams`\n\nKey: `id`. Write disposition: merge." in reference  # soft deletes (deletes.py)
    # a first sync appends into the empty tables (first_load.py); what the reference tells is how every run writes
    assert "#### `contacts__tags`\n\nKey: child of `contacts` (`_dlt_parent_id` -> `contacts._dlt_id`). Write disposition: merge." in reference
    assert "`updated_at` timestamp" in reference


def test_second_run_is_incremental_and_keeps_rows(emulator, token_env, target_args, duckdb_file, capsys):
    assert main(["run", "--base-url", emulator.base_url, *target_args]) == 0
    capsys.readouterr()
    emulator.reset_log()
    emulator.workspace.clock.advance(3600)  # an hour later, one contact changes
    contact_id = emulator.workspace.ids("contacts")[0]
    emulator.workspace.update_contact(contact_id, name="Renamed Person")
    assert main(["run", "--base-url", emulator.base_url, "--streams", "contacts", *target_args]) == 0
    out = capsys.readouterr().out
    assert _summary_rows(out)["contacts"] == 1
    con = duckdb.connect(str(duckdb_file), read_only=True)
    try:
        assert con.execute("select name from intercom_data.contacts where id = ?", [contact_id]).fetchone()[
            0
        ] == ("Renamed Person")
        assert sorted(_ids(con, "contacts")) == sorted(_truth_ids(emulator, "contacts"))
    finally:
        con.close()


@pytest.mark.postgres
def test_postgres_url_without_password_says_what_is_missing(
    emulator, token_env, target_args, postgres_credentials, postgres_dataset, monkeypatch, capsys
):
    """`postgresql://postgres@host/db`, the usual form under trust auth, is set: the error must not
    say that no credentials are set, but that dlt needs a password in the URL."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(postgres_credentials)
    no_password = urlunsplit(parts._replace(netloc=f"{parts.username}@{parts.hostname}:{parts.port or 5432}"))
    monkeypatch.setenv("DESTINATION__POSTGRES__CREDENTIALS", no_password)
    rc = main(["run", "--base-url", emulator.base_url, "--destination", "postgres", "--dataset", postgres_dataset,
               "--no-views", "--streams", "tags", *target_args])
    err = capsys.readouterr().err
    assert rc == 5, err
    line = assert_one_line_error(err, "no password", "postgresql://user:password@host:5432/db")
    assert "no Postgres credentials" not in line


@pytest.mark.postgres
def test_run_into_postgres_matches_ground_truth(
    emulator, token_env, target_args, postgres_credentials, postgres_dataset, monkeypatch, capsys
):
    import psycopg2

    monkeypatch.setenv("DESTINATION__POSTGRES__CREDENTIALS", postgres_credentials)
    blank = _blank_a_name(emulator)
    rc = main(
        [
            "run",
            "--base-url",
            emulator.base_url,
            "--destination",
            "postgres",
            "--dataset",
            postgres_dataset,
            *target_args,
        ]
    )
    out = capsys.readouterr()
    assert rc == 0, out.err
    assert f"Loaded into postgres dataset '{postgres_dataset}'" in out.out
    conn = psycopg2.connect(postgres_credentials)
    summary = _summary_rows(out.out)
    try:
        with conn.cursor() as cur:
            for stream in ID_STREAMS:
                cur.execute(f'select id from "{postgres_dataset}"."{stream}"')
                got = [str(r[0]) for r in cur.fetchall()]
                assert sorted(got) == sorted(_truth_ids(emulator, stream)), stream
            cur.execute(f'select name from "{postgres_dataset}".contacts where id = %s', (blank,))
            assert cur.fetchone() == ("",)  # csv COPY with FORCE_NULL would store NULL
            # a first load lands every row once: the summary must say how many
            for table, count in summary.items():
                cur.execute(f'select count(*) from "{postgres_dataset}"."{table}"')
                assert cur.fetchone()[0] == count, table
    finally:
        conn.close()
    assert summary["conversation_parts"] == len(_truth_ids(emulator, "conversation_parts"))
    assert any("__" in table for table in summary), summary  # child tables are counted too


def test_check_names_workspace_and_allowed_streams(emulator, token_env, capsys):
    rc = main(["check", "--base-url", emulator.base_url])
    out = capsys.readouterr()
    assert rc == 0, out.err
    app = emulator.workspace.app
    assert f"Workspace: {app['name']} (id_code {app['id_code']})" in out.out
    assert f"Time zone: {emulator.workspace.timezone}" in out.out
    assert "Intercom-Version: 2.15" in out.out
    assert (
        "Streams allowed (12): contacts, companies, conversations, conversation_parts, admins, tags, teams, "
        "segments, activity_logs, data_attributes, tickets, ticket_parts" in out.out
    )


def test_limited_token_check_and_run(emulator, target_args, duckdb_file, monkeypatch, capsys):
    monkeypatch.setenv("INTERCOM_ACCESS_TOKEN", LIMITED_TOKEN)
    assert main(["check", "--base-url", emulator.base_url]) == 0
    out = capsys.readouterr().out
    assert "Streams allowed (4): admins, tags, teams, activity_logs" in out
    assert "Stream not allowed: conversations (needs Read conversations)" in out

    rc = main(["run", "--base-url", emulator.base_url, *target_args])
    err = capsys.readouterr().err
    assert rc == 3
    assert_one_line_error(err, "'Read conversations'", "--streams admins,tags,teams,activity_logs")
    assert not duckdb_file.exists()  # failed before loading anything

    rc = main(["run", "--base-url", emulator.base_url, "--streams", "admins,tags", *target_args])
    assert rc == 0, capsys.readouterr().err
    con = duckdb.connect(str(duckdb_file), read_only=True)
    try:
        assert set(_ids(con, "tags")) == _truth_ids(emulator, "tags")
    finally:
        con.close()


def _state(pipelines_dir: Path, name: str = "intercom") -> dict:
    return dlt.attach(pipeline_name=name, pipelines_dir=str(pipelines_dir)).state.get("sources", {})


def test_backfill_leaves_scheduled_cursors_untouched(
    emulator, token_env, target_args, duckdb_file, tmp_path, capsys
):
    assert main(["run", "--base-url", emulator.base_url, *target_args]) == 0
    capsys.readouterr()
    before = _state(tmp_path / "dlt_pipelines")
    assert before, "the scheduled run saved no state"

    convs = emulator.workspace.ground_truth("conversations")
    start = pendulum.from_timestamp(min(c["updated_at"] for c in convs)).start_of("day")
    end = pendulum.from_timestamp(max(c["updated_at"] for c in convs)).add(days=1).start_of("day")
    args = ["backfill", "--start", start.to_date_string(), "--end", end.to_date_string()]
    rc = main(
        [
            *args,
            "--streams",
            "conversations,conversation_parts,contacts",
            "--base-url",
            emulator.base_url,
            *target_args,
        ]
    )
    out = capsys.readouterr()
    assert rc == 0, out.err
    assert _summary_rows(out.out)["conversations"] == len(convs)  # it really reloaded the range
    assert _state(tmp_path / "dlt_pipelines") == before
    con = duckdb.connect(str(duckdb_file), read_only=True)
    try:  # merged in, no duplicates
        assert sorted(_ids(con, "conversations")) == sorted(str(c["id"]) for c in convs)
        assert sorted(_ids(con, "conversation_parts")) == sorted(_truth_ids(emulator, "conversation_parts"))
    finally:
        con.close()


def test_demo_prints_tables_and_query(tmp_path, capsys):
    from intercom_emulator import Workspace

    path = tmp_path / "demo.duckdb"
    rc = main(
        ["demo", "--profile", "tiny", "--duckdb-path", str(path), "--pipelines-dir", str(tmp_path / "p")]
    )
    out = capsys.readouterr()
    assert rc == 0, out.err
    truth = Workspace(profile="tiny", seed=1)
    assert f"Tables in {path}" in out.out
    table_block = out.out.split(f"Tables in {path}", 1)[1]
    for stream in ("contacts", "conversations", "conversation_parts"):
        assert f"{stream} " in table_block
        assert any(
            line.split() == [stream, f"{len(truth.ground_truth(stream)):,}"]
            for line in table_block.splitlines()
        ), stream
    assert "Median first-response time per team (minutes):" in out.out
    report = tmp_path / "demo_report.html"  # the demo ends with the report of its run
    assert out.out.rstrip().endswith(str(report)) and report.stat().st_size > 1_000_000
    assert "_intercom_runs " not in table_block.split("\n\n", 1)[0]
    con = duckdb.connect(str(path), read_only=True)
    try:  # the printed result is the query's real result
        rows = con.execute(
            "select coalesce(t.name, '(no team)'), count(*) from intercom_data.conversations c "
            "left join intercom_data.teams t on cast(c.team_assignee_id as varchar) = cast(t.id as varchar) "
            "where c.statistics__time_to_admin_reply is not null group by 1"
        ).fetchall()
        runs = con.execute("select command, status, rows_total from intercom_data._intercom_runs").fetchall()
        landed = sum(  # a first load lands every row once: the run's row count is the file's
            con.execute(f'select count(*) from intercom_data."{t}"').fetchone()[0]
            for (t,) in con.execute(
                "select table_name from information_schema.tables where table_schema = 'intercom_data' "
                "and table_type = 'BASE TABLE' and table_name not like '\\_%' escape '\\'"
            ).fetchall()
        )
    finally:
        con.close()
    assert runs == [("demo", "succeeded", landed)]
    assert rows
    result_block = out.out.split("median_first_response_min", 1)[1]
    for team, count in rows:
        assert any(
            line.split()[:-1][-1:] == [str(count)] and team in line for line in result_block.splitlines()
        ), team


def test_console_script_runs_in_working_directory(emulator, tmp_path):
    """The installed `intercom-sync` binary; default DuckDB file lands in the working dir."""
    exe = Path(sys.executable).parent / "intercom-sync"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INTERCOM_", "SOURCES__"))}
    proc = subprocess.run(
        [str(exe), "run", "--base-url", emulator.base_url, "--streams", "teams,admins", "--pipelines-dir", "p"],
        cwd=tmp_path, env={**env, "INTERCOM_ACCESS_TOKEN": "test-token"}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    con = duckdb.connect(str(tmp_path / "intercom.duckdb"), read_only=True)
    try:
        assert set(_ids(con, "teams")) == _truth_ids(emulator, "teams")
    finally:
        con.close()
    missing = subprocess.run(
        [str(exe), "check"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert missing.returncode == 3
    assert_one_line_error(missing.stderr, "INTERCOM_ACCESS_TOKEN")


# ------------------------------------------------------------------ expected failures: one line each


def test_invalid_token(emulator, target_args, monkeypatch, capsys):
    monkeypatch.setenv("INTERCOM_ACCESS_TOKEN", "not-a-real-token-123")
    rc = main(["run", "--base-url", emulator.base_url, *target_args])
    err = capsys.readouterr().err
    assert rc == 3
    assert_one_line_error(err, "rejected the access token", "INTERCOM_ACCESS_TOKEN")
    assert "not-a-real-token-123" not in err


def test_token_never_printed_even_with_debug(emulator, target_args, monkeypatch, capsys):
    monkeypatch.setenv("INTERCOM_ACCESS_TOKEN", "secret-bad-token-xyz")
    rc = main(["--debug", "run", "--base-url", emulator.base_url, *target_args])
    out = capsys.readouterr()
    assert rc == 3
    assert "Traceback" in out.err  # --debug shows it
    assert "secret-bad-token-xyz" not in out.out + out.err


@pytest.mark.parametrize(
    ("argv", "code", "needles"),
    [
        (
            ["run", "--streams", "contacts,bogus"],
            2,
            ["unknown stream bogus", "--streams", "conversation_parts"],
        ),
        (
            ["backfill", "--start", "2023-07-01", "--end", "2023-01-01"],
            2,
            ["--end 2023-01-01", "--start 2023-07-01"],
        ),
        (["backfill", "--start", "2023-02-30"], 2, ["invalid --start '2023-02-30'"]),
        (["run", "--dataset", "my-data"], 2, ["invalid --dataset 'my-data'"]),
        (["run", "--pipeline-name", "a b"], 2, ["invalid --pipeline-name 'a b'"]),
        (["run", "--dataset", "intercom"], 2, ["same name as the DuckDB file"]),
        (["run", "--destination", "nosuchdest"], 2, ["unknown destination 'nosuchdest'"]),
    ],
)
def test_usage_errors(emulator, token_env, target_args, argv, code, needles, capsys):
    rc = main([*argv, "--base-url", emulator.base_url, *target_args])
    assert rc == code
    assert_one_line_error(capsys.readouterr().err, *needles)


def test_unreachable_base_url(token_env, target_args, capsys):
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    rc = main(["run", "--base-url", url, *target_args])
    assert rc == 4
    assert_one_line_error(capsys.readouterr().err, f"cannot reach {url}", "--base-url")


def test_wrong_region(token_env, target_args, capsys):
    """GET /me answering 404 is how Intercom says "this workspace lives in another region"."""
    with EmulatorServer(
        profile="tiny",
        seed=7,
        tokens=["test-token"],
        endpoint_faults={"GET /me": {"error_rate": 1.0, "error_statuses": [404]}},
    ) as emu:
        rc = main(["check", "--base-url", emu.base_url])
    assert rc == 4
    assert_one_line_error(capsys.readouterr().err, "another region", "--region eu")


def test_bad_postgres_credentials(emulator, token_env, target_args, monkeypatch, capsys):
    monkeypatch.setenv(
        "DESTINATION__POSTGRES__CREDENTIALS", f"postgresql://loader:pw@127.0.0.1:{free_port()}/analytics"
    )
    rc = main(
        [
            "run",
            "--base-url",
            emulator.base_url,
            "--destination",
            "postgres",
            "--streams",
            "teams",
            *target_args,
        ]
    )
    assert rc == 5
    assert_one_line_error(
        capsys.readouterr().err, "cannot connect to Postgres", "DESTINATION__POSTGRES__CREDENTIALS"
    )


def _bench_target(tmp_path: Path, name: str, tuned: bool = True) -> Target:
    """A DuckDB target in tmp_path; `tuned=False` is dlt's defaults (the benchmark baseline)."""
    return Target(duckdb_path=str(tmp_path / f"{name}.duckdb"), pipelines_dir=str(tmp_path / "p"),
                  pipeline_name=name, tuned=tuned)


def test_duckdb_connections_get_the_memory_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The product caps DuckDB (128MB, one thread, no insertion order); a user's own
    global_config replaces that; dlt's defaults (the benchmark baseline) leave DuckDB alone."""
    from intercom_elt.pipelines.destination import build_pipeline

    def settings(target: Target) -> tuple[str, int, bool]:
        with build_pipeline(target).sql_client() as client:
            row = client.execute_sql(
                "select current_setting('memory_limit'), current_setting('threads'), "
                "current_setting('preserve_insertion_order')"
            )[0]
        return str(row[0]), int(row[1]), bool(row[2])

    limit, threads, ordered = settings(_bench_target(tmp_path, "product"))
    assert limit.replace(" ", "") in ("122.0MiB", "128.0MB") and threads == 1 and ordered is False, (limit, threads, ordered)
    _, _, ordered = settings(_bench_target(tmp_path, "baseline", tuned=False))
    assert ordered is True
    monkeypatch.setenv("DESTINATION__DUCKDB__CREDENTIALS__GLOBAL_CONFIG", '{"memory_limit": "1GB"}')
    limit, _, ordered = settings(_bench_target(tmp_path, "user"))
    assert limit.replace(" ", "") in ("953.6MiB", "1.0GB", "1000.0MB") and ordered is True, (limit, ordered)


def test_sync_tunes_the_garbage_collector_unless_the_process_chose(tmp_path: Path) -> None:
    """The product raises CPython's GC thresholds (14.4 s of GC in a 153 s bench sync); dlt's
    defaults (the benchmark baseline) leave them alone, and so does a process that set its own."""
    import gc

    from intercom_elt.pipelines.destination import GC_THRESHOLDS, build_pipeline

    before = gc.get_threshold()
    try:
        gc.set_threshold(700, 10, 10)
        build_pipeline(_bench_target(tmp_path, "baseline", tuned=False))
        assert gc.get_threshold() == (700, 10, 10)
        build_pipeline(_bench_target(tmp_path, "product"))
        assert gc.get_threshold() == GC_THRESHOLDS
        gc.set_threshold(2000, 10, 10)
        build_pipeline(_bench_target(tmp_path, "own"))
        assert gc.get_threshold() == (2000, 10, 10)
    finally:
        gc.set_threshold(*before)


def test_sync_hands_the_gil_on_sooner_unless_the_process_chose(tmp_path: Path) -> None:
    """The product hands the GIL on every millisecond rather than every 5 (a sync's threads return
    from Arrow, sockets and DuckDB to a little Python each time); dlt's defaults leave Python's
    interval alone, and so does a process that set its own."""
    import sys

    from intercom_elt.pipelines.destination import SWITCH_INTERVAL_SECONDS, build_pipeline

    before = sys.getswitchinterval()
    try:
        sys.setswitchinterval(0.005)
        build_pipeline(_bench_target(tmp_path, "baseline", tuned=False))
        assert sys.getswitchinterval() == 0.005
        build_pipeline(_bench_target(tmp_path, "product"))
        assert sys.getswitchinterval() == SWITCH_INTERVAL_SECONDS == 0.001
        sys.setswitchinterval(0.002)
        build_pipeline(_bench_target(tmp_path, "own"))
        assert sys.getswitchinterval() == 0.002
    finally:
        sys.setswitchinterval(before)


def test_sync_gives_arrow_the_system_allocator_unless_the_process_chose(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The product has Arrow allocate with the system allocator (mimalloc's held pages raised the
    peak RSS of a 1,000,000-contact sync by ~25 MB); dlt's defaults leave Arrow's pool alone, and so
    does a process that chose one with ARROW_DEFAULT_MEMORY_POOL."""
    import pyarrow as pa

    from intercom_elt.pipelines.destination import ARROW_POOL_VARIABLE, build_pipeline

    before = pa.default_memory_pool()
    monkeypatch.delenv(ARROW_POOL_VARIABLE, raising=False)
    try:
        pa.set_memory_pool(pa.mimalloc_memory_pool())
        build_pipeline(_bench_target(tmp_path, "baseline", tuned=False))
        assert pa.default_memory_pool().backend_name == "mimalloc"
        build_pipeline(_bench_target(tmp_path, "product"))
        assert pa.default_memory_pool().backend_name == "system"
        pa.set_memory_pool(pa.mimalloc_memory_pool())
        monkeypatch.setenv(ARROW_POOL_VARIABLE, "mimalloc")
        build_pipeline(_bench_target(tmp_path, "own"))
        assert pa.default_memory_pool().backend_name == "mimalloc"
    finally:
        pa.set_memory_pool(before)


_FREED_HEAP_PROBE = """
import os, sys, tempfile
from intercom_elt.pipelines.config import Target
from intercom_elt.pipelines.destination import build_pipeline

def rss_mb():
    return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmRSS")) // 1024

work = tempfile.mkdtemp()
build_pipeline(Target(destination="duckdb", duckdb_path=os.path.join(work, "w.duckdb"), pipelines_dir=work,
                      tuned=sys.argv[1] == "product"))
big = bytearray(8 << 20)
del big  # glibc's dynamic threshold now sends blocks up to 8 MiB to the heap
base = rss_mb()
blocks = [bytearray(1 << 20) for _ in range(200)]
last = blocks[-1]  # the newest block pins the heap's top: freeing the others cannot shrink it
del blocks
print(rss_mb() - base)
"""


@pytest.mark.skipif(sys.platform != "linux", reason="glibc's malloc and /proc: Linux only")
def test_sync_returns_freed_megabyte_buffers_to_the_system() -> None:
    """The product fixes glibc malloc's mmap threshold (tune_malloc): a freed megabyte buffer goes
    back to the system, where glibc's dynamic threshold kept it in the heap (peak RSS of 400,000
    contacts 473 -> 387 MB); dlt's defaults leave malloc alone."""
    kept = {}
    for mode in ("product", "baseline"):
        done = subprocess.run([sys.executable, "-c", _FREED_HEAP_PROBE, mode], capture_output=True, text=True,
                              timeout=120, check=True, env={k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")})
        kept[mode] = int(done.stdout.strip().splitlines()[-1])
    assert kept["product"] < 20 and kept["baseline"] > 150, kept


def test_checkpoint_records_below_one_page_is_refused(emulator, token_env, target_args, monkeypatch, capsys):
    """`checkpoint_records` (split searches commit every so many records) is at least one search page."""
    monkeypatch.setenv("SOURCES__INTERCOM__CHECKPOINT_RECORDS", "10")
    rc = main(["run", "--base-url", emulator.base_url, *target_args])
    assert rc == 2
    assert_one_line_error(capsys.readouterr().err, "[sources.intercom] checkpoint_records", ">= 150")


def test_the_cli_loads_without_the_receivers_libraries() -> None:
    """Every scheduled `run` starts a process: the webhook receiver's aiohttp and the inbox's
    SQLAlchemy (~0.4 CPU s) are imported only by the commands that use them."""
    probe = "import sys, intercom_elt.pipelines.cli; print(sorted(m for m in ('aiohttp', 'sqlalchemy') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == "[]", done.stdout + done.stderr
