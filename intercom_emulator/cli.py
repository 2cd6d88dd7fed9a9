"""`intercom-emulator serve | dump`: run the Intercom emulator or write its ground truth.

Why a CLI: the demo, benchmarks and crash tests need the emulator as a separate process.
"""

from __future__ import annotations

import argparse
import logging
import sys

from intercom_emulator.server import build_state, run

log = logging.getLogger("intercom_emulator")


def _workspace(args: argparse.Namespace):  # noqa: ANN202 - the store's type, imported lazily
    from intercom_emulator.store import Workspace

    kwargs = {"profile": args.profile, "seed": args.seed, "scale": args.scale}
    if getattr(args, "timezone", None):
        kwargs["timezone"] = args.timezone
    if getattr(args, "cache_records", False):
        kwargs["cache_records"] = True
    return Workspace(**kwargs)


def build_parser() -> argparse.ArgumentParser:
    """Argument parser for both subcommands."""
    parser = argparse.ArgumentParser(prog="intercom-emulator", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--profile", default="demo", choices=["tiny", "demo", "bench"])
        p.add_argument("--seed", type=int, default=1)
        p.add_argument("--scale", type=float, default=1.0)
        p.add_argument("--timezone", default=None, help="IANA time zone of the workspace")

    serve = sub.add_parser("serve", help="serve the Intercom REST API on 127.0.0.1")
    common(serve)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8765)
    serve.add_argument("--latency-ms", type=float, default=0.0)
    serve.add_argument("--latency-jitter-ms", type=float, default=0.0)
    serve.add_argument("--rate-limit-per-minute", type=int, default=10_000)
    serve.add_argument("--workspace-rate-limit-per-minute", type=int, default=25_000)
    serve.add_argument("--other-apps-per-minute", type=int, default=0)
    serve.add_argument("--fault-rate", type=float, default=0.0, help="probability of a transient 5xx")
    serve.add_argument("--fault-seed", type=int, default=1)
    serve.add_argument("--search-lag-seconds", type=int, default=0)
    serve.add_argument("--scroll-idle-timeout", type=float, default=60.0)
    serve.add_argument("--conversations-search-day-granular", action="store_true")
    serve.add_argument(
        "--token",
        action="append",
        default=[],
        help="VALUE[:scope,scope] (repeatable); default: emulator-token with every scope",
    )
    serve.add_argument("--oauth-client-id", default="emulator-client-id", help="the public app's client id (GET /oauth)")
    serve.add_argument(
        "--oauth-client-secret", default="emulator-client-secret", help="the public app's secret (POST /auth/eagle/token)"
    )
    serve.add_argument("--oauth-code-ttl-seconds", type=int, default=300, help="authorization codes expire after this")
    serve.add_argument(
        "--cache-records", action="store_true",
        help="keep every record serialised in memory, contacts built at start (benchmarks: about 2.2 KB a "
             "record, and a page of a big workspace is then served in about 2 ms of CPU)",
    )
    serve.add_argument("--log-level", default="INFO")

    dump = sub.add_parser("dump", help="write <stream>.jsonl ground truth")
    common(dump)
    dump.add_argument("--out", required=True)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `intercom-emulator` console script."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=getattr(args, "log_level", "INFO"), format="%(asctime)s %(name)s %(message)s")
    ws = _workspace(args)
    if args.command == "dump":
        ws.dump(args.out)
        log.info("wrote ground truth to %s", args.out)
        return 0
    state = build_state(
        ws,
        tokens=args.token,
        rate_limit_per_minute=args.rate_limit_per_minute,
        workspace_rate_limit_per_minute=args.workspace_rate_limit_per_minute,
        other_apps_per_minute=args.other_apps_per_minute,
        fault_seed=args.fault_seed,
        faults={
            "latency_ms": args.latency_ms,
            "latency_jitter_ms": args.latency_jitter_ms,
            "error_rate": args.fault_rate,
        },
        search_lag_seconds=args.search_lag_seconds,
        scroll_idle_timeout=args.scroll_idle_timeout,
        conversations_search_day_granular=args.conversations_search_day_granular,
        oauth_client_id=args.oauth_client_id,
        oauth_client_secret=args.oauth_client_secret,
        oauth_code_ttl_seconds=args.oauth_code_ttl_seconds,
    )
    if args.cache_records:
        from intercom_emulator.routes.cursor import warm_updated_indexes

        warm_updated_indexes(state)
    log.info("intercom emulator on http://%s:%d (profile=%s seed=%d)", args.host, args.port, args.profile, args.seed)
    run(state, host=args.host, port=args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
