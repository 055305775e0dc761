"""A TCP proxy a test can cut: the way to take a service away without patching code."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Self
from urllib.parse import urlsplit, urlunsplit

from cityops.embedded.process import free_port
from cityops.storage import Database


class CuttableProxy:
    """Forwards 127.0.0.1:<port> to a target; `cut()` drops every connection and refuses new
    ones (as a dead server would), `restore()` lets them through again. `drop_upstream()`
    discards what clients send until the next `cut()`, while the server's bytes still reach
    them: a client whose last words never arrive (killed before its packets left the host)."""

    def __init__(self, target_host: str, target_port: int):
        self.target = (target_host, target_port)
        self.port = free_port()
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._dropping = False

    async def __aenter__(self) -> Self:
        await self.restore()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.cut()

    async def restore(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)

    def drop_upstream(self) -> None:
        self._dropping = True

    async def cut(self) -> None:
        self._dropping = False
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        for task in list(self._pipes):
            task.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)

    async def _accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            server_reader, server_writer = await asyncio.open_connection(*self.target)
        except OSError:
            client_writer.transport.abort()
            return
        self._writers |= {client_writer, server_writer}
        for reader, writer, upstream in ((client_reader, server_writer, True),
                                         (server_reader, client_writer, False)):
            task = asyncio.create_task(self._pipe(reader, writer, upstream))
            self._pipes.add(task)
            task.add_done_callback(self._pipes.discard)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, upstream: bool) -> None:
        try:
            while data := await reader.read(65536):
                if upstream and self._dropping:
                    continue
                writer.write(data)
                await writer.drain()
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            self._writers.discard(writer)
            with contextlib.suppress(Exception):
                writer.transport.abort()


def through(url: str, proxy: CuttableProxy) -> str:
    """`url` (user and password kept) pointed at the proxy instead of its own host and port."""
    parts = urlsplit(url)
    userinfo, _, _ = parts.netloc.rpartition("@")
    host = f"127.0.0.1:{proxy.port}"
    return urlunsplit(parts._replace(netloc=f"{userinfo}@{host}" if userinfo else host))


@contextlib.asynccontextmanager
async def database_behind_proxy(database_url: str) -> AsyncIterator[tuple[Database, CuttableProxy]]:
    """A Database whose connections pass a proxy to the URL's server: cut it to take the database away."""
    parts = urlsplit(database_url)
    async with (CuttableProxy(parts.hostname or "127.0.0.1", parts.port or 5432) as proxy,
                Database.connect(through(database_url, proxy)) as db):
        yield db, proxy
