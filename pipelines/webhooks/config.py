"""Where the client secrets and the inbox come from: flag > env > .dlt files > a default beside the data.

The client secret signs every notification (X-Hub-Signature). Intercom sends one app's
notifications for every workspace that installed it, routed here by `app_id` (the workspace
id_code); several apps each have their own secret. Secrets are never logged or shown.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from intercom_elt.pipelines.config import Target, dlt_setting
from intercom_elt.pipelines.errors import EXIT_AUTH, EXIT_USAGE, UserError

if TYPE_CHECKING:  # imported where used: every `run` reads this module, few runs have an inbox
    import sqlalchemy as sa

RECEIVER_MAX_BODY = 1024 * 1024  # a conversation.* item with its parts fits; far beyond a deleted id
SECRET_ENV = "INTERCOM_CLIENT_SECRET"
INBOX_ENV = "INTERCOM_WEBHOOK_INBOX"
SECRET_HELP = (
    f"set {SECRET_ENV}, or [webhooks] client_secret (one app) or [webhooks.client_secrets] "
    "<app_id> = \"...\" (several) in .dlt/secrets.toml"
)


@dataclass(frozen=True)
class ClientSecrets:
    """The app client secret(s): one for any app_id, and/or one per app_id."""

    default: str | None = field(default=None, repr=False)
    per_app: Mapping[str, str] = field(default_factory=dict, repr=False)

    def for_app(self, app_id: str) -> str | None:
        return self.per_app.get(app_id) or self.default

    def values(self) -> list[str]:
        return [s for s in (self.default, *self.per_app.values()) if s]


def _secret(key: str) -> object:
    import dlt

    try:
        return dlt.secrets.get(key)
    except Exception:  # a malformed toml must not hide behind a lookup (and never echo a value)
        return None


def resolve_secrets() -> ClientSecrets:
    """INTERCOM_CLIENT_SECRET, then `[webhooks] client_secret` / `[webhooks.client_secrets]`."""
    default = os.environ.get(SECRET_ENV) or _secret("webhooks.client_secret")
    per_app = _secret("webhooks.client_secrets")
    mapping = {str(k): str(v) for k, v in per_app.items() if v} if isinstance(per_app, Mapping) else {}
    secrets = ClientSecrets(str(default).strip() if default else None, mapping)
    if not secrets.values():
        raise UserError(f"no Intercom client secret to verify webhook signatures: {SECRET_HELP}", EXIT_AUTH)
    return secrets


@dataclass(frozen=True)
class InboxLocation:
    url: str = field(repr=False)  # a Postgres URL may carry a password
    schema: str | None
    shown: str  # for messages: no password

    @property
    def configured(self) -> bool:
        """False for a SQLite inbox whose file does not exist (opening it would create one)."""
        if not self.url.startswith("sqlite"):
            return True
        return Path(self.url.split("///", 1)[1]).exists()


def _postgres_url() -> sa.URL:
    import sqlalchemy as sa

    creds = _secret("destination.postgres.credentials")
    if isinstance(creds, str) and creds:
        url = sa.make_url(creds)
        return url.set(drivername="postgresql+psycopg2")
    if isinstance(creds, Mapping) and creds.get("database"):
        return sa.URL.create(
            "postgresql+psycopg2", username=creds.get("username"), password=creds.get("password"),
            host=creds.get("host") or "localhost", port=int(creds.get("port") or 5432), database=creds["database"],
        )
    raise UserError(
        "the webhook inbox for a Postgres destination needs DESTINATION__POSTGRES__CREDENTIALS or "
        f"[destination.postgres] credentials (or an explicit --inbox / {INBOX_ENV})", EXIT_USAGE,
    )


def inbox_location(target: Target, explicit: str | None = None) -> InboxLocation:
    """--inbox > INTERCOM_WEBHOOK_INBOX > [webhooks] inbox > beside the data.

    Beside the data: a SQLite file next to the DuckDB file (`intercom.webhooks.sqlite`), or the
    table `_intercom_webhook_inbox` in the dataset's Postgres schema.
    """
    raw = explicit or os.environ.get(INBOX_ENV) or dlt_setting("webhooks.inbox")
    if raw:
        import sqlalchemy as sa

        url = sa.make_url(str(raw))
        schema = target.dataset_name if url.get_backend_name() == "postgresql" else None
        return InboxLocation(str(url.render_as_string(hide_password=False)), schema, url.render_as_string())
    if target.destination == "duckdb":
        path = Path(target.duckdb_path).resolve()
        sqlite_path = path.with_name(path.stem + ".webhooks.sqlite")
        return InboxLocation(f"sqlite:///{sqlite_path}", None, str(sqlite_path))
    if target.destination == "postgres":
        url = _postgres_url()
        return InboxLocation(url.render_as_string(hide_password=False), target.dataset_name,
                             f"{url.render_as_string()} schema {target.dataset_name}")
    raise UserError(f"no default webhook inbox for destination {target.destination}: pass --inbox URL", EXIT_USAGE)
