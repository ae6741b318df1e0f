"""A client of the page's event stream over real HTTP, reading in its own thread and
noting when each event arrived (stdlib only: the benchmark runs on the device)."""

from __future__ import annotations

import contextlib
import http.client
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ReceivedEvent:
    at: float
    """time.monotonic() when the event had been read."""
    kind: str
    data: dict[str, Any]


class SSEReader(threading.Thread):
    def __init__(self, host: str, port: int, path: str = "/api/events") -> None:
        super().__init__(name="sse-reader", daemon=True)
        self.host, self.port, self.path = host, port, path
        self.events: list[ReceivedEvent] = []
        self.received = 0
        """Events read so far (``forget`` does not reset it)."""
        self.connected = threading.Event()
        self.error: Exception | None = None
        self._closing = False
        self._changed = threading.Condition()
        self._connection: http.client.HTTPConnection | None = None

    def run(self) -> None:
        try:
            self._connection = http.client.HTTPConnection(self.host, self.port, timeout=60)
            self._connection.request("GET", self.path, headers={"Accept": "text/event-stream"})
            response = self._connection.getresponse()
            if response.status != 200:
                raise RuntimeError(f"event stream answered {response.status}")
            self.connected.set()
            kind, data = "message", ""
            while not self._closing:
                raw = response.fp.readline() if response.fp else b""
                if not raw:
                    return
                line = raw.decode().rstrip("\r\n")
                if line.startswith("event:"):
                    kind = line[6:].strip()
                elif line.startswith("data:"):
                    data += line[5:].strip()
                elif not line and data:
                    event = ReceivedEvent(time.monotonic(), kind, json.loads(data))
                    with self._changed:
                        self.events.append(event)
                        self.received += 1
                        self._changed.notify_all()
                    kind, data = "message", ""
        except Exception as exc:
            if not self._closing:
                self.error = exc
        finally:
            self.connected.set()

    def wait_for(
        self, test: Callable[[list[ReceivedEvent]], bool], timeout: float
    ) -> list[ReceivedEvent]:
        deadline = time.monotonic() + timeout
        with self._changed:
            while not test(self.events):
                left = deadline - time.monotonic()
                if left <= 0 or not self.is_alive():
                    raise TimeoutError(
                        f"not seen within {timeout} s; last events: "
                        f"{[(e.kind, e.data) for e in self.events[-8:]]}; error: {self.error}"
                    )
                self._changed.wait(min(left, 0.5))
            return list(self.events)

    def forget(self) -> None:
        """Drop the events kept so far (a long run keeps reading without growing)."""
        with self._changed:
            self.events.clear()

    def close(self) -> None:
        self._closing = True
        if self._connection is not None and self._connection.sock is not None:
            with contextlib.suppress(OSError):
                self._connection.sock.shutdown(2)
