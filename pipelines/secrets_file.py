"""Write what `connect` learned: the token into `.dlt/secrets.toml`, the workspace into the registry.

Why tomlkit and a rename: both files are the user's, with their comments and layout; each is
re-read, changed in one place and replaced atomically (a temporary file in the same directory, then
`os.replace`), so a crash leaves the old file or the new one, never half of one. The secrets file
is owner-only (0600) from the moment its temporary copy exists.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pendulum
import tomlkit
from tomlkit.items import Table

from intercom_elt.pipelines import oauth_errors
from intercom_elt.pipelines.oauth import Installation

SECRETS_FILE = Path(".dlt") / "secrets.toml"
OWNER_ONLY = 0o600


def _write_atomically(path: Path, text: str, mode: int) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, mode)  # the umask may have narrowed or the file may be reused: say it exactly
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _parse(path: Path) -> tomlkit.TOMLDocument:
    if not path.exists():
        return tomlkit.document()
    try:
        return tomlkit.parse(path.read_text(encoding="utf-8"))
    except Exception as exc:  # tomlkit's message names the line; one line of it
        raise oauth_errors.secrets_unreadable(str(path), str(exc).splitlines()[0]) from None


def check_secret_key(path: Path, key: str) -> None:
    """Fail before the flow when the token could not be stored under `key` (a bad file, a value in the way)."""
    container: object = _parse(path)
    for part in key.split(".")[:-1]:
        if not isinstance(container, dict):
            raise oauth_errors.secret_key_clash(str(path), key)
        container = container.get(part, {})
    if not isinstance(container, dict):
        raise oauth_errors.secret_key_clash(str(path), key)


def store_secret(path: Path, key: str, value: str) -> None:
    """Set the dotted `key` (e.g. workspaces.eu.access_token) to `value`, keeping the rest of the file."""
    document = _parse(path)
    *tables, leaf = key.split(".")
    container: tomlkit.TOMLDocument | Table = document
    for part in tables:
        if part not in container:
            container[part] = tomlkit.table(is_super_table=True)
        nested = container[part]
        if not isinstance(nested, dict):
            raise oauth_errors.secret_key_clash(str(path), key)
        container = nested  # type: ignore[assignment]
    container[leaf] = value
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    _write_atomically(path, tomlkit.dumps(document), OWNER_ONLY)


def record_install(registry: Path, name: str, install: Installation) -> None:
    """`connected = {id_code, name, region, at}` in the workspace's table; comments and order kept."""
    document = tomlkit.parse(registry.read_text(encoding="utf-8"))
    entry = document["workspaces"][name]  # type: ignore[index]
    record = tomlkit.inline_table()
    record.update(
        {"id_code": install.id_code, "name": install.name, "region": install.region,
         "at": pendulum.now("UTC").to_iso8601_string()}
    )
    entry["connected"] = record  # type: ignore[index]
    mode = stat.S_IMODE(registry.stat().st_mode)
    _write_atomically(registry, tomlkit.dumps(document), mode)
