"""The connection per thread (sources/intercom/transport.py), against the emulator over real
sockets: what httpcore did for the client is still done (a closed keep-alive connection replaced
before use, every failure an httpx `TransportError` the client retries), and https works."""

from __future__ import annotations

import os
import shutil
import ssl
import subprocess
from pathlib import Path

import pytest

from intercom_elt.sources.intercom import IntercomClient
from intercom_elt.sources.intercom.errors import IntercomTransientError
from intercom_emulator.testing import EmulatorServer


def _client(base_url: str, token: str, **kw: object) -> IntercomClient:
    return IntercomClient(token, base_url=base_url, backoff_base=0.01, **kw)  # type: ignore[arg-type]


def _client_port(client: IntercomClient) -> int:
    response = client._send("GET", "/me", None, None)
    assert response.status_code == 200
    return int(response.extensions["network_stream"].get_extra_info("client_addr")[1])


def test_a_connection_the_server_closed_is_replaced_before_it_is_used() -> None:
    """A server that closed an idle keep-alive connection (a restart, a load balancer's idle
    timeout): the next request goes out on a new connection, with no failed attempt, so even a
    request the client never resends (a scroll page) is not lost to it."""
    first = EmulatorServer(profile="tiny", seed=1).start()
    port = first.port
    client = _client(first.base_url, first.token, max_retries=0)
    try:
        kept = _client_port(client)
        assert _client_port(client) == kept  # kept alive between requests
        first.stop()  # closes the idle connection from the server's side
        with EmulatorServer(profile="tiny", seed=1, port=port) as second:
            assert second.base_url == client.base_url
            assert client.me()["type"] == "admin"
            assert _client_port(client) != kept
        assert client.stats.as_dict()["total_retries"] == 0
    finally:
        client.close()
        first.stop()


def test_dropped_and_slow_answers_are_retried_and_reported_by_their_httpx_name(emu: EmulatorServer) -> None:
    """A connection dropped mid-body and an answer slower than the timeout fail as httpx's
    RemoteProtocolError and ReadTimeout (the client's retry loop and its messages rest on them);
    after either, the thread's next request succeeds on a new connection."""
    truth = len(emu.workspace.ground_truth("admins"))
    emu.configure(faults={"drop_rate": 1.0})
    with _client(emu.base_url, emu.token, max_retries=1) as client:
        with pytest.raises(IntercomTransientError, match=r"RemoteProtocolError persisted after 2 attempts"):
            client.list_records("admins")
        emu.configure(faults={"drop_rate": 0.0})
        assert len(client.list_records("admins")) == truth
    emu.configure(faults={"slow_rate": 1.0, "slow_seconds": 1.5})
    with _client(emu.base_url, emu.token, max_retries=0, timeout=0.5) as client:
        with pytest.raises(IntercomTransientError, match=r"ReadTimeout persisted after 1 attempts"):
            client.list_records("admins")
        emu.configure(faults={"slow_rate": 0.0})
        assert len(client.list_records("admins")) == truth
    emu.configure(endpoint_faults={"GET /admins": {"drop_rate": 0.5}})
    with _client(emu.base_url, emu.token, max_retries=8) as client:
        for _ in range(6):
            assert len(client.list_records("admins")) == truth
        assert client.stats.as_dict()["total_retries"] > 0


def test_an_unreachable_host_is_a_connect_error(emu: EmulatorServer) -> None:
    with (
        _client("http://127.0.0.1:9", emu.token, max_retries=0) as client,
        pytest.raises(IntercomTransientError, match=r"ConnectError persisted after 1 attempts"),
    ):
        client.me()


def _openssl_or_skip() -> str:
    path = shutil.which("openssl")
    if path is None:
        reason = "openssl is not installed (Debian package openssl): the https test needs it to make a certificate"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{reason}: required in CI", pytrace=False)
        pytest.skip(reason)
    return path


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key, made by openssl."""
    openssl = _openssl_or_skip()
    where = tmp_path_factory.mktemp("tls")
    cert, key = where / "cert.pem", where / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    return cert, key


def test_https_pages_come_through_verified(certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """Intercom is https: the emulator served over TLS, its certificate trusted by the usual
    SSL_CERT_FILE (httpx's rule), gives the same records; an untrusted certificate fails."""
    cert, key = certificate
    served = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    served.load_cert_chain(cert, key)
    with EmulatorServer(profile="tiny", seed=1, ssl_context=served) as emu:
        assert emu.base_url.startswith("https://")
        with (
            _client(emu.base_url, emu.token, max_retries=0) as untrusting,
            pytest.raises(IntercomTransientError, match=r"ConnectError persisted.*CERTIFICATE_VERIFY_FAILED"),
        ):
            untrusting.me()
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))
        with _client(emu.base_url, emu.token, max_retries=0) as client:
            response = client._send("GET", "/me", None, None)
            assert response.extensions["network_stream"].get_extra_info("ssl_object") is not None
            found = [r["id"] for page in client.search("contacts_search", {"field": "updated_at", "operator": ">",
                                                                              "value": "0"}) for r in page]
            assert sorted(found) == sorted(r["id"] for r in emu.workspace.ground_truth("contacts"))
            assert client.stats.as_dict()["total_retries"] == 0
