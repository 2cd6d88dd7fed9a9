"""One keep-alive connection per thread, under the HTTP client (client.py), sent and read by the
standard library's `http.client`.

Why not one httpx pool for all threads: httpcore's pool walks every connection it holds, under one
lock, when a request starts and again when its response closes, and asks each idle connection's
socket whether the server closed it (a `poll`, which releases the GIL). With the 27 readers of a
split search that was about 54 polls a request, 79,000 in a 200,000-contact sync (12,500 with a
connection per thread; docs/benchmarks.md). A thread sends one request at a time and reads it to
the end (`_send`), so its own connection is all it needs.

Why `http.client` under httpx's interface, not httpcore: a search page is about 280 KB, and
httpcore hands it to h11 64 KiB at a time, which parses in Python and copies the body three more
times on the way to `Response.content`. `http.client` reads a body of known length in one call into
one buffer. One thread, the same search page: 0.50 ms of CPU a request with httpcore, 0.17 ms with
this (docs/benchmarks.md), which was about 2 us of a contact's 52. The client above still speaks
httpx (`httpx.Request` in, `httpx.Response` out, httpx's `TransportError`s for every failure it
retries), and a proxy from the environment still goes through `httpx.Client` (client.py).

What httpcore did that is kept: a connection idle for `KEEPALIVE_EXPIRY_SECONDS` is replaced
rather than reused, one the server has closed (its socket readable while idle) is replaced before
a request is sent on it, and a connection that failed is never used again.
"""

from __future__ import annotations

import http.client
import select
import socket
import ssl
import threading
import time
import weakref

import httpx

KEEPALIVE_EXPIRY_SECONDS = 5.0  # httpcore's default: servers drop idle connections after a few seconds


class _NetworkStream:
    """httpx's `network_stream` response extension: what a caller may ask of the connection."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    def get_extra_info(self, info: str) -> object:
        sock = self._sock
        if info == "client_addr":
            return sock.getsockname()
        if info == "server_addr":
            return sock.getpeername()
        if info == "ssl_object":
            return sock if isinstance(sock, ssl.SSLSocket) else None
        if info == "socket":
            return sock
        return None


class _Connection:
    """One thread's keep-alive connection to one origin, opened on first use and after a failure."""

    def __init__(self, ssl_context: ssl.SSLContext) -> None:
        self._ssl = ssl_context
        self._origin: tuple[str, str, int] | None = None
        self._conn: http.client.HTTPConnection | None = None
        self._idle_since = 0.0

    def send(self, request: httpx.Request) -> httpx.Response:
        timeouts = request.extensions.get("timeout", {})
        conn = self._ready(request.url, timeouts)
        try:
            _set_timeout(conn.sock, timeouts.get("write"))
            conn.putrequest(request.method, request.url.raw_path.decode("ascii"), skip_host=True, skip_accept_encoding=True)
            for name, value in request.headers.raw:  # Host and Content-Length included (httpx.Request sets them)
                conn.putheader(name, value)
            conn.endheaders(request.read() or None)
        except Exception as exc:
            self.close()
            raise _failure(exc, request, httpx.WriteTimeout, httpx.WriteError) from exc
        try:
            _set_timeout(conn.sock, timeouts.get("read"))
            answer = conn.getresponse()
            content = answer.read()
        except Exception as exc:
            self.close()
            raise _failure(exc, request, httpx.ReadTimeout, httpx.ReadError) from exc
        sock = conn.sock
        if sock is None:  # the server asked to close (http.client closed it once the body was read)
            self.close()
        self._idle_since = time.monotonic()
        return httpx.Response(
            answer.status,
            headers=[(name.encode("latin-1"), value.encode("latin-1")) for name, value in answer.getheaders()],
            content=content,
            request=request,
            extensions={
                "http_version": b"HTTP/1.1" if answer.version == 11 else b"HTTP/1.0",
                "reason_phrase": answer.reason.encode("latin-1"),
                **({"network_stream": _NetworkStream(sock)} if sock is not None else {}),
            },
        )

    def _ready(self, url: httpx.URL, timeouts: dict[str, float | None]) -> http.client.HTTPConnection:
        """The open connection to `url`'s origin if it is still good, else a new one."""
        scheme = url.scheme
        origin = (scheme, url.host, url.port or (443 if scheme == "https" else 80))
        conn = self._conn
        if conn is not None and conn.sock is not None and origin == self._origin and self._reusable(conn.sock):
            return conn
        self.close()
        if scheme == "https":
            conn = http.client.HTTPSConnection(origin[1], origin[2], timeout=timeouts.get("connect"), context=self._ssl)
        elif scheme == "http":
            conn = http.client.HTTPConnection(origin[1], origin[2], timeout=timeouts.get("connect"))
        else:
            raise httpx.UnsupportedProtocol(f"Request URL has an unsupported protocol '{scheme}://'.")
        try:
            conn.connect()
        except Exception as exc:
            conn.close()
            raise _failure(exc, None, httpx.ConnectTimeout, httpx.ConnectError) from exc
        self._conn, self._origin = conn, origin
        return conn

    def _reusable(self, sock: socket.socket) -> bool:
        """Not idle too long, and not closed (or written to) by the server while idle."""
        if time.monotonic() - self._idle_since > KEEPALIVE_EXPIRY_SECONDS:
            return False
        try:
            readable, _, _ = select.select([sock], [], [], 0)
        except (OSError, ValueError):
            return False
        return not readable

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()


def _set_timeout(sock: socket.socket | None, seconds: float | None) -> None:
    """Only when it changes: each `settimeout` is a system call (httpx's timeouts are usually one value)."""
    if sock is None:
        raise ConnectionResetError("the connection was closed")
    if sock.gettimeout() != seconds:
        sock.settimeout(seconds)


def _failure(
    exc: Exception, request: httpx.Request | None, on_timeout: type[httpx.TimeoutException],
    otherwise: type[httpx.TransportError],
) -> httpx.TransportError:
    """The httpx exception a failure of the socket or of the exchange means (client.py retries them)."""
    if isinstance(exc, TimeoutError):
        failure: httpx.TransportError = on_timeout(str(exc) or "timed out")
    elif isinstance(exc, http.client.IncompleteRead):
        failure = httpx.RemoteProtocolError(
            f"peer closed connection without sending complete message body "
            f"(received {len(exc.partial)} bytes, expected {exc.expected})"
        )
    elif isinstance(exc, http.client.RemoteDisconnected):
        failure = httpx.RemoteProtocolError("Server disconnected without sending a response.")
    elif isinstance(exc, http.client.HTTPException):
        failure = httpx.RemoteProtocolError(f"{type(exc).__name__}: {exc}")
    elif isinstance(exc, OSError):
        failure = otherwise(f"{type(exc).__name__}: {exc}")
    else:
        raise exc
    if request is not None:
        failure.request = request
    return failure


class _Holder:
    """A thread's connection, in the thread's local storage: when the thread ends, the storage is
    dropped, and with it this holder, whose finalizer closes the connection."""

    __slots__ = ("connection", "__weakref__")

    def __init__(self, connection: _Connection) -> None:
        self.connection = connection


class ConnectionPerThread(httpx.BaseTransport):
    """An httpx transport that gives each calling thread its own keep-alive connection."""

    def __init__(self) -> None:
        # one TLS context for every thread's connection: building one loads the CA bundle (~20 ms)
        self._ssl: ssl.SSLContext = httpx.create_ssl_context()
        self._local = threading.local()
        self._open: dict[int, _Connection] = {}
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        holder: _Holder | None = getattr(self._local, "holder", None)
        if holder is None:
            holder = self._local.holder = self._new_holder()
        return holder.connection.send(request)

    def _new_holder(self) -> _Holder:
        connection = _Connection(self._ssl)
        key = id(connection)
        with self._lock:
            self._open[key] = connection
        holder = _Holder(connection)
        weakref.finalize(holder, self._forget, key)
        return holder

    def _forget(self, key: int) -> None:
        with self._lock:
            connection = self._open.pop(key, None)
        if connection is not None:
            connection.close()

    @property
    def connections(self) -> int:
        """The threads' connections still held (each thread holds at most one)."""
        with self._lock:
            return len(self._open)

    def close(self) -> None:
        with self._lock:
            connections, self._open = list(self._open.values()), {}
        for connection in connections:
            connection.close()
