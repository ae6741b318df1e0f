"""Fan-out of live events from the worker threads to the page's SSE clients.

Workers publish from their own threads; the web server's event loop delivers. Each
client has a bounded queue: a client too slow to keep up is dropped (its browser
reconnects and catches up from ``/api/story``), so a slow phone never holds memory or
slows the pipeline.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

CLIENT_QUEUE = 512
"""Events a client may fall behind by (a turn is ~100 token events) before it is dropped."""


@dataclass(frozen=True, slots=True)
class LiveEvent:
    kind: str
    data: dict[str, Any]


@dataclass(eq=False)
class _Client:
    queue: asyncio.Queue[LiveEvent | None] = field(
        default_factory=lambda: asyncio.Queue(CLIENT_QUEUE)
    )
    dropped: bool = False
    listening: bool = False
    """The page tapped Listen: it gets the narration's audio events."""


class EventHub:
    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._clients: set[_Client] = set()
        self._lock = threading.Lock()
        self.published = 0
        self.clients_dropped = 0
        self._closed = False

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Deliver on this loop (the web server's)."""
        self._loop = loop

    @property
    def client_count(self) -> int:
        return len(self._clients)

    @property
    def listener_count(self) -> int:
        """Pages listening to the narration (any thread)."""
        return sum(1 for client in list(self._clients) if client.listening)

    def publish(self, kind: str, data: dict[str, Any], *, listeners_only: bool = False) -> None:
        """Thread-safe; never blocks. Without a web loop the event goes nowhere.
        ``listeners_only``: to the pages that listen to the narration, not the others."""
        loop = self._loop
        if loop is None or self._closed or not self._clients:
            return
        self.published += 1
        with contextlib.suppress(RuntimeError):  # the loop has closed: shutting down
            loop.call_soon_threadsafe(self._deliver, LiveEvent(kind, data), listeners_only)

    def _deliver(self, event: LiveEvent, listeners_only: bool = False) -> None:
        for client in list(self._clients):
            if listeners_only and not client.listening:
                continue
            try:
                client.queue.put_nowait(event)
            except asyncio.QueueFull:
                self._drop(client)

    def _drop(self, client: _Client) -> None:
        client.dropped = True
        self._clients.discard(client)
        self.clients_dropped += 1
        log.info("an event-stream client fell too far behind; dropped (it will reconnect)")
        # Make room for the end marker so the stream closes now.
        while not client.queue.empty():
            client.queue.get_nowait()
        client.queue.put_nowait(None)

    async def subscribe(
        self, idle_s: float | None = None, *, listening: bool = False
    ) -> AsyncIterator[LiveEvent | None]:
        """The live events from now on, until the client is dropped or the hub closes;
        ``None`` after every ``idle_s`` without one (time for a keep-alive). A
        ``listening`` client also gets the narration's audio events."""
        client = _Client(listening=listening)
        self._clients.add(client)
        try:
            while True:
                try:
                    async with asyncio.timeout(idle_s):
                        event = await client.queue.get()
                except TimeoutError:
                    yield None
                    continue
                if event is None:
                    return
                yield event
        finally:
            self._clients.discard(client)

    def close(self) -> None:
        """End every stream (shutdown)."""
        self._closed = True
        loop = self._loop
        if loop is None:
            return

        def end_all() -> None:
            for client in list(self._clients):
                self._clients.discard(client)
                while not client.queue.empty():
                    client.queue.get_nowait()
                client.queue.put_nowait(None)

        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(end_all)
