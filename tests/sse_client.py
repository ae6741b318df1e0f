"""The event-stream client the benchmark uses, for the tests: real HTTP, own thread."""

from __future__ import annotations

from urllib.parse import urlsplit

from appliance.bench.sse_reader import ReceivedEvent, SSEReader


class SSEClient(SSEReader):
    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        super().__init__(parts.hostname or "127.0.0.1", parts.port or 80, parts.path)


__all__ = ["ReceivedEvent", "SSEClient"]
