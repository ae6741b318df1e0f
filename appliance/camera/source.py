"""The one interface every frame source implements, and its errors."""

from __future__ import annotations

from typing import Protocol

from appliance.events import Frame


class FrameSourceError(RuntimeError):
    """A frame source cannot deliver: the message names the source and the problem."""

    def __init__(self, source: str, problem: str) -> None:
        super().__init__(f"camera source {source}: {problem}")
        self.source = source
        self.problem = problem


class SourceExhaustedError(FrameSourceError):
    """A source that does not loop has delivered its last frame."""


class FrameSource(Protocol):
    """Opened, read and closed by one thread: the capture thread that owns it.

    ``read`` blocks until the next frame is due (cameras pace themselves, a replay
    sleeps) and raises ``FrameSourceError`` when the source can no longer deliver.
    ``close`` is safe to call more than once and after a failed ``open``.
    """

    name: str

    def open(self) -> None: ...

    def read(self) -> Frame: ...

    def close(self) -> None: ...
