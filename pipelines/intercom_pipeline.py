"""Wire settings, the Intercom source and a dlt destination together.

Everything the CLI, the demo and an orchestrator need: resolve the token and settings the same
way everywhere (flag > env > .dlt files > default), build the dlt pipeline, run it, and turn the
errors a user can fix into one clear line (`UserError`).
"""

from __future__ import annotations

import gc
import logging
import os
import re
import shutil
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dlt
import pendulum

from pipelines.packages import count_then_clean, run_load_ids
from pipelines.summary import RunSummary, stats_to_summary

logger = logging.getLogger(__name__)

DEFAULT_PIPELINE_NAME = "intercom"
DEFAULT_DATASET = "intercom_data"  # not "intercom": DuckDB rejects a schema named like its file
DEFAULT_DUCKDB_PATH = "intercom.duckdb"
DEFAULT_VERSION = "2.15"
REGIONS = ("us", "eu", "au")
TOKEN_ENV = "INTERCOM_ACCESS_TOKEN"
TOKEN_HELP = f"set {TOKEN_ENV} or [sources.intercom] access_token in .dlt/secrets.toml"

# exit codes (documented in the README)
EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_AUTH = 3
EXIT_NETWORK = 4
EXIT_DESTINATION = 5

PREFLIGHT_RETRIES = 3
_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


class UserError(Exception):
    """An expected failure the user can fix; its message is the single line the CLI prints."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass
class SourceSettings:
    """Everything `intercom_source` needs, resolved once so preflight and sync agree."""

    access_token: str = field(repr=False)
    region: str = "us"
    base_url: str | None = None
    intercom_version: str = DEFAULT_VERSION
    lookback_seconds: int = 900
    max_workers: int = 32  # upper bound; the source sizes its pool from quota x latency
    start_date: pendulum.DateTime | None = None
    end_date: pendulum.DateTime | None = None
    streams: list[str] | None = None
    history: bool = False  # scd2 versions of contacts, companies, conversations, tickets
    reconcile_deletes: bool = False  # mark vanished contacts/companies/conversations after the load
    skip_denied_streams: bool = False  # drop streams the token may not read (one warning each) instead of failing

    @property
    def api_url(self) -> str:
        """The base URL requests go to (explicit base URL wins over region)."""
        if self.base_url:
            return self.base_url.rstrip("/")
        return "https://api.intercom.io" if self.region == "us" else f"https://api.{self.region}.intercom.io"


@dataclass
class Target:
    """Where the data goes and under which dlt pipeline (state lives with the pipeline)."""

    destination: str = "duckdb"
    dataset_name: str = DEFAULT_DATASET
    pipeline_name: str = DEFAULT_PIPELINE_NAME
    duckdb_path: str = DEFAULT_DUCKDB_PATH
    pipelines_dir: str | None = None
    progress: str | None = None
    tuned: bool = True  # False: dlt's out-of-the-box settings (the benchmark's baseline)

    @property
    def location(self) -> str | None:
        return str(Path(self.duckdb_path).resolve()) if self.destination == "duckdb" else None


# --------------------------------------------------------------------------- settings


def _config(key: str) -> Any:
    """A value from dlt's config providers (env SOURCES__INTERCOM__X, .dlt/config.toml), or None."""
    return _dlt_setting(f"sources.intercom.{key}")


def _dlt_setting(key: str, expected_type: Any = None) -> Any:
    """Any dlt config value (env first, then .dlt/*.toml), or None; `expected_type` parses it
    (an environment variable is a string: "false" must not read as true)."""
    try:
        return dlt.config.get(key, expected_type) if expected_type is not None else dlt.config.get(key)
    except Exception:  # a malformed toml must not hide behind a lookup
        logger.debug("config lookup failed for %s", key, exc_info=True)
        return None


def history_configured() -> bool:
    """`[sources.intercom] history = true` (or SOURCES__INTERCOM__HISTORY): history mode on."""
    value = _config("history")
    return str(value).strip().lower() in ("1", "true", "yes", "on") if value is not None else False


def resolve_token(explicit: str | None = None) -> str:
    """The access token: argument, then INTERCOM_ACCESS_TOKEN, then dlt secrets."""
    token = explicit or os.environ.get(TOKEN_ENV)
    if not token:
        try:
            token = dlt.secrets.get("sources.intercom.access_token")
        except Exception:
            logger.debug("secret lookup failed", exc_info=True)
            token = None
    token = (str(token).strip() if token else "") or ""
    if not token or token == "your-private-app-access-token":
        raise UserError(f"no Intercom access token: {TOKEN_HELP}", EXIT_AUTH)
    return token


def parse_date(value: Any, option: str) -> pendulum.DateTime | None:
    """Accept YYYY-MM-DD, ISO 8601 or Unix seconds; always UTC-aware."""
    if value is None or value == "":
        return None
    try:
        if isinstance(value, (int, float)) or (isinstance(value, str) and value.strip().isdigit()):
            return pendulum.from_timestamp(int(value), tz="UTC")
        if hasattr(value, "isoformat"):
            value = value.isoformat()
        parsed = pendulum.parse(str(value).strip(), tz="UTC")
    except Exception:
        raise UserError(
            f"invalid {option} '{value}': use a date like 2023-01-01 or an ISO 8601 timestamp", EXIT_USAGE
        ) from None
    if not isinstance(parsed, pendulum.DateTime):
        raise UserError(f"invalid {option} '{value}': use a date like 2023-01-01", EXIT_USAGE)
    return parsed


def parse_streams(value: str | Sequence[str] | None) -> list[str] | None:
    """`a,b` or a list -> unique names in order; None means every stream."""
    if value is None:
        return None
    items = value.split(",") if isinstance(value, str) else list(value)
    names: list[str] = []
    for item in items:
        name = item.strip()
        if name and name not in names:
            names.append(name)
    if not names:
        raise UserError("--streams is empty: name at least one stream, e.g. --streams contacts", EXIT_USAGE)
    return names


def resolve_source_settings(
    *,
    access_token: str | None = None,
    region: str | None = None,
    base_url: str | None = None,
    streams: str | Sequence[str] | None = None,
    start_date: Any = None,
    end_date: Any = None,
    intercom_version: str | None = None,
) -> SourceSettings:
    """Merge CLI values with env/.dlt config and validate what can be validated offline."""
    region = (region or _config("region") or "us").strip().lower()
    if region not in REGIONS:
        raise UserError(f"unknown region '{region}': use one of {', '.join(REGIONS)} (--region)", EXIT_USAGE)
    base_url = base_url or _config("base_url") or None
    if base_url and not re.match(r"^https?://[^/\s]+", base_url):
        raise UserError(f"invalid base URL '{base_url}': expected http(s)://host[:port]", EXIT_USAGE)
    start = parse_date(start_date if start_date is not None else _config("start_date"), "--start")
    end = parse_date(end_date if end_date is not None else _config("end_date"), "--end")
    # the future check first: a backfill's --end defaults to now, which would blame --end
    if start is not None and start > pendulum.now("UTC"):
        raise UserError(
            f"--start {start.to_date_string()} is in the future: give a start date in the past", EXIT_USAGE
        )
    if start is not None and end is not None and end <= start:
        raise UserError(
            f"--end {end.to_date_string()} is not after --start {start.to_date_string()}: "
            "give an end date later than the start date",
            EXIT_USAGE,
        )
    selected = parse_streams(streams)
    if selected:
        known = known_streams()
        unknown = [s for s in selected if s not in known]
        if unknown and known:
            raise UserError(
                f"unknown stream{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}: "
                f"--streams takes a comma-separated list of {', '.join(known)}",
                EXIT_USAGE,
            )
    lookback = _config("lookback_seconds")
    workers = _config("max_workers")
    return SourceSettings(
        access_token=resolve_token(access_token),
        region=region,
        base_url=base_url,
        intercom_version=str(intercom_version or _config("intercom_version") or DEFAULT_VERSION),
        lookback_seconds=int(lookback) if lookback is not None else 900,
        max_workers=int(workers) if workers is not None else 32,
        start_date=start,
        end_date=end,
        streams=selected,
    )


def validate_name(value: str, option: str) -> str:
    """Dataset and pipeline names become schema/directory names: keep them portable."""
    if not _NAME_RE.match(value or ""):
        raise UserError(
            f"invalid {option} '{value}': use 1-63 letters, digits or underscores, not starting with a digit",
            EXIT_USAGE,
        )
    return value


# --------------------------------------------------------------------------- source glue


def known_streams() -> list[str]:
    """Stream names the source offers (empty if the source cannot tell)."""
    try:
        from sources.intercom import settings as source_settings
    except ImportError:
        return []
    for name in ("STREAMS", "STREAM_NAMES", "ALL_STREAMS"):
        streams = getattr(source_settings, name, None)
        if streams:
            return list(streams)
    return []


def make_client(settings: SourceSettings, max_retries: int | None = PREFLIGHT_RETRIES) -> Any:
    """An IntercomClient for preflight and `check` (the source builds its own for the sync).

    Preflight uses a small retry budget: a wrong host should fail in seconds, not minutes.
    """
    from sources.intercom.client import IntercomClient

    kwargs: dict[str, Any] = {}
    if max_retries is not None:
        kwargs["max_retries"] = max_retries
    return IntercomClient(
        settings.access_token,
        region=settings.region,
        base_url=settings.base_url,
        intercom_version=settings.intercom_version,
        max_workers=settings.max_workers,
        **kwargs,
    )


def build_source(settings: SourceSettings, client: Any = None) -> Any:
    """The dlt source with every setting passed explicitly (no second config lookup).

    Passing our own `client` lets the summary read exactly this run's request counters.
    """
    from sources.intercom import intercom_source

    return intercom_source(
        access_token=settings.access_token,
        region=settings.region,
        base_url=settings.base_url,
        intercom_version=settings.intercom_version,
        start_date=settings.start_date,
        end_date=settings.end_date,
        lookback_seconds=settings.lookback_seconds,
        streams=settings.streams,
        max_workers=settings.max_workers,
        client=client,
        history=settings.history,
    )


def _close(client: Any) -> None:
    close = getattr(client, "close", None)
    if callable(close):
        close()


@dataclass
class CheckReport:
    """What `intercom-sync check` shows."""

    me: dict[str, Any]
    allowed: dict[str, bool]
    missing: dict[str, str]
    settings: SourceSettings
    stats: dict[str, Any] | None = None

    @property
    def app(self) -> dict[str, Any]:
        return self.me.get("app") or {}


def stream_permission(stream: str) -> str | None:
    """The Intercom permission name a stream needs (from the source's endpoint table)."""
    from sources.intercom import settings as source_settings

    probe = source_settings.STREAM_PROBES.get(stream)
    endpoint = source_settings.ENDPOINTS.get(probe) if probe else None
    return endpoint.permission if endpoint else None


def _scope_result(raw: dict[str, str | None]) -> tuple[dict[str, bool], dict[str, str]]:
    """check_scopes() output ({stream: None | error}) -> (allowed per stream, permission missing)."""
    allowed = {stream: error is None for stream, error in raw.items()}
    missing = {
        stream: stream_permission(stream) or str(error) for stream, error in raw.items() if error is not None
    }
    return allowed, missing


def check_workspace(settings: SourceSettings, streams: list[str] | None = None) -> CheckReport:
    """Call /me and probe permissions (of `streams`, default all); raise UserError with the fix."""
    with translate_errors(settings):
        client = make_client(settings)
        try:
            me = client.me()
            allowed, missing = _scope_result(client.check_scopes(streams))
            stats = client.stats.as_dict()
        finally:
            _close(client)
    return CheckReport(me=me, allowed=allowed, missing=missing, settings=settings, stats=stats)


def require_permissions(report: CheckReport, streams: list[str] | None) -> None:
    """Fail fast, before any load, when the token cannot read a requested stream."""
    wanted = streams or list(report.allowed)
    denied = [s for s in wanted if report.allowed.get(s) is False]
    if not denied:
        return
    perms = sorted({f"'{report.missing.get(s) or 'read ' + s}'" for s in denied})
    ok = [s for s in (streams or report.allowed) if report.allowed.get(s)]
    hint = f"--streams {','.join(ok)}" if ok else "--streams"
    raise UserError(
        f"the access token lacks the permission{'s' if len(perms) > 1 else ''} {', '.join(perms)} "
        f"needed by {', '.join(denied)}: grant it to the app in Intercom's Developer Hub, "
        f"or sync only what is allowed with {hint}",
        EXIT_AUTH,
    )


def skip_denied_streams(report: CheckReport, streams: list[str] | None) -> list[str] | None:
    """`--skip-denied-streams`: the selected streams the token may read, one warning per other.

    When every selected stream is denied nothing is left to sync: the selection is returned
    unchanged so `require_permissions` fails with its usual message.
    """
    wanted = list(streams or report.allowed)
    denied = [s for s in wanted if report.allowed.get(s) is False]
    kept = [s for s in wanted if s not in denied]
    if not denied or not kept:
        return streams
    for stream in denied:
        perm = report.missing.get(stream) or f"read {stream}"
        logger.warning(
            "skipping %s: the token lacks '%s'; grant it in the Developer Hub or drop the stream with --streams",
            stream,
            perm,
        )
    return kept


# --------------------------------------------------------------------------- pipeline


# DuckDB lets a query grow to 80% of the machine's RAM; a scheduled batch job should stay small
# and predictable, so dlt's DuckDB connections get a memory cap and spill larger merges to disk
# (<file>.tmp). The cap alone is not enough: each DuckDB thread pins its own buffers and insertion
# order keeps more in memory, and with 128MB and two threads the merge of 200,000 contacts failed
# with "Out of Memory Error: failed to pin block". Measured on that merge (900,000 rows): DuckDB's
# defaults 487 MB RSS; 256MB without insertion order 388 MB; these settings 268 MB, same 14 s.
DUCKDB_SETTINGS: dict[str, Any] = {"memory_limit": "128MB", "threads": 1, "preserve_insertion_order": False}

# dlt settings of the product (env vars and .dlt/config.toml still win):
# * the extract and normalize files are temporary and read back once: gzip only costs CPU;
# * normalize buffers 1,000 rows per table before writing instead of 5,000: contacts are wide
#   (100+ columns), and the buffers of every child table add up. Measured only together with
#   DuckDB's single thread (100,000 contacts: 399 -> 371 MB peak); alone it did not change the
#   normalize time of 6,000 contacts (377 vs 382 ms per 1,000).
DLT_SETTINGS: dict[str, Any] = {
    "data_writer.disable_compression": True,
    "normalize.data_writer.buffer_max_items": 1000,
}


def make_destination(target: Target) -> Any:
    """duckdb gets its file path (and a memory cap); any other dlt destination passes through by name."""
    if target.destination == "duckdb":
        path = Path(target.duckdb_path).resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        credentials: dict[str, Any] = {"database": str(path)}
        if target.tuned and _dlt_setting("destination.duckdb.credentials.global_config") is None:
            credentials["global_config"] = dict(DUCKDB_SETTINGS)
        return dlt.destinations.duckdb(credentials=credentials)
    return target.destination


# Python's cyclic garbage collector, for a sync: a scan every 50,000 allocations instead of 700.
# A sync allocates millions of short-lived dicts (every parsed page, every row) and frees them by
# reference counting; the default thresholds made CPython walk the whole heap, dlt's and the
# source's long-lived objects included, 37 times in a full sync of the bench workspace (14.4 s of
# 153 s, gen2 8.7 s). With a young threshold of 50,000: 1.5 s, the same peak RSS (444 vs 459 MB).
GC_THRESHOLDS = (50_000, 50, 100)
_PYTHON_DEFAULT_GC = (700, 10, 10)


def tune_gc() -> None:
    """Apply `GC_THRESHOLDS` unless the process already chose its own (e.g. an orchestrator)."""
    if gc.get_threshold() == _PYTHON_DEFAULT_GC:
        gc.set_threshold(*GC_THRESHOLDS)


def apply_dlt_settings() -> None:
    """Set `DLT_SETTINGS` where the user configured nothing (in memory, never written)."""
    for key, value in DLT_SETTINGS.items():
        if _dlt_setting(key) is None:
            dlt.config[key] = value


def build_pipeline(target: Target) -> dlt.Pipeline:
    """The dlt pipeline; its name keys the incremental state, so keep it stable per workspace."""
    validate_name(target.pipeline_name, "--pipeline-name")
    validate_name(target.dataset_name, "--dataset")
    if (
        target.destination == "duckdb"
        and Path(target.duckdb_path).stem.lower() == target.dataset_name.lower()
    ):
        raise UserError(
            f"--dataset '{target.dataset_name}' has the same name as the DuckDB file {target.duckdb_path}, "
            "which DuckDB cannot tell apart: choose another --dataset or --duckdb-path",
            EXIT_USAGE,
        )
    kwargs: dict[str, Any] = {
        "pipeline_name": target.pipeline_name,
        "destination": make_destination(target),
        "dataset_name": target.dataset_name,
    }
    if target.pipelines_dir:
        kwargs["pipelines_dir"] = target.pipelines_dir
    if target.progress:
        kwargs["progress"] = target.progress
    if target.tuned:
        apply_dlt_settings()
        tune_gc()
    try:
        return dlt.pipeline(**kwargs)
    except Exception as exc:
        if "destination" in str(exc).lower() or type(exc).__name__.startswith("UnknownDestination"):
            raise UserError(
                f"unknown destination '{target.destination}': use duckdb, postgres or another dlt destination name",
                EXIT_USAGE,
            ) from exc
        raise


def saved_target(target: Target) -> dict[str, Any] | None:
    """The pipeline's saved state (local `state.json`), read before dlt opens the pipeline."""
    import json

    from dlt.common.pipeline import get_dlt_pipelines_dir

    path = Path(target.pipelines_dir or get_dlt_pipelines_dir()) / target.pipeline_name / "state.json"
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        return None


def guard_destination(target: Target, saved: dict[str, Any] | None) -> None:
    """Refuse to point a pipeline with saved cursors at another destination type or dataset.

    Why: the cursors belong to the data already loaded elsewhere; reused against a new destination
    they would load only the recent changes there (silent data loss). `--full-refresh` or a new
    `--pipeline-name` starts the new destination from scratch instead.
    """
    if not saved or not saved.get("sources"):
        return  # nothing saved yet: any destination is a first load
    old_type = str(saved.get("destination_type") or "")
    old_dataset = str(saved.get("dataset_name") or "")
    try:
        from dlt.common.destination import Destination

        new_type = str(Destination.from_reference(make_destination(target)).destination_type)
    except Exception:  # an unknown destination: build_pipeline says so
        logger.debug("cannot resolve destination %s", target.destination, exc_info=True)
        return
    if (not old_type or old_type == new_type) and (not old_dataset or old_dataset == target.dataset_name):
        return

    def short(kind: str) -> str:
        return kind.rsplit(".", 1)[-1]

    raise UserError(
        f"pipeline '{target.pipeline_name}' keeps the cursors of {short(old_type) or '?'} dataset '{old_dataset}'; "
        f"using them for {short(new_type)} dataset '{target.dataset_name}' would load only recent changes there: "
        "pass a different --pipeline-name for the new destination, or --full-refresh to reload everything into it",
        EXIT_USAGE,
    )


# Loader file formats per destination. DuckDB reads parquet natively (dlt's default, SQL INSERT
# statements, took 7.5 s instead of 0.8 s to load 42,354 rows). Postgres keeps dlt's INSERTs: its
# csv COPY marks every nullable column FORCE_NULL, so an empty string landed as NULL, which
# DuckDB and dlt's default keep as ''. Measured with no latency and no quota, 153,534 rows:
# normalize + load 9.3-9.4 s with INSERTs against 6.9-7.1 s with csv.
LOADER_FILE_FORMATS: dict[str, str] = {"duckdb": "parquet", "postgres": "insert_values"}


def pipeline_run_kwargs(target: Target) -> dict[str, Any]:
    """Extra `pipeline.run` arguments for fast loads (same tables and column types either way)."""
    fmt = LOADER_FILE_FORMATS.get(target.destination)
    return {"loader_file_format": fmt} if fmt else {}


def run_sync(
    settings: SourceSettings,
    target: Target,
    *,
    full_refresh: bool = False,
    preflight: bool = True,
    views: bool = True,
) -> RunSummary:
    """Check the token, run the source into the destination and return the summary.

    With `views` (the default) the analyst views are re-created after the load (pipelines/views.py);
    the outcome line is in `summary.views`.
    """
    started = time.monotonic()
    report = check_workspace(settings, settings.streams) if preflight else None
    if report is not None:
        if settings.skip_denied_streams:
            settings.streams = skip_denied_streams(report, settings.streams)
        require_permissions(report, settings.streams)
    if not full_refresh:  # before dlt opens the pipeline (it would warn about the mismatch)
        guard_destination(target, saved_target(target))
    pipeline = build_pipeline(target)
    with pipeline_lock(pipeline):
        return _locked_run(settings, target, pipeline, report, started, full_refresh=full_refresh, views=views)


def _locked_run(
    settings: SourceSettings,
    target: Target,
    pipeline: dlt.Pipeline,
    report: CheckReport | None,
    started: float,
    *,
    full_refresh: bool,
    views: bool,
) -> RunSummary:
    """The body of `run_sync`, run while this process holds the pipeline's lock."""
    if full_refresh:  # Postgres refuses to drop tables our views read
        _drop_views_quietly(pipeline)
    with translate_errors(settings, target):
        client = make_client(settings, max_retries=None)
        try:
            resumed = finish_pending_packages(pipeline)
            pipeline.run(
                build_source(settings, client),
                refresh="drop_sources" if full_refresh else None,
                **pipeline_run_kwargs(target),
            )
            reconciled = reconcile(pipeline, client, settings) if settings.reconcile_deletes else None
        finally:
            _close(client)
    rows = count_then_clean(
        pipeline, [*resumed, *run_load_ids(pipeline)], _dlt_setting("load.delete_completed_jobs", bool)
    )
    summary = RunSummary(
        pipeline_name=target.pipeline_name,
        destination=target.destination,
        dataset_name=target.dataset_name,
        rows=rows,
        location=target.location,
    )
    if report is not None:
        stats_to_summary(summary, report.stats)
    stats_to_summary(summary, client.stats.as_dict())
    summary.reconciled = reconciled  # type: ignore[attr-defined]
    summary.views = refresh_views(pipeline) if views else None  # type: ignore[attr-defined]
    summary.duration_seconds = time.monotonic() - started
    return summary


def finish_pending_packages(pipeline: dlt.Pipeline) -> list[str]:
    """Load what an interrupted run left behind before extracting anything new; its load ids.

    Why: dlt's `run()` that finds pending packages only loads them and returns, silently skipping
    the new extraction, so the first run after a crash reported success without syncing the
    changes since. Its cursors were committed with those packages, so they must land first.
    Jobs a kill left unconfirmed are undone first, so their re-run loads no row twice (resume.py).
    """
    from pipelines.resume import undo_unconfirmed_jobs

    drop_stale_extracted_packages(Path(pipeline.working_dir))
    if pipeline.list_extracted_load_packages():
        logger.warning("finishing the data an interrupted run extracted but did not load")
        pipeline.normalize()
    if not pipeline.list_normalized_load_packages():
        return []
    logger.warning("loading the packages an interrupted run left behind")
    undo_unconfirmed_jobs(pipeline)
    return list(pipeline.load().loads_ids)


def drop_stale_extracted_packages(working_dir: Path) -> list[str]:
    """Remove extracted packages that normalize had already handed over to the load step.

    Why: a kill after normalize moved a package to `load/normalized` but before it deleted the
    extracted original leaves both; normalizing the original again then fails on every later run
    (the target folder exists). The normalized copy is complete, so the original is redundant.
    """
    extracted = working_dir / "normalize" / "extracted"
    done = [working_dir / "load" / "normalized", working_dir / "load" / "loaded"]
    dropped = []
    for package in sorted(p for p in extracted.glob("*") if p.is_dir()):
        if any((folder / package.name).is_dir() for folder in done):
            shutil.rmtree(package)
            shutil.rmtree(working_dir / "load" / "new" / package.name, ignore_errors=True)
            dropped.append(package.name)
    if dropped:
        logger.warning("dropped extracted packages an interrupted run had already normalized: %s", dropped)
    return dropped


class pipeline_lock:  # noqa: N801 - a context manager that reads like a statement
    """An exclusive `fcntl.flock` on `<pipelines_dir>/.<pipeline_name>.lock` for one whole run.

    Why: two syncs of one pipeline share dlt's working directory and cursors; interleaved they
    corrupt packages and state. The OS drops the lock when the holder dies (even by SIGKILL), so a
    crashed run never blocks the next one.
    """

    def __init__(self, pipeline: dlt.Pipeline) -> None:
        self.name = pipeline.pipeline_name
        self.path = Path(pipeline.pipelines_dir) / f".{self.name}.lock"
        self._fh: Any = None

    def __enter__(self) -> pipeline_lock:
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(self.path, "a+")  # noqa: SIM115 - held open for the duration of the run
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.seek(0)
            holder = fh.read().strip() or "?"
            fh.close()
            raise UserError(
                f"another sync of pipeline '{self.name}' is already running (pid {holder}, lock {self.path}): "
                "wait for it to finish; two runs of one pipeline at once would corrupt its state",
                EXIT_FAILURE,
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        self._fh = fh
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fh is not None:
            self._fh.close()  # closing releases the flock
            self._fh = None


def refresh_views(pipeline: dlt.Pipeline, fivetran_schema: str | None = None) -> str:
    """Re-create the analyst views; a failure is reported, never fails the finished load."""
    from pipelines import views

    try:
        return views.create_views_for_pipeline(pipeline, fivetran_schema=fivetran_schema).describe()
    except Exception as exc:
        logger.debug("analyst views failed", exc_info=True)
        logger.warning("analyst views were not refreshed: %s", describe_failure(exc))
        return f"Views: not refreshed ({describe_failure(exc)}); retry with: intercom-sync views"


def _drop_views_quietly(pipeline: dlt.Pipeline) -> None:
    from pipelines import views

    try:
        views.drop_views_for_pipeline(pipeline)
    except Exception:  # nothing to drop yet (first run, no dataset): the load decides
        logger.debug("dropping analyst views before a full refresh failed", exc_info=True)


def reconcile(pipeline: dlt.Pipeline, client: Any, settings: SourceSettings) -> str:
    """`run --reconcile-deletes`: mark vanished contacts/companies/conversations (deletes.py)."""
    from sources.intercom.deletes import reconcile_deletes

    results = reconcile_deletes(pipeline, client, streams=settings.streams, max_workers=settings.max_workers)
    parts = []
    for r in results:
        if r.skipped:
            parts.append(f"{r.model} skipped ({r.skipped})")
        else:
            marks = ", ".join(f"{n} {reason}" for reason, n in sorted(r.marked.items())) or "none vanished"
            parts.append(f"{r.model} {r.listed:,} listed, {marks}")
    return "Deletes reconciled: " + "; ".join(parts)


def incremental_state(pipeline: dlt.Pipeline) -> dict[str, Any]:
    """The source's saved state (cursors); a backfill must leave it untouched."""
    state = pipeline.state
    return dict(state.get("sources", {}))


# --------------------------------------------------------------------------- errors


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        cur = todo.pop(0)
        if cur is None or id(cur) in seen:
            continue
        seen.add(id(cur))
        yield cur
        for nxt in (getattr(cur, "exception", None), cur.__cause__, cur.__context__):
            if isinstance(nxt, BaseException):
                todo.append(nxt)


def describe_failure(exc: BaseException) -> str:
    """One line for an unexpected failure: the failing dlt step and the innermost cause."""
    step = getattr(exc, "step", None)
    inner = getattr(exc, "exception", None) if step else None
    if isinstance(inner, BaseException):
        return f"the {step} step failed: {type(inner).__name__}: {_first_line(inner)}"
    return f"{type(exc).__name__}: {_first_line(exc)}"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0].strip() if text else type(exc).__name__


def explain(
    exc: BaseException, settings: SourceSettings | None = None, target: Target | None = None
) -> UserError | None:
    """Map a known failure anywhere in the exception chain to a one-line UserError."""
    from sources.intercom import errors

    api = settings.api_url if settings else "the Intercom API"
    for cur in _chain(exc):
        if isinstance(cur, UserError):
            return cur
        name = type(cur).__name__
        module = type(cur).__module__ or ""
        if isinstance(cur, errors.IntercomAuthError):
            return UserError(
                f"Intercom rejected the access token (401 unauthorized): {TOKEN_HELP}", EXIT_AUTH
            )
        if isinstance(cur, errors.IntercomPermissionError):
            perm = getattr(cur, "permission", None)
            what = f"the permission '{perm}'" if perm else f"a permission ({_first_line(cur)})"
            endpoint = getattr(cur, "endpoint", None)
            return UserError(
                f"the access token lacks {what}"
                + (f" for {endpoint}" if endpoint else "")
                + ": grant it to the app in Intercom's Developer Hub, or leave the affected streams out with --streams",
                EXIT_AUTH,
            )
        if isinstance(cur, errors.IntercomRegionError):
            others = [r for r in REGIONS if settings is None or r != settings.region]
            return UserError(
                f"{api} does not know this workspace (GET /me answered 404): it is probably in another region, "
                f"try {' or '.join('--region ' + r for r in others)}",
                EXIT_NETWORK,
            )
        if isinstance(cur, errors.IntercomConfigError):
            return UserError(_first_line(cur), EXIT_USAGE)
        if isinstance(cur, errors.IntercomMalformedResponseError):
            return UserError(
                f"{api} answered something that is not Intercom's JSON (an HTML page from a proxy, "
                "captive portal or a wrong --base-url?): check --base-url/--region and any proxy",
                EXIT_NETWORK,
            )
        if (
            isinstance(cur, errors.IntercomTransientError)
            and getattr(cur, "status", None) is not None
            and getattr(cur, "code", None) is None
            and getattr(cur, "request_id", None) is None
        ):
            return UserError(
                f"{api} kept answering HTTP {cur.status} without an Intercom JSON error body (a proxy or "
                "gateway HTML page?): check --base-url/--region and any proxy, or retry later",
                EXIT_NETWORK,
            )
        if isinstance(cur, errors.IntercomTransientError) and getattr(cur, "status", None) is None:
            return UserError(
                f"cannot reach {api}: {_first_line(cur)}; check --base-url/--region and the network",
                EXIT_NETWORK,
            )
        if module.startswith("httpx") and name in (
            "ConnectError",
            "ConnectTimeout",
            "ReadTimeout",
            "RemoteProtocolError",
        ):
            return UserError(
                f"cannot reach {api}: {_first_line(cur)}; check --base-url/--region and the network",
                EXIT_NETWORK,
            )
        if name == "ConfigFieldMissingException":
            spec = getattr(cur, "spec_name", "")
            if "Postgres" in spec:
                return UserError(
                    "no Postgres credentials: set DESTINATION__POSTGRES__CREDENTIALS=postgresql://user:password@host:5432/db "
                    "or [destination.postgres] credentials in .dlt/secrets.toml",
                    EXIT_DESTINATION,
                )
            if "intercom" in spec.lower() or "access_token" in getattr(cur, "fields", []):
                return UserError(f"no Intercom access token: {TOKEN_HELP}", EXIT_AUTH)
            dest = target.destination if target else "destination"
            return UserError(
                f"{dest} is not configured: missing {', '.join(getattr(cur, 'fields', []) or [spec])} "
                f"(set them in .dlt/secrets.toml under [destination.{dest}] or as DESTINATION__{dest.upper()}__* env vars)",
                EXIT_DESTINATION,
            )
        if module.startswith("psycopg2") and name == "OperationalError":
            return UserError(
                f"cannot connect to Postgres: {_first_line(cur)}; check DESTINATION__POSTGRES__CREDENTIALS "
                "or [destination.postgres] credentials",
                EXIT_DESTINATION,
            )
        if name == "OutOfMemoryException" or (module.startswith("dlt.destinations") and "Out of Memory Error" in str(cur)):
            return UserError(
                f"DuckDB ran out of memory in the load step (the default memory_limit is {DUCKDB_SETTINGS['memory_limit']}): "
                "raise it, e.g. DESTINATION__DUCKDB__CREDENTIALS__GLOBAL_CONFIG='{\"memory_limit\": \"1GB\"}', "
                "and run again; the extracted data is kept and loads first",
                EXIT_DESTINATION,
            )
        if name in ("UnknownDestinationModule", "InvalidDestinationReference", "UnknownDestination"):
            return UserError(
                f"unknown destination '{target.destination if target else '?'}': use duckdb, postgres or another dlt destination name",
                EXIT_USAGE,
            )
    return None


class translate_errors:  # noqa: N801 - used as a context manager, reads like a statement
    """Re-raise known failures as UserError (keeping the original as __cause__ for --debug)."""

    def __init__(self, settings: SourceSettings | None = None, target: Target | None = None) -> None:
        self.settings = settings
        self.target = target

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> bool:
        if exc is None or isinstance(exc, UserError) or not isinstance(exc, Exception):
            return False
        mapped = explain(exc, self.settings, self.target)
        if mapped is None:
            return False
        raise mapped from exc
