"""The workspace registry (`workspaces.toml`): many Intercom workspaces, one file, validated once.

Every mistake is found before any workspace runs and reported as ONE line naming the workspace and
the key (exit 2), so a scheduler never starts half a fleet on a broken file. The file names where
each token comes from (an environment variable or a `.dlt/secrets.toml` key), never the token.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

import dlt
import tomlkit

from intercom_elt.pipelines import config
from intercom_elt.pipelines.errors import EXIT_USAGE, UserError
from intercom_elt.sources.intercom.specs import STREAMS

DEFAULT_REGISTRY = "workspaces.toml"
DESTINATIONS = ("duckdb", "postgres")
KEYS = frozenset(
    {
        "region", "base_url", "token_env", "token_secret", "destination", "dataset", "duckdb_path",
        "pipeline_name", "streams", "schedule", "history", "reconcile_deletes", "intercom_version",
        "connected",  # written by `intercom-sync connect`: {id_code, name, region, at} of the installed workspace
    }
)

# (low, high, names) per cron field: minute hour day-of-month month day-of-week
_CRON_FIELDS = (
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day of month", 1, 31, ()),
    ("month", 1, 12, ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")),
    ("day of week", 0, 7, ("sun", "mon", "tue", "wed", "thu", "fri", "sat")),
)
_CRON_ITEM = re.compile(r"^(\*|(?P<a>\w+)(-(?P<b>\w+))?)(/(?P<step>\d+))?$")


@dataclass(frozen=True)
class Workspace:
    """One registry entry, validated; `token` is "" until `with_token` looks it up, and never printed."""

    name: str
    destination: str
    dataset: str
    pipeline_name: str
    token_source: str  # "env INTERCOM_EU_TOKEN" or "secret workspaces.eu.access_token"
    token: str = field(default="", repr=False)
    region: str | None = None
    base_url: str | None = None
    duckdb_path: str | None = None
    streams: tuple[str, ...] = ()
    schedule: str | None = None
    history: bool = False
    reconcile_deletes: bool = False
    intercom_version: str | None = None

    @property
    def where(self) -> str:
        return self.base_url or f"region {self.region or 'us'}"

    def run_args(self) -> list[str]:
        """The `intercom-sync run` flags that sync exactly this workspace."""
        args = ["--destination", self.destination, "--dataset", self.dataset, "--pipeline-name", self.pipeline_name]
        args += ["--base-url", self.base_url] if self.base_url else ["--region", self.region] if self.region else []
        if self.duckdb_path:
            args += ["--duckdb-path", self.duckdb_path]
        if self.streams:
            args += ["--streams", ",".join(self.streams)]
        if self.intercom_version:
            args += ["--intercom-version", self.intercom_version]
        if self.history:
            args.append("--history")
        if self.reconcile_deletes:
            args.append("--reconcile-deletes")
        return args


def validate_schedule(expr: str) -> str | None:
    """None when `expr` is a 5-field cron expression with values in range, else what is wrong."""
    parts = expr.split()
    if len(parts) != 5:
        return f"'{expr}' has {len(parts)} fields, a cron expression has 5 (minute hour day month weekday)"
    for part, (label, low, high, names) in zip(parts, _CRON_FIELDS, strict=True):
        for item in part.split(","):
            m = _CRON_ITEM.match(item.lower())
            if m is None:
                return f"'{expr}': bad {label} field '{part}'"
            for value in (m["a"], m["b"]):
                if value is None:
                    continue
                number = names.index(value) + (low if names else 0) if value in names else None
                if number is None and not value.isdigit():
                    return f"'{expr}': bad {label} value '{value}'"
                if number is None and not low <= int(value) <= high:
                    return f"'{expr}': {label} {value} is outside {low}-{high}"
            if m["step"] is not None and int(m["step"]) == 0:
                return f"'{expr}': step 0 in the {label} field"
    return None


def _fail(name: str, key: str, what: str) -> UserError:
    return UserError(f"workspace '{name}' key '{key}': {what}", EXIT_USAGE)


def _string(entry: dict[str, object], name: str, key: str) -> str | None:
    value = entry.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise _fail(name, key, "must be a non-empty string")
    return value.strip()


def _flag(entry: dict[str, object], name: str, key: str) -> bool:
    value = entry.get(key, False)
    if not isinstance(value, bool):
        raise _fail(name, key, "must be true or false")
    return value


def _token_source(entry: dict[str, object], name: str) -> str:
    """Where the workspace's token comes from: "env VAR" or "secret key" (never the token)."""
    env_name, secret_key = _string(entry, name, "token_env"), _string(entry, name, "token_secret")
    if (env_name is None) == (secret_key is None):
        raise _fail(name, "token_env", "give exactly one of token_env (an environment variable) or token_secret")
    return f"env {env_name}" if env_name is not None else f"secret {secret_key}"


def _lookup_token(name: str, source: str) -> str:
    """The token named by `source` ("env VAR" / "secret key"), or the line that says where to put it."""
    kind, _, where = source.partition(" ")
    if kind == "env":
        token = os.environ.get(where, "").strip()
        if not token:
            raise _fail(name, "token_env", f"environment variable {where} is not set")
        return token
    try:
        value = dlt.secrets.get(where)
    except Exception:  # a malformed secrets.toml reads as missing, the line says where to look
        value = None
    token = str(value).strip() if value else ""
    if not token:
        raise _fail(name, "token_secret", f"no secret {where} in .dlt/secrets.toml")
    return token


def _workspace(name: str, entry: object) -> Workspace:
    if not isinstance(entry, dict):
        raise UserError(f"workspace '{name}' must be a [workspaces.{name}] table", EXIT_USAGE)
    unknown = sorted(set(entry) - KEYS)
    if unknown:
        raise _fail(name, unknown[0], f"unknown key (known: {', '.join(sorted(KEYS))})")
    region, base_url = _string(entry, name, "region"), _string(entry, name, "base_url")
    if region is not None and base_url is not None:
        raise _fail(name, "region", "give region or base_url, not both")
    if region is not None and region not in config.REGIONS:
        raise _fail(name, "region", f"'{region}' is not one of {', '.join(config.REGIONS)}")
    destination = _string(entry, name, "destination") or ""
    if destination not in DESTINATIONS:
        raise _fail(name, "destination", f"'{destination}' is not one of {', '.join(DESTINATIONS)}")
    dataset = _string(entry, name, "dataset")
    if dataset is None:
        raise _fail(name, "dataset", "missing")
    pipeline_name = _string(entry, name, "pipeline_name") or f"intercom_{name.replace('-', '_')}"
    for key, value in (("dataset", dataset), ("pipeline_name", pipeline_name)):
        try:
            config.validate_name(value, key)
        except UserError as exc:
            raise _fail(name, key, str(exc).removeprefix("invalid ")) from None
    streams_value = entry.get("streams", [])
    if not isinstance(streams_value, list) or not all(isinstance(s, str) for s in streams_value):
        raise _fail(name, "streams", "must be a list of stream names, e.g. [\"contacts\", \"companies\"]")
    for stream in streams_value:
        if stream not in STREAMS:
            raise _fail(name, "streams", f"unknown stream '{stream}' (known: {', '.join(STREAMS)})")
    schedule = _string(entry, name, "schedule")
    if schedule is not None and (problem := validate_schedule(schedule)) is not None:
        raise _fail(name, "schedule", problem)
    if not isinstance(entry.get("connected", {}), dict):
        raise _fail(name, "connected", "is written by `intercom-sync connect`: a table {id_code, name, region, at}")
    token_source = _token_source(entry, name)
    return Workspace(
        name=name, destination=destination, dataset=dataset, pipeline_name=pipeline_name,
        token_source=token_source, region=region, base_url=base_url,
        duckdb_path=_string(entry, name, "duckdb_path"), streams=tuple(streams_value), schedule=schedule,
        history=_flag(entry, name, "history"), reconcile_deletes=_flag(entry, name, "reconcile_deletes"),
        intercom_version=_string(entry, name, "intercom_version"),
    )


def load_registry(path: str | Path = DEFAULT_REGISTRY) -> dict[str, Workspace]:
    """Every workspace of the file, in file order; the first problem raises UserError (exit 2).

    No token is looked up here (each `token` is ""): `with_token` looks one up when its workspace
    runs, so a workspace whose token is not in place yet (not connected) never stops the others.
    """
    file = Path(path)
    if not file.is_file():
        raise UserError(f"no workspace registry {file}: create it (see workspaces.toml.example) or pass --registry", EXIT_USAGE)
    try:
        document = tomlkit.parse(file.read_text(encoding="utf-8")).unwrap()
    except Exception as exc:  # tomlkit's message names the line; keep it on one line
        raise UserError(f"{file}: not valid TOML: {str(exc).splitlines()[0]}", EXIT_USAGE) from None
    unknown = sorted(set(document) - {"workspaces"})
    if unknown:
        raise UserError(f"{file}: unknown top-level key '{unknown[0]}' (only [workspaces.NAME] tables)", EXIT_USAGE)
    tables = document.get("workspaces")
    if not isinstance(tables, dict) or not tables:
        raise UserError(f"{file}: no [workspaces.NAME] table", EXIT_USAGE)
    workspaces: dict[str, Workspace] = {}
    writers: dict[tuple[str, str, str, str], str] = {}
    for name, entry in tables.items():
        try:
            ws = _workspace(name, entry)
        except UserError as exc:
            raise UserError(f"{file}: {exc}", EXIT_USAGE) from None
        where = (ws.duckdb_path or config.DEFAULT_DUCKDB_PATH) if ws.destination == "duckdb" else ""
        key = (ws.destination, str(Path(where).resolve()) if where else "", ws.dataset, ws.pipeline_name)
        if key in writers:
            clash = _fail(
                name, "dataset",
                f"workspace '{writers[key]}' already writes {ws.destination} dataset {ws.dataset} "
                f"with pipeline {ws.pipeline_name}: give one of them its own dataset or pipeline_name",
            )
            raise UserError(f"{file}: {clash}", EXIT_USAGE)
        writers[key] = name
        workspaces[name] = ws
    return workspaces


def named(workspaces: dict[str, Workspace], name: str, path: str | Path) -> Workspace:
    """The workspace called `name`, or the one-line error that lists the known ones (exit 2)."""
    if name not in workspaces:
        raise UserError(f"no workspace '{name}' in {path} (known: {', '.join(workspaces)})", EXIT_USAGE)
    return workspaces[name]


def with_token(ws: Workspace, path: str | Path) -> Workspace:
    """The workspace with its token looked up now; a missing one is this workspace's own one-line
    error (exit 2), so a workspace not yet connected never stops the others."""
    try:
        return replace(ws, token=_lookup_token(ws.name, ws.token_source))
    except UserError as exc:
        raise UserError(f"{path}: {exc}", EXIT_USAGE) from None

