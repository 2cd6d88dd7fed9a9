"""`intercom-sync webhooks serve | drain | refresh-ips`: the CLI face of the receiver and the drain.

Kept out of `pipelines/cli.py`, which only wires this in: the main CLI passes its target options
(where the warehouse is, hence where the inbox lives by default) and its log redaction.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from intercom_elt.pipelines import destination, errors
from intercom_elt.pipelines.config import REGIONS, Target
from intercom_elt.pipelines.lock import pipeline_lock
from intercom_elt.pipelines.webhooks import config, security

if TYPE_CHECKING:
    from intercom_elt.pipelines.webhooks.inbox import Inbox

# the receiver (aiohttp), the inbox and the drain (SQLAlchemy) are imported where they are used:
# every `run` loads this module for drain_after_run, and most runs have no inbox

DEFAULT_RANGES_FILE = "intercom-ip-ranges.{region}.json"


def add_parser(sub: argparse._SubParsersAction, add_target_options: Callable[..., None]) -> None:
    hooks = sub.add_parser("webhooks", help="receive Intercom webhooks and apply their deletes within minutes")
    hsub = hooks.add_subparsers(dest="webhooks_command", metavar="SUBCOMMAND")
    hsub.required = True

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="verbose logs")
        p.add_argument("--inbox", metavar="URL", help="SQLAlchemy URL of the inbox (default: beside the data)")
        add_target_options(p, streams=False)

    serve = hsub.add_parser("serve", help="receive notifications on a port and keep them in the inbox")
    serve.add_argument("--port", type=int, required=True)
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; behind TLS)")
    serve.add_argument("--allow-ips", metavar="FILE", help="accept only Intercom's outbound ranges (refresh-ips file)")
    serve.add_argument("--ips-max-age-days", type=float, default=security.DEFAULT_MAX_AGE_DAYS)
    serve.add_argument("--trusted-proxy", metavar="CIDR", action="append", default=[],
                       help="a proxy whose X-Forwarded-For is believed (repeatable)")
    serve.add_argument("--max-body-bytes", type=int, default=config.RECEIVER_MAX_BODY)
    common(serve)

    drain_p = hsub.add_parser("drain", help="mark the inbox's deleted contacts, companies, conversations")
    drain_p.add_argument("--app-id", help="only this workspace's notifications (its id_code)")
    common(drain_p)

    refresh = hsub.add_parser("refresh-ips", help="download Intercom's outbound IP ranges for --allow-ips")
    refresh.add_argument("--region", choices=REGIONS, default="us")
    refresh.add_argument("--url", help="where to download from (default: Intercom's file for the region)")
    refresh.add_argument("--out", metavar="FILE", help=f"default: {DEFAULT_RANGES_FILE}")
    refresh.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="verbose logs")


def run(args: argparse.Namespace, target_of: Callable[[argparse.Namespace], Target],
        redact: Callable[[list[str]], None]) -> int:
    if args.webhooks_command == "refresh-ips":
        return _refresh_ips(args)
    target = target_of(args)
    location = config.inbox_location(target, args.inbox)
    if args.webhooks_command == "serve":
        secrets = config.resolve_secrets()
        redact(secrets.values())
        return _serve(args, location)
    return _drain(args, target, location)


def _open_inbox(location: config.InboxLocation) -> Inbox:
    from intercom_elt.pipelines.webhooks.inbox import Inbox

    try:
        return Inbox(location.url, location.schema)
    except Exception as exc:
        raise errors.UserError(f"cannot open the webhook inbox at {location.shown}: {type(exc).__name__}",
                               errors.EXIT_FAILURE) from None


def _serve(args: argparse.Namespace, location: config.InboxLocation) -> int:
    from intercom_elt.pipelines.webhooks import receiver

    try:
        proxies = security.parse_networks(args.trusted_proxy)
    except ValueError as exc:
        raise errors.UserError(f"invalid --trusted-proxy: {exc}", errors.EXIT_USAGE) from None
    settings = receiver.ReceiverSettings(
        secrets=config.resolve_secrets(), inbox=_open_inbox(location), max_body_bytes=args.max_body_bytes,
        allowlist_path=Path(args.allow_ips) if args.allow_ips else None,
        allowlist_max_age_days=args.ips_max_age_days, trusted_proxies=proxies,
    )
    try:
        receiver.serve(settings, args.host, args.port)
    except security.RangesError as exc:
        raise errors.UserError(str(exc), errors.EXIT_USAGE) from None
    return errors.EXIT_OK


def _drain(args: argparse.Namespace, target: Target, location: config.InboxLocation) -> int:
    from intercom_elt.pipelines.webhooks import drain

    inbox = _open_inbox(location)
    pipeline = destination.build_pipeline(target)
    try:
        with pipeline_lock(pipeline):
            result = drain.drain(pipeline, inbox, app_id=args.app_id)
    except drain.SeveralWorkspacesError as exc:
        raise errors.UserError(str(exc), errors.EXIT_USAGE) from None
    finally:
        inbox.close()
    print(result.describe())
    return errors.EXIT_OK


def _refresh_ips(args: argparse.Namespace) -> int:
    url = args.url or security.IP_RANGES_URL.format(region=args.region)
    out = Path(args.out or DEFAULT_RANGES_FILE.format(region=args.region))
    try:
        resp = httpx.get(url, timeout=30, follow_redirects=True)
        resp.raise_for_status()
        document = resp.json()
        count = security.write_ranges_cache(document, out)
    except (httpx.HTTPError, json.JSONDecodeError, security.RangesError) as exc:
        raise errors.UserError(f"IP ranges not refreshed from {url}: {exc}; the previous file is kept",
                               errors.EXIT_FAILURE) from None
    print(f"{count} Intercom outbound range(s) dated {document.get('date', '?')} written to {out}")
    return errors.EXIT_OK


def deletes_line(intercom_version: str) -> str:
    """`check`'s line on how deleted conversations are found with this Intercom-Version."""
    from intercom_elt.sources.intercom.deleted_feed import has_feed

    if has_feed(intercom_version):
        return "Deleted conversations: from GET /conversations/deleted every run (Intercom-Version 2.16+)"
    return (f"Deleted conversations: Intercom-Version {intercom_version} has no deleted feed; use "
            "run --reconcile-deletes, webhooks (intercom-sync webhooks serve) or --intercom-version 2.16")


def drain_after_run(pipeline: object, target: Target, run_started_at: float, app_id: str | None = None) -> str | None:
    """`run`'s step when a receiver is configured: apply the inbox (this workspace's notifications
    when `app_id` is known), and mark the queued updates the run has just read. None when no inbox
    exists for this target."""
    try:
        location = config.inbox_location(target)
    except errors.UserError:
        return None
    if not location.configured:
        return None
    from intercom_elt.pipelines.webhooks import drain
    from intercom_elt.pipelines.webhooks.inbox import Inbox

    inbox = Inbox(location.url, location.schema, create=False)  # a run never creates an inbox
    if not inbox.exists():
        inbox.close()
        return None
    try:
        result = drain.drain(pipeline, inbox, app_id=app_id)
        read = drain.updates_read_by_run(inbox, run_started_at)
    finally:
        inbox.close()
    result.queued_updates = max(0, result.queued_updates - read)
    return result.describe()
