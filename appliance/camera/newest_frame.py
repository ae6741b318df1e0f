"""The hand-off between capture and perception: one slot, newest frame wins."""

from __future__ import annotations

import threading

from appliance.events import Frame


class NewestFrameSlot:
    """Holds at most one unread frame.

    The producer never waits: a new frame replaces an unread one and the replaced
    frame is counted as dropped. The consumer always gets the newest frame, never a
    stale one, and never the same frame twice.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._frame: Frame | None = None
        self._closed = False
        self.delivered = 0
        self.dropped = 0

    def put(self, frame: Frame) -> None:
        with self._cond:
            if self._frame is not None:
                self.dropped += 1
            self._frame = frame
            self._cond.notify()

    def take(self, timeout: float) -> Frame | None:
        """The newest unread frame, or None when none arrives within ``timeout`` seconds
        or the slot is closed."""
        with self._cond:
            if self._frame is None and not self._closed:
                self._cond.wait(timeout)
            frame, self._frame = self._frame, None
            if frame is not None:
                self.delivered += 1
            return frame

    def close(self) -> None:
        """Wake any waiting consumer; later ``take`` calls return what is left, then None."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed
