"""`intercom-sync connect NAME`: install the public app on a customer's workspace and keep its token.

The registry says where the workspace's token lives; connect obtains it through Intercom's
authorization-code flow (`oauth.py`) and writes it there (`secrets_file.py`): into
`.dlt/secrets.toml` under the entry's `token_secret`, or, with `--print-token`, once on stdout for
a secret manager (the only way for a `token_env` entry). Everything is checked before the browser
step, and a failure at any step writes nothing. Instructions go to stderr, so stdout carries only
the result (or only the token).
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import webbrowser
from collections.abc import Callable
from pathlib import Path

import dlt

from intercom_elt.pipelines import oauth, oauth_errors, registry, secrets_file
from intercom_elt.pipelines.errors import EXIT_OK
from intercom_elt.sources.intercom import settings as source_settings


def add_parser(sub: argparse._SubParsersAction, add_registry_option: Callable[[argparse.ArgumentParser], None]) -> None:
    p = sub.add_parser(
        "connect",
        help="install your public Intercom app on a workspace of the registry (OAuth) and store its token",
    )
    p.add_argument("name", metavar="NAME", help="the workspace's name in the registry")
    add_registry_option(p)
    p.add_argument(
        "--port", type=int, default=oauth.DEFAULT_PORT,
        help=f"local port for Intercom's redirect (default {oauth.DEFAULT_PORT}; 0 picks a free one)",
    )
    p.add_argument(
        "--redirect-uri", metavar="URL",
        help="the redirect URL registered on your app, when it is not http://127.0.0.1:PORT/callback "
        "(e.g. an HTTPS tunnel to that port)",
    )
    p.add_argument("--open", action="store_true", help="open the authorize URL in the default browser")
    p.add_argument(
        "--print-token", action="store_true",
        help="print the token once on stdout for a secret manager instead of writing .dlt/secrets.toml",
    )
    p.add_argument("--timeout", type=float, default=300.0, metavar="S", help="seconds to wait for approval (default 300)")
    p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="verbose logs and tracebacks")


def _app_setting(env: str, *keys: str) -> str:
    value = os.environ.get(env, "").strip()
    for key in keys:
        if value:
            break
        try:
            found = dlt.secrets.get(key)
        except Exception:  # a malformed secrets.toml reads as missing; the error names where to set it
            found = None
        value = str(found).strip() if found else ""
    return value


def app_credentials() -> oauth.AppCredentials:
    """The public app's client id and secret: env first, then .dlt/secrets.toml (the webhooks' secret is the same)."""
    client_id = _app_setting(oauth_errors.CLIENT_ID_ENV, oauth_errors.CLIENT_ID_SECRET)
    if not client_id:
        raise oauth_errors.missing_client("client_id")
    secret = _app_setting(oauth_errors.CLIENT_SECRET_ENV, oauth_errors.CLIENT_SECRET_SECRET, "webhooks.client_secret")
    if not secret:
        raise oauth_errors.missing_client("client_secret")
    return oauth.AppCredentials(client_id, secret)


def run(args: argparse.Namespace, redact_also: Callable[[list[str]], None]) -> int:
    workspaces = registry.load_registry(args.registry)
    ws = registry.named(workspaces, args.name, args.registry)
    kind, _, where = ws.token_source.partition(" ")
    if kind == "env" and not args.print_token:
        raise oauth_errors.env_token_needs_print(ws.name, where)
    app = app_credentials()
    redact_also([app.client_secret])
    secrets_path = secrets_file.SECRETS_FILE
    if not args.print_token:
        secrets_file.check_secret_key(secrets_path, where)
    endpoints = oauth.Endpoints.for_workspace(ws.region, ws.base_url)
    state = oauth.new_state()
    callback = oauth.Callback(args.port, state)
    redirect_uri = args.redirect_uri or f"http://127.0.0.1:{callback.port}{oauth.CALLBACK_PATH}"
    url = oauth.authorize_url(endpoints, app.client_id, state, redirect_uri)
    print(f"Open this URL signed in to the Intercom workspace for '{ws.name}' and approve:\n  {url}", file=sys.stderr)
    print(f"Waiting up to {args.timeout:g}s for Intercom's answer on 127.0.0.1:{callback.port} ...", file=sys.stderr, flush=True)
    if args.open:  # a launcher may block until the browser exits: the callback is served meanwhile
        threading.Thread(target=webbrowser.open, args=(url,), daemon=True).start()
    code = oauth.check_callback(callback.wait(args.timeout), state)
    redact_also([code])
    token = oauth.exchange(endpoints, app, code)
    redact_also([token])
    install = oauth.identify(endpoints, token, ws.intercom_version or source_settings.DEFAULT_VERSION)
    what = f"Intercom workspace '{install.name}' (id_code {install.id_code}, region {install.region or '?'})"
    if args.print_token:
        print(token, flush=True)  # the one place the token is shown, because it was asked for
        stored = "printed once above; put it where the registry reads it" + (f" ({where})" if kind == "env" else "")
    else:
        secrets_file.store_secret(secrets_path, where, token)
        stored = f"stored in {secrets_path} under {where} (mode 600)"
    secrets_file.record_install(Path(args.registry), ws.name, install)
    print(f"Connected '{ws.name}' to {what}: token {stored}", file=sys.stderr if args.print_token else sys.stdout)
    if ws.region and install.region and ws.region != install.region and not ws.base_url:
        print(
            f"warning: Intercom hosts this workspace in region {install.region}, the registry says {ws.region}: "
            f"set region = \"{install.region}\" for '{ws.name}' in {args.registry}",
            file=sys.stderr,
        )
    return EXIT_OK
