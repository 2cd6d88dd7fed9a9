"""Where the tests find Intercom's OpenAPI files, and what happens when they are missing.

The files are not in the repository (see `scripts/fetch_openapi.py`, which also decides where
they are looked for). A test that needs one calls `require_openapi(version)`: it skips with the
command that fetches them, or fails when `CI=true`, so CI can never go green without them.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest

_SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "fetch_openapi.py"


def _load_fetch_script() -> ModuleType:
    """The script as a module (it is not a package: it must run before any install)."""
    name = "intercom_fetch_openapi"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, _SCRIPT)
    assert spec is not None and spec.loader is not None, _SCRIPT
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


fetch_openapi = _load_fetch_script()


def openapi_required() -> bool:
    """True in CI: missing files fail the run instead of skipping."""
    return os.environ.get("CI", "").lower() == "true"


def openapi_available(version: str) -> bool:
    """Whether the file is there (for collection-time decisions, which must not skip)."""
    return bool(fetch_openapi.find_spec(version).exists)


def require_openapi(version: str) -> Path:
    """The path of Intercom's OpenAPI `version` file; skip (or fail in CI) when it is absent."""
    found = fetch_openapi.find_spec(version)
    if found.exists:
        return found.path
    message = fetch_openapi.missing_message(version)
    if openapi_required():
        pytest.fail(f"{message} (required: CI=true)", pytrace=False)
    pytest.skip(message)
