"""HTTP/1.1 requests whose response trailers are read, for Data Science's streaming endpoint.

`/predictWithResponseStream` answers 200 before the model has produced anything; a failure after that arrives
as the HTTP trailer field `StreamFailure` after the last chunk
(https://docs.oracle.com/en-us/iaas/Content/data-science/using/model-dep-response-streaming-endpoint.htm,
"Trailer Header"). requests/urllib3, http.client and aiohttp parse trailers and drop them, so a cut-short stream
looks complete to them. h11 (a sans-IO HTTP/1.1 parser) hands them over in `EndOfMessage.headers`; these
functions only move bytes between a socket and h11.

Requests are signed by any OCI signer (oci/signer.py@2.189.0: a requests auth callable) through
`signed_headers`, so the bytes sent are exactly what the signer signed.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import h11

STREAM_FAILURE = "streamfailure"
_READ_BYTES = 64 * 1024


class HttpStreamError(OSError):
    """The connection failed or the peer broke HTTP/1.1 framing."""


@dataclass
class StreamingResponse:
    """Status and headers at once; body chunks as they come; trailers once the body is complete."""

    status: int
    headers: dict[str, str]
    trailers: dict[str, str] = field(default_factory=dict)
    complete: bool = False

    @property
    def stream_failure(self) -> str | None:
        """The StreamFailure trailer's value, None when the stream ended cleanly."""
        value = self.trailers.get(STREAM_FAILURE)
        return value if value else None


def signed_headers(method: str, url: str, body: bytes, headers: dict[str, str], signer: Any) -> dict[str, str]:
    """Headers of the request as `signer` signs it (date, host, content-length, x-content-sha256, authorization)."""
    import requests

    prepared = requests.Request(method, url, data=body, headers=headers).prepare()
    signed = signer.do_request_sign(prepared) if hasattr(signer, "do_request_sign") else signer(prepared)
    prepared = signed if signed is not None else prepared
    return {str(k): str(v) for k, v in prepared.headers.items()}


def _target(url: str) -> tuple[str, str, int, str]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{url!r} is not an http(s) URL")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return parts.scheme, parts.hostname, port, path


def _request_events(method: str, url: str, body: bytes, headers: dict[str, str]) -> list[Any]:
    _, host, port, path = _target(url)
    names = {k.lower() for k in headers}
    wire = [(k, v) for k, v in headers.items()]
    if "host" not in names:
        wire.append(("Host", host if port in (80, 443) else f"{host}:{port}"))
    if body and "content-length" not in names:
        wire.append(("Content-Length", str(len(body))))
    events: list[Any] = [h11.Request(method=method, target=path, headers=wire)]
    if body:
        events.append(h11.Data(data=body))
    events.append(h11.EndOfMessage())
    return events


def _decode(pairs: list[tuple[bytes, bytes]]) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in pairs}


@contextmanager
def open_request(method: str, url: str, body: bytes, headers: dict[str, str], *,
                 timeout: float) -> Iterator[tuple[StreamingResponse, Iterator[bytes]]]:
    """Send one request; yield (response, body chunks). Trailers are on the response once the chunks run out."""
    scheme, host, port, _ = _target(url)
    conn = h11.Connection(our_role=h11.CLIENT)
    try:
        raw = socket.create_connection((host, port), timeout=timeout)
        sock = ssl.create_default_context().wrap_socket(raw, server_hostname=host) if scheme == "https" else raw
    except OSError as exc:
        raise HttpStreamError(f"cannot connect to {host}:{port}: {exc}") from exc
    try:
        for event in _request_events(method, url, body, headers):
            sock.sendall(conn.send(event))

        def next_event() -> Any:
            # h11 turns an end of input in the middle of a message into RemoteProtocolError.
            while (event := conn.next_event()) is h11.NEED_DATA:
                conn.receive_data(sock.recv(_READ_BYTES))
            return event

        try:
            head = next_event()
            while isinstance(head, h11.InformationalResponse):
                head = next_event()
        except h11.RemoteProtocolError as exc:
            raise HttpStreamError(f"{url}: malformed HTTP response ({exc})") from exc
        response = StreamingResponse(status=head.status_code, headers=_decode(list(head.headers)))

        def chunks() -> Iterator[bytes]:
            try:
                while True:
                    event = next_event()
                    if isinstance(event, h11.Data):
                        yield bytes(event.data)
                    elif isinstance(event, h11.EndOfMessage):
                        response.trailers = _decode(list(event.headers))
                        response.complete = True
                        return
                    elif isinstance(event, h11.ConnectionClosed):
                        return
            except h11.RemoteProtocolError as exc:
                raise HttpStreamError(f"{url}: broken HTTP framing in the response ({exc})") from exc

        yield response, chunks()
    except (OSError, TimeoutError) as exc:
        if isinstance(exc, HttpStreamError):
            raise
        raise HttpStreamError(f"{url}: {type(exc).__name__}: {exc}") from exc
    finally:
        sock.close()


def iter_lines(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Lines without their line ending, across chunk boundaries."""
    pending = b""
    for chunk in chunks:
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            yield line.rstrip(b"\r")
    if pending:
        yield pending.rstrip(b"\r")


# ---------------------------------------------------------------- asyncio, with keep-alive connections


class _AsyncConnection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.h11 = h11.Connection(our_role=h11.CLIENT)

    async def next_event(self, url: str) -> Any:
        while (event := self.h11.next_event()) is h11.NEED_DATA:
            self.h11.receive_data(await self.reader.read(_READ_BYTES))
        return event

    def close(self) -> None:
        self.writer.close()


class AsyncHttpStreamPool:
    """Keep-alive HTTP/1.1 connections per host for concurrent streaming requests (a benchmark's load)."""

    def __init__(self, max_connections: int = 256) -> None:
        self.max_connections = max_connections
        self._idle: dict[tuple[str, str, int], list[_AsyncConnection]] = {}
        self._slots = asyncio.Semaphore(max_connections)

    async def _connect(self, scheme: str, host: str, port: int) -> _AsyncConnection:
        context = ssl.create_default_context() if scheme == "https" else None
        reader, writer = await asyncio.open_connection(host, port, ssl=context,
                                                       server_hostname=host if context else None)
        return _AsyncConnection(reader, writer)

    @asynccontextmanager
    async def request(self, method: str, url: str, body: bytes,
                      headers: dict[str, str]) -> AsyncIterator[tuple[StreamingResponse, AsyncIterator[bytes]]]:
        scheme, host, port, _ = _target(url)
        key = (scheme, host, port)
        async with self._slots:
            idle = self._idle.setdefault(key, [])
            conn = idle.pop() if idle else None
            try:
                if conn is None:
                    conn = await self._connect(scheme, host, port)
                for event in _request_events(method, url, body, headers):
                    conn.writer.write(conn.h11.send(event))
                await conn.writer.drain()
                head = await conn.next_event(url)
                while isinstance(head, h11.InformationalResponse):
                    head = await conn.next_event(url)
                if not isinstance(head, h11.Response):
                    raise HttpStreamError(f"{url}: the connection closed before a response arrived")
                response = StreamingResponse(status=head.status_code, headers=_decode(list(head.headers)))

                async def chunks() -> AsyncIterator[bytes]:
                    while True:
                        try:
                            event = await conn.next_event(url)
                        except h11.RemoteProtocolError as exc:
                            raise HttpStreamError(f"{url}: broken HTTP framing in the response ({exc})") from exc
                        if isinstance(event, h11.Data):
                            yield bytes(event.data)
                        elif isinstance(event, h11.EndOfMessage):
                            response.trailers = _decode(list(event.headers))
                            response.complete = True
                            return
                        elif isinstance(event, h11.ConnectionClosed):
                            return

                yield response, chunks()
            except h11.RemoteProtocolError as exc:
                if conn is not None:
                    conn.close()
                raise HttpStreamError(f"{url}: broken HTTP framing in the response ({exc})") from exc
            except BaseException:
                if conn is not None:
                    conn.close()
                raise
            if (response.complete and conn.h11.our_state is h11.DONE and conn.h11.their_state is h11.DONE):
                conn.h11.start_next_cycle()
                idle.append(conn)
            else:
                conn.close()

    async def close(self) -> None:
        for idle in self._idle.values():
            for conn in idle:
                conn.close()
        self._idle.clear()


async def aiter_lines(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    pending = b""
    async for chunk in chunks:
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            yield line.rstrip(b"\r")
    if pending:
        yield pending.rstrip(b"\r")
