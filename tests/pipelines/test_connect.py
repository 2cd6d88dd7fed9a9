"""`intercom-sync connect NAME` end to end: the CLI as a subprocess, the emulator's authorize page and
token endpoint over real HTTP, the "browser" played by an HTTP client submitting the page's form (and
once by real headless chromium clicking Authorize), then `run --workspace` syncing with the stored token.

Every refusal (denied, forged state, expired code, wrong client secret, an env-token workspace
without --print-token) must be one error line with its exit code and leave .dlt/secrets.toml and
workspaces.toml byte-identical; the token must appear in no output and no file but the secrets file.
"""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import duckdb
import httpx
import pytest
import tomlkit

from intercom_emulator.testing import EmulatorServer, free_port
from tests.pipelines.browser import CHROMEDRIVER, CHROMIUM, chromium_or_skip
from tests.pipelines.test_cli import assert_one_line_error

CLIENT_ID = "connect-test-client"
CLIENT_SECRET = "connect-test-client-secret-3f9a"
REPO = Path(__file__).resolve().parents[2]
SECRETS_TEXT = '# my secrets, keep this comment\n[sources.intercom]\naccess_token = "unrelated-token"\n'


@dataclass
class Setup:
    emu: EmulatorServer
    root: Path
    env: dict[str, str]

    @property
    def secrets(self) -> Path:
        return self.root / ".dlt" / "secrets.toml"

    @property
    def registry(self) -> Path:
        return self.root / "workspaces.toml"

    def files(self) -> tuple[bytes, bytes]:
        return self.secrets.read_bytes(), self.registry.read_bytes()


@pytest.fixture
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Setup]:
    """A registry with 'acme' (token_secret) and 'envy' (token_env), both on one emulator whose
    public app has CLIENT_ID/CLIENT_SECRET; a secrets file with a comment and another key."""
    monkeypatch.chdir(tmp_path)
    with EmulatorServer(
        profile="tiny", seed=11, oauth_client_id=CLIENT_ID, oauth_client_secret=CLIENT_SECRET
    ) as emu:
        (tmp_path / ".dlt").mkdir()
        (tmp_path / ".dlt" / "secrets.toml").write_text(SECRETS_TEXT)
        (tmp_path / "workspaces.toml").write_text(
            f"""# the customers we sync (comment kept by connect)
[workspaces.acme]
base_url = "{emu.base_url}"   # the emulator stands in for Intercom
token_secret = "workspaces.acme.access_token"
destination = "duckdb"
duckdb_path = "acme.duckdb"
dataset = "intercom_acme"
streams = ["contacts", "companies", "admins"]

[workspaces.envy]
base_url = "{emu.base_url}"
token_env = "ENVY_TOKEN"
destination = "duckdb"
duckdb_path = "envy.duckdb"
dataset = "intercom_envy"
"""
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("INTERCOM_")}
        env.update(INTERCOM_CLIENT_ID=CLIENT_ID, INTERCOM_CLIENT_SECRET=CLIENT_SECRET)
        yield Setup(emu, tmp_path, env)


class Connect:
    """`intercom-sync connect` running; the authorize URL read from the instructions on stderr."""

    def __init__(self, setup: Setup, *args: str, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "intercom_elt.pipelines.cli", "connect", *args, "--port", str(self.port),
             "--timeout", "60"],
            cwd=setup.root, env=env or setup.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        self.instructions = ""
        self.url = ""
        while not self.url:
            line = self.proc.stderr.readline() if self.proc.stderr else ""
            if not line:  # it ended before showing a URL: finish() reports why
                break
            self.instructions += line
            if line.startswith("  http"):
                self.url = line.strip()
        if self.url:
            self.instructions += self.proc.stderr.readline() if self.proc.stderr else ""  # "Waiting ..."

    def finish(self) -> tuple[int, str, str]:
        out, err = self.proc.communicate(timeout=60)
        return self.proc.returncode, out, err


class _Form(HTMLParser):
    """The authorize page's form: its action, hidden fields and first workspace option."""

    def __init__(self) -> None:
        super().__init__()
        self.action = ""
        self.fields: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.action = a.get("action", "")
        elif tag == "input" and a.get("type") == "hidden":
            self.fields[a["name"]] = a.get("value", "")
        elif tag == "option" and "workspace" not in self.fields:
            self.fields["workspace"] = a.get("value", "")


def decide(url: str, decision: str) -> str:
    """What a person does on Intercom's page: choose the workspace, press a button; the redirect it gets."""
    page = httpx.get(url)
    assert page.status_code == 200, page.text
    form = _Form()
    form.feed(page.text)
    assert form.fields.get("workspace") and form.fields.get("state"), page.text
    parts = urlsplit(url)
    answer = httpx.post(
        f"{parts.scheme}://{parts.netloc}{form.action}", data={**form.fields, "decision": decision}
    )
    assert answer.status_code == 302, answer.text
    return answer.headers["location"]


def with_param(url: str, **params: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query.update(params)
    return urlunsplit(parts._replace(query=urlencode(query)))


def assert_nowhere_but_secrets(token: str, root: Path, *outputs: str) -> None:
    """The token in no output, no file under the test's directory but the secrets file, no tracked file."""
    for output in outputs:
        assert token not in output
    needle = token.encode()
    for path in root.rglob("*"):
        if path.is_file() and path.name != "secrets.toml":
            assert needle not in path.read_bytes(), f"token found in {path}"
    tracked = subprocess.run(["git", "grep", "-F", "-l", token], cwd=REPO, capture_output=True, text=True)
    assert tracked.returncode == 1 and not tracked.stdout, tracked.stdout


def test_connect_stores_the_token_and_run_syncs_with_it(setup: Setup) -> None:
    known_tokens = set(setup.emu.state.tokens)
    connect = Connect(setup, "acme", "--debug")  # debug logs on stderr: the leak check covers them too
    assert connect.url.startswith(f"{setup.emu.base_url}/oauth?client_id={CLIENT_ID}&state="), connect.instructions
    location = decide(connect.url, "approve")
    assert location.startswith(f"http://127.0.0.1:{connect.port}/callback?code=")
    assert "intercom-sync received" in httpx.get(location).text
    code, out, err = connect.finish()
    assert code == 0, err
    app = setup.emu.workspace.app
    assert out.strip() == (
        f"Connected 'acme' to Intercom workspace '{app['name']}' (id_code {app['id_code']}, region us): "
        "token stored in .dlt/secrets.toml under workspaces.acme.access_token (mode 600)"
    )
    # the token: owner-only, under the registry's key, the rest of the file as it was
    assert stat.S_IMODE(setup.secrets.stat().st_mode) == 0o600
    text = setup.secrets.read_text()
    assert text.startswith(SECRETS_TEXT)
    token = tomlkit.parse(text)["workspaces"]["acme"]["access_token"]  # type: ignore[index]
    assert set(setup.emu.state.tokens) - known_tokens == {token}
    # the registry: the install recorded in the entry, its comments kept
    registry_text = setup.registry.read_text()
    assert "# the customers we sync (comment kept by connect)" in registry_text
    assert "# the emulator stands in for Intercom" in registry_text
    connected = tomlkit.parse(registry_text)["workspaces"]["acme"]["connected"]  # type: ignore[index]
    assert (connected["id_code"], connected["name"], connected["region"]) == (app["id_code"], app["name"], "us")
    # a code is single use: replaying the callback's code at the token endpoint is refused
    replay = httpx.post(
        f"{setup.emu.base_url}/auth/eagle/token",
        data={"code": dict(parse_qsl(urlsplit(location).query))["code"], "client_id": CLIENT_ID,
              "client_secret": CLIENT_SECRET},
    )
    assert replay.status_code == 401 and replay.json()["errors"][0]["code"] == "invalid_code"

    synced = subprocess.run(
        [sys.executable, "-m", "intercom_elt.pipelines.cli", "run", "--workspace", "acme",
         "--pipelines-dir", str(setup.root / "pipelines"), "--no-progress", "--debug"],
        cwd=setup.root, env={**setup.env, "ENVY_TOKEN": "the-other-workspace-token"},  # the registry resolves all
        capture_output=True, text=True, timeout=300,
    )
    assert synced.returncode == 0, synced.stderr
    with duckdb.connect(str(setup.root / "acme.duckdb"), read_only=True) as db:
        ids = {row[0] for row in db.execute("select id from intercom_acme.contacts").fetchall()}
    assert ids == {c["id"] for c in setup.emu.workspace.ground_truth("contacts")}
    assert_nowhere_but_secrets(token, setup.root, out, err, connect.instructions, synced.stdout, synced.stderr)


def test_print_token_shows_it_once_and_writes_no_secret(setup: Setup) -> None:
    before_secrets = setup.secrets.read_bytes()
    connect = Connect(setup, "envy", "--print-token")
    httpx.get(decide(connect.url, "approve"))
    code, out, err = connect.finish()
    assert code == 0, err
    token = out.strip()
    assert out == token + "\n" and token in setup.emu.state.tokens  # stdout: the token and nothing else
    assert "printed once above" in err and "ENVY_TOKEN" in err and token not in err
    assert setup.secrets.read_bytes() == before_secrets
    assert "connected = {" in setup.registry.read_text()
    assert_nowhere_but_secrets(token, setup.root, err, connect.instructions)


def test_open_hands_the_url_to_the_browser(setup: Setup) -> None:
    """--open goes through the webbrowser module; $BROWSER stands in for a person approving."""
    approver = setup.root / "approve.py"
    approver.write_text(
        f"import sys\nsys.path.insert(0, {str(REPO)!r})\nimport httpx\n"
        "from tests.pipelines.test_connect import decide\nhttpx.get(decide(sys.argv[1], 'approve'))\n"
    )
    connect = Connect(setup, "acme", "--open", env={**setup.env, "BROWSER": f"{sys.executable} {approver} %s"})
    code, out, err = connect.finish()
    assert code == 0, err
    assert out.startswith("Connected 'acme'")
    token = tomlkit.parse(setup.secrets.read_text())["workspaces"]["acme"]["access_token"]  # type: ignore[index]
    assert token in setup.emu.state.tokens


def _deny(setup: Setup, connect: Connect) -> None:
    httpx.get(decide(connect.url, "deny"))


def _forge_state(setup: Setup, connect: Connect) -> None:
    httpx.get(with_param(decide(connect.url, "approve"), state="forged-by-someone-else"))


def _expire(setup: Setup, connect: Connect) -> None:
    location = decide(connect.url, "approve")
    setup.emu.workspace.clock.advance(301)  # Intercom: codes expire after about 5 minutes
    httpx.get(location)


def _approve(setup: Setup, connect: Connect) -> None:
    httpx.get(decide(connect.url, "approve"))


@pytest.mark.parametrize(
    ("case", "act", "secret", "needles"),
    [
        ("denied", _deny, CLIENT_SECRET, ("not approved", "access_denied", "run connect again")),
        ("bad state", _forge_state, CLIENT_SECRET, ("state does not match", "run connect again")),
        ("expired code", _expire, CLIENT_SECRET, ("expired", "approve promptly")),
        ("wrong secret", _approve, "not-the-secret", ("invalid_client", "INTERCOM_CLIENT_SECRET")),
    ],
)
def test_every_refusal_is_one_line_exit_3_and_changes_nothing(
    setup: Setup, case: str, act: object, secret: str, needles: tuple[str, ...]
) -> None:
    before = setup.files()
    known_tokens = set(setup.emu.state.tokens)
    connect = Connect(setup, "acme", env={**setup.env, "INTERCOM_CLIENT_SECRET": secret})
    assert connect.url, connect.instructions
    act(setup, connect)  # type: ignore[operator]
    code, out, err = connect.finish()
    assert code == 3, (case, err)
    assert out == ""
    line = assert_one_line_error(err, *needles)
    assert secret not in line and CLIENT_SECRET not in err
    assert setup.files() == before
    assert set(setup.emu.state.tokens) == known_tokens  # no token was minted


def test_env_token_workspace_needs_print_token_before_any_browser_step(setup: Setup) -> None:
    before = setup.files()
    connect = Connect(setup, "envy")
    code, out, err = connect.finish()
    assert code == 2 and out == "" and not connect.url
    assert_one_line_error(connect.instructions + err, "ENVY_TOKEN", "--print-token")
    assert setup.files() == before


def test_unknown_workspace_names_the_known_ones(setup: Setup) -> None:
    connect = Connect(setup, "nobody")
    code, _, err = connect.finish()
    assert code == 2
    assert_one_line_error(connect.instructions + err, "no workspace 'nobody'", "acme, envy")


def test_missing_client_secret_is_a_configuration_error(setup: Setup) -> None:
    before = setup.files()
    env = {k: v for k, v in setup.env.items() if k != "INTERCOM_CLIENT_SECRET"}
    connect = Connect(setup, "acme", env=env)
    code, _, err = connect.finish()
    assert code == 2
    assert_one_line_error(connect.instructions + err, "INTERCOM_CLIENT_SECRET", "intercom_app.client_secret")
    assert setup.files() == before


def test_busy_port_is_a_configuration_error_before_any_url(setup: Setup) -> None:
    before = setup.files()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "intercom_elt.pipelines.cli", "connect", "acme", "--port", str(port)],
            cwd=setup.root, env=setup.env, capture_output=True, text=True, timeout=60,
        )
    assert done.returncode == 2 and done.stdout == ""
    assert_one_line_error(done.stderr, f"127.0.0.1:{port}", "--port")
    assert setup.files() == before


def test_token_endpoint_errors_in_intercoms_shape(setup: Setup) -> None:
    """The emulator's answers for a bad code, an expired code and a wrong secret: Intercom's error.list."""
    url = f"{setup.emu.base_url}/auth/eagle/token"
    bad = httpx.post(url, data={"code": "nope", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET})
    wrong = httpx.post(url, json={"code": "nope", "client_id": CLIENT_ID, "client_secret": "wrong"})
    missing = httpx.post(url, params={"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET})
    for resp, status, code in ((bad, 401, "invalid_code"), (wrong, 401, "invalid_client"), (missing, 400, "parameter_not_found")):
        body = resp.json()
        assert resp.status_code == status and body["type"] == "error.list" and body["request_id"]
        assert body["errors"][0]["code"] == code


def test_connect_in_headless_chromium_clicking_authorize(setup: Setup) -> None:
    """The authorize page as a person sees it: real chromium loads it, clicks Authorize, follows the redirect."""
    chromium_or_skip()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    # loopback only: every other host goes to a dead proxy (chromium bypasses proxies for loopback)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--proxy-server=http://127.0.0.1:9", "--no-first-run", "--disable-background-networking"):
        options.add_argument(arg)
    connect = Connect(setup, "acme")
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    try:
        driver.get(connect.url)
        choice = Select(driver.find_element(By.ID, "workspace"))
        assert [o.text for o in choice.options] == [
            f"{setup.emu.workspace.app['name']} ({setup.emu.workspace.app['id_code']})"
        ]
        driver.find_element(By.ID, "approve").click()
        WebDriverWait(driver, 20).until(lambda d: d.find_elements(By.ID, "result"))
        landed = driver.current_url
        result = driver.find_element(By.ID, "result").text
    finally:
        driver.quit()
    code, out, err = connect.finish()
    assert code == 0, err
    assert landed.startswith(f"http://127.0.0.1:{connect.port}/callback?code=")
    assert "intercom-sync received" in result
    token = tomlkit.parse(setup.secrets.read_text())["workspaces"]["acme"]["access_token"]  # type: ignore[index]
    assert token in setup.emu.state.tokens
    assert_nowhere_but_secrets(str(token), setup.root, out, err)
