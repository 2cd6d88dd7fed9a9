#!/usr/bin/env python3
"""Fetch Intercom's pinned OpenAPI descriptions for the fidelity tests, and check their sha256.

Why: the emulator's fidelity tests compare it with Intercom's official OpenAPI files, which are
not part of this repository. This script puts the pinned copies (one commit of
github.com/intercom/Intercom-OpenAPI, one sha256 per file) where the tests look:

1. the folder named by ``INTERCOM_OPENAPI_DIR``, when that variable is set (nothing else);
2. else ``../shared/intercom-openapi`` beside the repository (the developers' layout);
3. else ``.openapi/`` inside the repository (git-ignored), where this script downloads to.

A file whose sha256 differs from the pin is refused: a download is deleted, never kept.
Standard library only, so it runs before any virtualenv exists (`make openapi`).

    python3 scripts/fetch_openapi.py                 # every pinned version, default places
    python3 scripts/fetch_openapi.py --version 2.15  # one version
    python3 scripts/fetch_openapi.py --base-url http://127.0.0.1:8000 --dest /tmp/specs
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ENV_DIR = "INTERCOM_OPENAPI_DIR"
FILE_NAME = "api.intercom.io.yaml"
SOURCE_REPO = "intercom/Intercom-OpenAPI"
COMMIT = "8889625a7b931d8649e18726e7f872ff073520fc"
DEFAULT_BASE_URL = f"https://raw.githubusercontent.com/{SOURCE_REPO}/{COMMIT}"
# version -> sha256 of descriptions/<version>/api.intercom.io.yaml at COMMIT
PINS: dict[str, str] = {
    "2.13": "dec3bebeea7cbbf071d8e81022ff34d5ed8a54fa09f7674ca245dd3150565d91",
    "2.15": "4449d328089630f6e4472c4ac36e284a029f191ac62518791de28057709bdbc0",
    "2.16": "212b09336bf561992d998e6650d4eaacb44aa0a0f02504e398cf10f1cfb9d238",
}
FETCH_COMMAND = "`make openapi` (or `python3 scripts/fetch_openapi.py`)"
TIMEOUT_SECONDS = 60


class FetchError(Exception):
    """One version could not be made available; the message is one actionable line."""


@dataclass(frozen=True)
class Found:
    """Where a version's file is (or would be) and whether it exists there."""

    path: Path
    exists: bool


def candidate_dirs() -> list[Path]:
    """The folders the tests read, in order (see the module docstring)."""
    configured = os.environ.get(ENV_DIR, "").strip()
    if configured:
        return [Path(configured).expanduser()]
    return [REPO.parent / "shared" / "intercom-openapi", REPO / ".openapi"]


def find_spec(version: str) -> Found:
    """The first existing copy of `version` among `candidate_dirs()`, else the first candidate."""
    dirs = candidate_dirs()
    for folder in dirs:
        path = folder / version / FILE_NAME
        if path.is_file():
            return Found(path, True)
    return Found(dirs[0] / version / FILE_NAME, False)


def missing_message(version: str) -> str:
    """One line: what is missing, where we looked, and the command that fixes it."""
    looked = ", ".join(str(d / version / FILE_NAME) for d in candidate_dirs())
    return (
        f"Intercom's OpenAPI {version} description is missing (looked for {looked}): run "
        f"{FETCH_COMMAND} to fetch the pinned files, or set {ENV_DIR} to a folder holding "
        f"<version>/{FILE_NAME}"
    )


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def default_dest() -> Path:
    configured = os.environ.get(ENV_DIR, "").strip()
    return Path(configured).expanduser() if configured else REPO / ".openapi"


def download(version: str, base_url: str, dest: Path) -> Path:
    """Download one pinned file into `dest/<version>/`; a sha256 mismatch deletes it."""
    url = f"{base_url.rstrip('/')}/descriptions/{version}/{FILE_NAME}"
    target = dest / version / FILE_NAME
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{FILE_NAME}.", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310
                    while block := response.read(1 << 20):
                        out.write(block)
            except urllib.error.HTTPError as exc:
                raise FetchError(f"{version}: HTTP {exc.code} from {url}; check --base-url and the pinned commit") from None
            except (urllib.error.URLError, OSError) as exc:
                reason = getattr(exc, "reason", exc)
                raise FetchError(
                    f"{version}: cannot download {url} ({reason}); check the network, or pass --base-url to a mirror"
                ) from None
        got = sha256_of(tmp)
        if got != PINS[version]:
            raise FetchError(
                f"{version}: sha256 mismatch for {url} (got {got}, pinned {PINS[version]}): file refused "
                "and deleted; the source changed or is not the pinned commit"
            )
        tmp.replace(target)
        return target
    finally:
        tmp.unlink(missing_ok=True)


def ensure(version: str, base_url: str, dest: Path | None) -> str:
    """Make one version available; return a status line. With `dest`, only that folder counts."""
    if dest is None:
        found = find_spec(version)
        existing = found.path if found.exists else None
        dest = default_dest()
    else:
        candidate = dest / version / FILE_NAME
        existing = candidate if candidate.is_file() else None
    if existing is not None:
        got = sha256_of(existing)
        if got == PINS[version]:
            return f"{version}: present at {existing} (sha256 ok)"
        if existing.parent.parent.resolve() != dest.resolve():
            raise FetchError(
                f"{version}: {existing} does not match the pinned sha256 (got {got}); replace it, or set "
                f"{ENV_DIR} to another folder and rerun"
            )
        existing.unlink()  # ours and corrupt: fetch it again
    target = download(version, base_url, dest)
    return f"{version}: fetched to {target} (sha256 ok)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="append", choices=sorted(PINS), help="version to fetch (default: all)")
    parser.add_argument("--dest", type=Path, help=f"folder to fetch into (default: ${ENV_DIR} or .openapi/)")
    parser.add_argument(
        "--base-url", default=DEFAULT_BASE_URL,
        help="URL the descriptions/<version>/ paths hang off (default: the pinned commit on raw.githubusercontent.com)",
    )
    args = parser.parse_args(argv)
    failed = False
    for version in args.version or sorted(PINS):
        try:
            print(ensure(version, args.base_url, args.dest))
        except FetchError as exc:
            print(f"error: {exc}", file=sys.stderr)
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
