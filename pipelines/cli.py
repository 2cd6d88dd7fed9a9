"""`intercom-sync`: run | backfill | check | demo | views | report | webhooks | workspaces | connect.

Expected failures print ONE line on stderr naming what to fix and return a non-zero exit code
(see README "Exit codes"); `--debug` adds the traceback. The token is never printed or logged.
"""

from __future__ import annotations

import argparse
import logging
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

import pendulum

from intercom_elt.pipelines import (
    config,
    connect,
    destination,
    errors,
    failures,
    fleet,
    preflight,
    registry,
    run_history,
)
from intercom_elt.pipelines import intercom_pipeline as ip
from intercom_elt.pipelines.summary import format_summary
from intercom_elt.pipelines.webhooks import commands as webhooks_cli

logger = logging.getLogger("intercom_elt.pipelines")

EPILOG = (
    "Token: INTERCOM_ACCESS_TOKEN or [sources.intercom] access_token in .dlt/secrets.toml. "
    "Postgres: DESTINATION__POSTGRES__CREDENTIALS or [destination.postgres] credentials."
)


class _Redact(logging.Filter):
    """Replace secrets in every log record that reaches our handlers."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if s]

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            message = record.getMessage()
            for secret in self.secrets:
                message = message.replace(secret, "***")
            record.msg, record.args = message, None
        return True


_redactor = _Redact([])


def _redact_also(secrets: list[str]) -> None:
    _redactor.secrets = [*_redactor.secrets, *(s for s in secrets if s)]


def _redact(text: str) -> str:
    for secret in _redactor.secrets:
        text = text.replace(secret, "***")
    return text


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is at emit time (so captured/redirected stderr works)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self) -> object:
        return sys.stderr

    @stream.setter
    def stream(self, _value: object) -> None:
        pass


class _QuietDlt(logging.Filter):
    """Drop dlt's per-load "columns did not receive any data" notices: normal for sparse Intercom
    fields (they appear once data does) and noise in a scheduler's mail. Shown with --debug."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "did not receive any data" not in record.getMessage()


_quiet_dlt = _QuietDlt()


def _setup_logging(debug: bool) -> None:
    """WARNING and up by default (quiet cron mails); everything with --debug. Always redacted."""
    root = logging.getLogger()
    handler = next((h for h in root.handlers if isinstance(h, _StderrHandler)), None)
    if handler is None:
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handler.addFilter(_redactor)
        root.addHandler(handler)
    handler.setLevel(logging.DEBUG if debug else logging.WARNING)
    dlt_logger = logging.getLogger("dlt")
    if debug:
        dlt_logger.removeFilter(_quiet_dlt)
    else:
        dlt_logger.addFilter(_quiet_dlt)
    if debug:
        root.setLevel(logging.DEBUG)
        logging.getLogger("intercom_elt.sources").setLevel(logging.DEBUG)
        logging.getLogger("intercom_elt.pipelines").setLevel(logging.DEBUG)


def _add_source_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help="verbose logs and tracebacks"
    )
    where = p.add_mutually_exclusive_group()
    where.add_argument("--region", choices=config.REGIONS, help="Intercom data region (default: us, or config)")
    where.add_argument(
        "--base-url", metavar="URL", help="API base URL (an emulator or proxy); overrides region"
    )
    p.add_argument("--intercom-version", metavar="V", help="Intercom-Version header (default 2.15)")
    p.add_argument(
        "--history",
        action="store_true",
        default=argparse.SUPPRESS,
        help="keep every version of contacts, companies, conversations, tickets (scd2); use on every run",
    )


def _add_target_options(p: argparse.ArgumentParser, *, streams: bool = True) -> None:
    if streams:
        p.add_argument("--streams", metavar="A,B", help="comma-separated streams to sync (default: all)")
    p.add_argument(
        "--destination",
        default="duckdb",
        help="duckdb (default), postgres, or any other dlt destination name configured the dlt way",
    )
    p.add_argument(
        "--dataset", default=config.DEFAULT_DATASET, help=f"dataset/schema name (default: {config.DEFAULT_DATASET})"
    )
    p.add_argument(
        "--pipeline-name", default=config.DEFAULT_PIPELINE_NAME, help="dlt pipeline name; keys the saved cursors"
    )
    p.add_argument(
        "--duckdb-path",
        default=config.DEFAULT_DUCKDB_PATH,
        metavar="FILE",
        help="DuckDB file (default: intercom.duckdb)",
    )
    p.add_argument(
        "--pipelines-dir", metavar="DIR", help="where dlt keeps pipeline state (default: ~/.dlt/pipelines)"
    )
    prog = p.add_mutually_exclusive_group()
    prog.add_argument("--progress", dest="progress", action="store_true", default=None, help="log progress")
    prog.add_argument("--no-progress", dest="progress", action="store_false", help="no progress output")


def _add_skip_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--skip-denied-streams",
        action="store_true",
        help="skip the selected streams the token lacks the permission for (one warning each) and sync the rest",
    )


def _add_strict_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--strict",
        action="store_true",
        help=f"exit {errors.EXIT_REJECTS} (after loading the rest) when any record had to be kept aside in _intercom_rejects",
    )


def _add_views_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--no-views",
        dest="views",
        action="store_false",
        help="do not re-create the analyst views after the load (see `intercom-sync views`)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="intercom-sync",
        description="Sync an Intercom workspace into DuckDB, Postgres or another dlt destination.",
        epilog=EPILOG,
    )
    parser.add_argument("--debug", action="store_true", help="verbose logs and tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    run = sub.add_parser("run", help="incremental sync (the scheduled job)", epilog=EPILOG)
    _add_source_options(run)
    _add_target_options(run)
    run.add_argument(
        "--full-refresh", action="store_true", help="drop this source's tables and cursors, reload all"
    )
    run.add_argument(
        "--reconcile-deletes",
        action="store_true",
        help="after the load, list every contact, company and conversation id and mark the vanished ones deleted",
    )
    _add_skip_flag(run)
    _add_strict_flag(run)
    _add_views_flag(run)
    which = run.add_mutually_exclusive_group()
    which.add_argument("--workspace", metavar="NAME", help="sync this workspace of the registry (its settings)")
    which.add_argument("--all", action="store_true", help="sync every workspace of the registry, each in its own process")
    run.add_argument("--parallel", type=int, default=2, metavar="N", help="with --all: at most N at once (default 2)")
    _add_registry_option(run)

    backfill = sub.add_parser(
        "backfill", help="reload a date range without moving the scheduled cursors", epilog=EPILOG
    )
    backfill.add_argument("--start", required=True, metavar="DATE", help="start date, e.g. 2023-01-01 (UTC)")
    backfill.add_argument("--end", metavar="DATE", help="end date, exclusive (default: now)")
    _add_source_options(backfill)
    _add_target_options(backfill)
    _add_skip_flag(backfill)
    _add_strict_flag(backfill)
    _add_views_flag(backfill)

    views = sub.add_parser(
        "views",
        help="create/replace the Fivetran-compatible views and the metric views (no sync)",
        epilog=EPILOG,
    )
    _add_target_options(views, streams=False)
    views.add_argument(
        "--fivetran-schema", metavar="NAME", help="schema for the Fivetran-compatible views (default: <dataset>_fivetran)"
    )
    views.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help="verbose logs and tracebacks"
    )

    report = sub.add_parser(
        "report",
        help="write an offline HTML report of the recorded runs (_intercom_runs): status, rows, freshness, limits",
        epilog=EPILOG,
    )
    _add_target_options(report, streams=False)
    report.add_argument(
        "--days", type=float, default=30.0, metavar="N", help="runs of the last N days (default 30; 0: all)"
    )
    report.add_argument(
        "--out", default="intercom_report.html", metavar="FILE", help="HTML file (default: intercom_report.html)"
    )
    report.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help="verbose logs and tracebacks"
    )

    check = sub.add_parser(
        "check", help="validate the token and show workspace and allowed streams", epilog=EPILOG
    )
    _add_source_options(check)

    demo = sub.add_parser(
        "demo", help="no token needed: sync the built-in emulator into intercom_demo.duckdb"
    )
    demo.add_argument("--duckdb-path", default="intercom_demo.duckdb", metavar="FILE")
    demo.add_argument("--pipelines-dir", metavar="DIR", help="dlt state dir (default: a temporary directory)")
    demo.add_argument("--seed", type=int, default=1, help="emulator data seed (default 1)")
    demo.add_argument("--profile", default="demo", help="emulator profile (default demo)")
    demo.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help="verbose logs and tracebacks"
    )
    webhooks_cli.add_parser(sub, _add_target_options)

    workspaces = sub.add_parser("workspaces", help="the workspace registry: list its workspaces or check their tokens")
    workspaces.add_argument("action", choices=("list", "check"))
    _add_registry_option(workspaces)
    workspaces.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help="verbose logs and tracebacks"
    )
    connect.add_parser(sub, _add_registry_option)
    return parser


def _add_registry_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--registry", default=registry.DEFAULT_REGISTRY, metavar="FILE",
        help=f"workspace registry (default: {registry.DEFAULT_REGISTRY} in the working directory)",
    )


def _progress(args: argparse.Namespace) -> str | None:
    if args.progress is None:  # default: progress only when a human watches
        return "log" if sys.stderr.isatty() else None
    return "log" if args.progress else None


def _target(args: argparse.Namespace) -> config.Target:
    return config.Target(
        destination=args.destination,
        dataset_name=config.validate_name(args.dataset, "--dataset"),
        pipeline_name=config.validate_name(args.pipeline_name, "--pipeline-name"),
        duckdb_path=args.duckdb_path,
        pipelines_dir=args.pipelines_dir,
        progress=_progress(args),
    )


def _cmd_run(args: argparse.Namespace, *, backfill: bool = False) -> int:
    if not backfill and (args.workspace or args.all):
        return _cmd_run_registry(args)
    target = _target(args)
    settings = config.resolve_source_settings(
        region=args.region,
        base_url=args.base_url,
        streams=args.streams,
        intercom_version=args.intercom_version,
        start_date=args.start if backfill else None,
        end_date=(args.end or pendulum.now("UTC").isoformat()) if backfill else None,
    )
    _redactor.secrets = [settings.access_token]
    settings.history = bool(getattr(args, "history", False) or config.history_configured())
    settings.reconcile_deletes = bool(getattr(args, "reconcile_deletes", False))
    settings.skip_denied_streams = bool(getattr(args, "skip_denied_streams", False))
    if backfill:
        print(
            f"Backfilling {settings.start_date.to_date_string()} .. {settings.end_date.to_iso8601_string()} "
            "(scheduled cursors are left as they are)"
        )
    with run_history.recording(target, _command_line(args, backfill), [settings.access_token]) as rec:
        rec.summary = summary = ip.run_sync(
            settings, target, full_refresh=getattr(args, "full_refresh", False), views=args.views
        )
        rejected = summary.rejected_line()
        if rejected is not None and args.strict:
            rec.exit_code, rec.failure = errors.EXIT_REJECTS, f"{rejected} Failing because --strict is set."
    print(format_summary(summary))
    if summary.reconciled:
        print(summary.reconciled)
    if summary.views:
        print(summary.views)
    if rejected is None:
        return errors.EXIT_OK
    if args.strict:
        print(f"error: {rec.failure}", file=sys.stderr)
        return errors.EXIT_REJECTS
    print(f"warning: {rejected}", file=sys.stderr)
    return errors.EXIT_OK


# the flags a registry entry sets; on the command line they would silently disagree with it
_PER_WORKSPACE = {
    "region": None, "base_url": None, "streams": None, "intercom_version": None, "history": False,
    "destination": "duckdb", "dataset": config.DEFAULT_DATASET, "pipeline_name": config.DEFAULT_PIPELINE_NAME,
    "duckdb_path": config.DEFAULT_DUCKDB_PATH,
}


def _cmd_run_registry(args: argparse.Namespace) -> int:
    """`run --workspace NAME` / `run --all`: each workspace's settings from the registry."""
    for flag, default in _PER_WORKSPACE.items():
        if getattr(args, flag, default) != default:
            raise errors.UserError(
                f"--{flag.replace('_', '-')} is set per workspace in {args.registry}, not with --workspace/--all",
                errors.EXIT_USAGE,
            )
    workspaces = registry.load_registry(args.registry)  # each looked up when it runs
    passthrough = [
        *(["--pipelines-dir", args.pipelines_dir] if args.pipelines_dir else []),
        *(["--progress"] if args.progress else ["--no-progress"] if args.progress is False else []),
        *[f"--{f.replace('_', '-')}" for f in ("full_refresh", "skip_denied_streams", "strict") if getattr(args, f)],
        *([] if args.views else ["--no-views"]),
        *(["--debug"] if args.debug else []),
    ]
    if args.all:
        return fleet.run_all(workspaces, args.registry, passthrough, args.parallel)
    ws = registry.with_token(registry.named(workspaces, args.workspace, args.registry), args.registry)
    _redact_also([ws.token])
    return fleet.run_one(ws, passthrough)


def _cmd_workspaces(args: argparse.Namespace) -> int:
    workspaces = registry.load_registry(args.registry)  # `list` needs none
    if args.action == "list":
        return fleet.list_workspaces(workspaces)
    return fleet.check_workspaces(workspaces, args.registry, _redact_also)


def _command_line(args: argparse.Namespace, backfill: bool) -> str:
    """The `command` of the run's history row: the subcommand and the flags that change what it does."""
    parts = ["backfill", "--start", args.start, *(["--end", args.end] if args.end else [])] if backfill else ["run"]
    for flag in ("full_refresh", "reconcile_deletes", "history", "skip_denied_streams", "strict"):
        if getattr(args, flag, False):
            parts.append("--" + flag.replace("_", "-"))
    if args.streams:
        parts += ["--streams", args.streams]
    return " ".join(parts)


def _cmd_report(args: argparse.Namespace) -> int:
    from intercom_elt.pipelines.report import write_report

    target = _target(args)
    if target.destination == "duckdb" and not Path(target.duckdb_path).exists():  # DuckDB would create it
        raise errors.UserError(
            f"no DuckDB file {target.duckdb_path}: pass the --duckdb-path your syncs write to", errors.EXIT_USAGE
        )
    pipeline = destination.build_pipeline(target)
    with failures.translate_errors(None, target):
        result = write_report(pipeline, Path(args.out), days=args.days)
    print(result.describe())
    return errors.EXIT_OK


def _cmd_views(args: argparse.Namespace) -> int:
    from intercom_elt.pipelines import views

    target = _target(args)
    pipeline = destination.build_pipeline(target)
    with failures.translate_errors(None, target):
        try:
            result = views.create_views_for_pipeline(pipeline, fivetran_schema=args.fivetran_schema)
        except ValueError as exc:
            raise errors.UserError(str(exc), errors.EXIT_USAGE) from exc
    print(result.describe())
    return errors.EXIT_OK


def _cmd_check(args: argparse.Namespace) -> int:
    settings = config.resolve_source_settings(
        region=args.region, base_url=args.base_url, intercom_version=args.intercom_version
    )
    _redactor.secrets = [settings.access_token]
    report = preflight.check_workspace(settings)
    app = report.app
    admin = report.me
    print(f"Token OK: admin {admin.get('name', '?')} <{admin.get('email', '?')}>")
    print(f"Workspace: {app.get('name', '?')} (id_code {app.get('id_code', '?')})")
    print(
        f"Region: {app.get('region') or settings.region}   API: {settings.api_url}   Intercom-Version: {settings.intercom_version}"
    )
    print(f"Time zone: {app.get('timezone', '?')}")
    allowed = [s for s, ok in report.allowed.items() if ok]
    denied = [s for s, ok in report.allowed.items() if not ok]
    print(f"Streams allowed ({len(allowed)}): {', '.join(allowed) or 'none'}")
    for stream in denied:
        need = report.missing.get(stream)
        print(f"Stream not allowed: {stream}" + (f" (needs {need})" if need else ""))
    if denied:
        print(f"Sync what is allowed with: intercom-sync run --streams {','.join(allowed)}")
    print(webhooks_cli.deletes_line(settings.intercom_version))
    return errors.EXIT_OK


def _cmd_demo(args: argparse.Namespace) -> int:
    from intercom_elt.pipelines.demo import run_demo

    return run_demo(
        duckdb_path=args.duckdb_path, pipelines_dir=args.pipelines_dir, seed=args.seed, profile=args.profile
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Console script entry point; returns the process exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2), already printed
        return int(exc.code or 0)
    _setup_logging(args.debug)
    handlers = {
        "run": _cmd_run,
        "backfill": lambda a: _cmd_run(a, backfill=True),
        "check": _cmd_check,
        "demo": _cmd_demo,
        "views": _cmd_views,
        "report": _cmd_report,
        "webhooks": lambda a: webhooks_cli.run(a, _target, _redact_also),
        "workspaces": _cmd_workspaces,
        "connect": lambda a: connect.run(a, _redact_also),
    }
    try:
        return handlers[args.command](args)
    except errors.UserError as exc:
        if args.debug:
            traceback.print_exc()
        print(f"error: {_redact(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except (KeyboardInterrupt, Exception) as exc:  # unexpected: one line, traceback with --debug
        if failures.interrupted(exc):  # Ctrl-C, bare or wrapped by a dlt step
            print(f"error: {failures.INTERRUPTED}", file=sys.stderr)
            return errors.EXIT_INTERRUPTED
        mapped = failures.explain(exc)
        if args.debug:
            traceback.print_exc()
        if mapped is not None:
            print(f"error: {_redact(str(mapped))}", file=sys.stderr)
            return mapped.exit_code
        print(
            f"error: {_redact(failures.describe_failure(exc))} (rerun with --debug for details)",
            file=sys.stderr,
        )
        return errors.EXIT_FAILURE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
