"""A lean HTTP/1.1 GET client for load generation: keep-alive connections from a FIFO pool.

httpx is the right client everywhere else, but as a load generator on two cores it costs
more CPU per request than the API it measures, and its pool rescans every waiting request
on each change, so once requests queue the client falls further behind by itself. This
one does only what the benchmark needs: GET, a fixed set of headers, a body read by
Content-Length or chunked encoding, connections reused first in, first out.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from urllib.parse import urlsplit


class LoadError(Exception):
    """A request that got no complete answer (connection refused or closed, malformed reply)."""


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes


def request_bytes(host: str, path: str, headers: dict[str, str]) -> bytes:
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}", "Connection: keep-alive",
             *(f"{k}: {v}" for k, v in headers.items()), "", ""]
    return "\r\n".join(lines).encode("latin-1")


def parse_head(head: bytes) -> tuple[int, dict[str, str]]:
    """(status, lower-cased headers) from a response head without its blank line."""
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise LoadError(f"not an HTTP/1.x status line: {lines[0][:80]!r}")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(parts[1]), headers


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer
        self.closed = False

    async def get(self, request: bytes) -> Reply:
        self.writer.write(request)
        try:
            head = await self.reader.readuntil(b"\r\n\r\n")
            status, headers = parse_head(head[:-4])
            if "content-length" in headers:
                body = await self.reader.readexactly(int(headers["content-length"]))
            elif headers.get("transfer-encoding", "").lower() == "chunked":
                body = await self._chunked()
            else:
                raise LoadError("a reply with neither Content-Length nor chunked encoding")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, ValueError) as exc:
            self.close()
            raise LoadError(f"{type(exc).__name__}: {exc}") from None
        if headers.get("connection", "").lower() == "close":
            self.close()
        return Reply(status, body)

    async def _chunked(self) -> bytes:
        parts: list[bytes] = []
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
            chunk = await self.reader.readexactly(size + 2)
            if size == 0:
                return b"".join(parts)
            parts.append(chunk[:-2])

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.writer.close()


class Client:
    """GET over at most `connections` keep-alive connections; callers wait their turn in order.

    The pool is a FIFO of slots: an open connection, or None for one to open when taken."""

    def __init__(self, base_url: str, *, connections: int = 64, headers: dict[str, str] | None = None,
                 timeout_s: float = 10.0):
        url = urlsplit(base_url)
        self.host, self.port = url.hostname or "127.0.0.1", url.port or 80
        self.headers = headers or {}
        self.timeout_s = timeout_s
        self._slots: asyncio.Queue[Connection | None] = asyncio.Queue()
        for _ in range(connections):
            self._slots.put_nowait(None)
        self._requests: dict[str, bytes] = {}

    async def get(self, path: str) -> Reply:
        """The reply; LoadError when none came within the timeout (waiting for a connection included)."""
        try:
            return await asyncio.wait_for(self._get(path), self.timeout_s)
        except TimeoutError:
            raise LoadError(f"no answer within {self.timeout_s:g} s") from None

    async def _get(self, path: str) -> Reply:
        request = self._requests.get(path)
        if request is None:
            request = self._requests[path] = request_bytes(f"{self.host}:{self.port}", path, self.headers)
        conn = await self._slots.get()
        try:
            if conn is None:
                try:
                    conn = Connection(*await asyncio.open_connection(self.host, self.port))
                except OSError as exc:
                    raise LoadError(f"cannot connect: {exc}") from None
            reply = await conn.get(request)
        except BaseException:   # a timeout mid-reply leaves the connection unusable: close it
            if conn is not None:
                conn.close()
            self._slots.put_nowait(None)
            raise
        self._slots.put_nowait(None if conn.closed else conn)
        return reply

    async def close(self) -> None:
        while not self._slots.empty():
            conn = self._slots.get_nowait()
            if conn is not None:
                conn.close()
