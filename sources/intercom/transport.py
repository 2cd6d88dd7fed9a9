"""One keep-alive connection per thread, under the HTTP client (client.py).

Why not one httpx pool for all threads: httpcore's pool walks every connection it holds, under one
lock, when a request starts and again when its response closes, and asks each idle connection's
socket whether the server closed it (a `poll`, which releases the GIL). With the 27 readers of a
split contacts search that was about 54 polls a request, 79,000 in a 200,000-contact sync (12,500
with this transport; docs/benchmarks.md). A thread sends one request at a time and reads it to the
end (`_send`), so its own pool of one connection is all it needs, and that pool's walk is one
connection long."""

from __future__ import annotations

import ssl
import threading
import weakref

import httpx


class _Holder:
    """A thread's transport, in the thread's local storage: when the thread ends, the storage is
    dropped, and with it this holder, whose finalizer closes the connection."""

    __slots__ = ("transport", "__weakref__")

    def __init__(self, transport: httpx.HTTPTransport) -> None:
        self.transport = transport


class ConnectionPerThread(httpx.BaseTransport):
    """An httpx transport that gives each calling thread its own keep-alive connection."""

    def __init__(self) -> None:
        # one TLS context for every thread's transport: building one loads the CA bundle (~20 ms)
        self._ssl: ssl.SSLContext = httpx.create_ssl_context()
        self._local = threading.local()
        self._open: dict[int, httpx.HTTPTransport] = {}
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        holder: _Holder | None = getattr(self._local, "holder", None)
        if holder is None:
            holder = self._local.holder = self._new_holder()
        return holder.transport.handle_request(request)

    def _new_holder(self) -> _Holder:
        transport = httpx.HTTPTransport(
            verify=self._ssl, limits=httpx.Limits(max_connections=1, max_keepalive_connections=1)
        )
        key = id(transport)
        with self._lock:
            self._open[key] = transport
        holder = _Holder(transport)
        weakref.finalize(holder, self._forget, key)
        return holder

    def _forget(self, key: int) -> None:
        with self._lock:
            transport = self._open.pop(key, None)
        if transport is not None:
            transport.close()

    @property
    def connections(self) -> int:
        """The threads' transports still open (each holds at most one connection)."""
        with self._lock:
            return len(self._open)

    def close(self) -> None:
        with self._lock:
            transports, self._open = list(self._open.values()), {}
        for transport in transports:
            transport.close()
