"""`scripts/fetch_openapi.py` against a real HTTP server on 127.0.0.1, and the skip/CI gate of the
tests that read Intercom's OpenAPI files (pytest run in a subprocess, files pointed at an empty dir).

The server serves a copy of the real pinned file (and a corrupted one) under the same
`descriptions/<version>/api.intercom.io.yaml` paths as raw.githubusercontent.com at the commit.
"""

from __future__ import annotations

import functools
import hashlib
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.openapi_files import fetch_openapi, require_openapi

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "fetch_openapi.py"
VERSION = "2.15"
NAME = "api.intercom.io.yaml"


@dataclass
class FileServer:
    """A static file server over `root`, counting the paths it was asked for."""

    root: Path
    base_url: str = ""
    requests: list[str] = field(default_factory=list)

    def put(self, version: str, content: bytes) -> None:
        target = self.root / "descriptions" / version / NAME
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)


@pytest.fixture
def file_server(tmp_path: Path) -> Iterator[FileServer]:
    root = tmp_path / "served"
    root.mkdir()
    server_state = FileServer(root)

    class Handler(SimpleHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            server_state.requests.append(self.path)
            super().do_GET()

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet
            return

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
    server_state.base_url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield server_state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


@pytest.fixture(scope="module")
def real_spec() -> bytes:
    """The real pinned 2.15 file (the one the fidelity tests read)."""
    return require_openapi(VERSION).read_bytes()


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("INTERCOM_OPENAPI_DIR", "CI")}
    env.update(extra)
    return env


def _fetch(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=120, env=env or _env(), check=False,
    )


def _one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and "Traceback" not in err, err
    return lines[0]


def test_pins_match_the_shared_source_table() -> None:
    """The pins are the sha256 values SOURCE.md gives (and the commit it names)."""
    source = require_openapi(VERSION).parents[1] / "SOURCE.md"
    if not source.is_file():
        pytest.skip(f"no SOURCE.md beside {source.parent}")
    text = source.read_text()
    assert fetch_openapi.COMMIT in text
    for version, sha in fetch_openapi.PINS.items():
        assert f"`{version}/{NAME}`" in text and sha in text, version


def test_fetch_downloads_the_pinned_file_and_then_keeps_it(file_server: FileServer, real_spec: bytes, tmp_path: Path) -> None:
    file_server.put(VERSION, real_spec)
    dest = tmp_path / "specs"
    done = _fetch("--version", VERSION, "--base-url", file_server.base_url, "--dest", str(dest))
    assert done.returncode == 0, done.stderr
    target = dest / VERSION / NAME
    assert target.read_bytes() == real_spec
    assert hashlib.sha256(target.read_bytes()).hexdigest() == fetch_openapi.PINS[VERSION]
    assert done.stdout.strip() == f"{VERSION}: fetched to {target} (sha256 ok)"
    assert file_server.requests == [f"/descriptions/{VERSION}/{NAME}"]
    assert sorted(p.name for p in target.parent.iterdir()) == [NAME]  # no temporary file left

    again = _fetch("--version", VERSION, "--base-url", file_server.base_url, "--dest", str(dest))
    assert again.returncode == 0, again.stderr
    assert "present" in again.stdout and len(file_server.requests) == 1  # verified, not fetched again


def test_a_mismatching_download_is_refused_and_deleted(file_server: FileServer, real_spec: bytes, tmp_path: Path) -> None:
    corrupted = real_spec.replace(b"Intercom", b"Intercon", 1)
    assert corrupted != real_spec
    file_server.put(VERSION, corrupted)
    dest = tmp_path / "specs"
    done = _fetch("--version", VERSION, "--base-url", file_server.base_url, "--dest", str(dest))
    assert done.returncode == 1
    line = _one_error_line(done.stderr)
    assert f"{VERSION}: sha256 mismatch" in line and "refused and deleted" in line
    assert fetch_openapi.PINS[VERSION] in line
    assert not (dest / VERSION).exists() or list((dest / VERSION).iterdir()) == []


def test_a_corrupt_copy_already_in_the_folder_is_fetched_again(file_server: FileServer, real_spec: bytes, tmp_path: Path) -> None:
    file_server.put(VERSION, real_spec)
    dest = tmp_path / "specs"
    (dest / VERSION).mkdir(parents=True)
    (dest / VERSION / NAME).write_bytes(b"truncated")
    done = _fetch("--version", VERSION, "--base-url", file_server.base_url, "--dest", str(dest))
    assert done.returncode == 0, done.stderr
    assert (dest / VERSION / NAME).read_bytes() == real_spec


def test_the_environment_variable_names_the_folder(file_server: FileServer, real_spec: bytes, tmp_path: Path) -> None:
    file_server.put(VERSION, real_spec)
    folder = tmp_path / "from-env"
    done = _fetch("--version", VERSION, "--base-url", file_server.base_url, env=_env(INTERCOM_OPENAPI_DIR=str(folder)))
    assert done.returncode == 0, done.stderr
    assert (folder / VERSION / NAME).read_bytes() == real_spec


def test_a_missing_file_is_one_actionable_line(file_server: FileServer, tmp_path: Path) -> None:
    done = _fetch("--version", VERSION, "--base-url", file_server.base_url, "--dest", str(tmp_path / "specs"))
    assert done.returncode == 1
    line = _one_error_line(done.stderr)
    assert "HTTP 404" in line and "--base-url" in line


# the tests that read the OpenAPI files, one of each module
CONSUMERS = (
    "tests/emulator/test_server_auth_limits.py::test_hard_coded_versions_match_the_newest_spec",
    "tests/emulator/test_generator.py::test_records_follow_the_2_15_schemas",
    "tests/emulator/test_fidelity_openapi.py::test_validator_is_not_vacuous",
)


def _pytest_with_specs_in(folder: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rsfE", "-p", "no:cacheprovider", *CONSUMERS],
        cwd=REPO, capture_output=True, text=True, timeout=300, check=False,
        env=_env(INTERCOM_OPENAPI_DIR=str(folder), **extra),
    )


def test_without_the_files_the_tests_skip_with_the_fetch_command(tmp_path: Path) -> None:
    done = _pytest_with_specs_in(tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 skipped" in done.stdout, done.stdout
    skips = [line for line in done.stdout.splitlines() if line.startswith("SKIPPED")]
    assert len(skips) == 3, done.stdout
    for line in skips:
        assert "make openapi" in line and "INTERCOM_OPENAPI_DIR" in line and str(tmp_path) in line, line


def test_without_the_files_ci_fails(tmp_path: Path) -> None:
    """In CI each of them fails (in the test or its fixture's setup), none passes or skips."""
    done = _pytest_with_specs_in(tmp_path, CI="true")
    assert done.returncode == 1, done.stdout + done.stderr
    summary = done.stdout.strip().splitlines()[-1]
    assert "passed" not in summary and "skipped" not in summary, summary
    failed = [line for line in done.stdout.splitlines() if line.startswith(("FAILED", "ERROR"))]
    assert len(failed) == 3, done.stdout
    for line in failed:
        assert "make openapi" in line and "(required: CI=true)" in line, line
