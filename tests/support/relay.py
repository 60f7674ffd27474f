"""A TCP relay on 127.0.0.1 that can cut the network without closing a connection.

`Relay(target_port).start()` listens on a free port (`relay.port`) and forwards every
connection to 127.0.0.1:`target_port`, both ways, on an event loop of its own thread (so it
keeps relaying while the test's loop or a blocking call waits). `cut()` stops passing bytes in
both directions: connections stay open, nothing is closed nor reset, data waits (in the
relay's and the kernel's buffers, as TCP would retransmit it) and new connections are accepted
but not forwarded, like a network partition between the two sides. `heal()` lets everything
through again, including what waited. When the target refuses a connection (the broker is
down), the client's connection is closed; when either side closes, so does the other.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from dataclasses import dataclass, field


@dataclass
class Relay:
    target_port: int
    port: int = 0  # 0: a free port, chosen when started
    connections: int = 0  # accepted since start
    bytes_passed: int = 0
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None
    _open: asyncio.Event | None = None
    _server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def is_cut(self) -> bool:
        return self._open is not None and not self._open.is_set()

    def start(self) -> Relay:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name=f"relay-{self.target_port}", daemon=True
        )
        self._thread.start()
        self._call(self._listen())
        return self

    def _call(self, coroutine: object, timeout: float = 10.0) -> None:
        assert self._loop is not None
        asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)  # type: ignore[arg-type]

    async def _listen(self) -> None:
        self._open = asyncio.Event()
        self._open.set()
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = int(self._server.sockets[0].getsockname()[1])

    def cut(self) -> None:
        """Stop passing bytes, both ways, keeping every connection open."""
        self._call(self._set(False))

    def heal(self) -> None:
        """Pass bytes again (what waited during the cut first)."""
        self._call(self._set(True))

    async def _set(self, flowing: bool) -> None:
        assert self._open is not None
        if flowing:
            self._open.set()
        else:
            self._open.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None and self._open is not None
        self._tasks.add(task)
        self.connections += 1
        upstream: asyncio.StreamWriter | None = None
        try:
            await self._open.wait()  # a connection made during a cut hangs, unanswered
            try:
                up_reader, upstream = await asyncio.open_connection("127.0.0.1", self.target_port)
            except OSError:
                return  # the target is down: the client sees its connection closed
            await asyncio.gather(self._pipe(reader, upstream), self._pipe(up_reader, writer))
        finally:
            for side in (writer, upstream):
                if side is not None:
                    side.close()
            self._tasks.discard(task)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert self._open is not None
        try:
            while True:
                await self._open.wait()
                data = await reader.read(65536)
                if not data:
                    break
                await self._open.wait()  # bytes read just before a cut wait for the heal
                writer.write(data)
                await writer.drain()
                self.bytes_passed += len(data)
        except OSError:
            pass
        finally:
            writer.close()  # the other direction then reads EOF and ends too

    def close(self) -> None:
        """Close every connection and the listening socket, and stop the thread."""
        if self._loop is None or self._thread is None:
            return
        with contextlib.suppress(Exception):
            self._call(self._shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        if not self._thread.is_alive():
            self._loop.close()
        self._loop = self._thread = None

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def __enter__(self) -> Relay:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()
