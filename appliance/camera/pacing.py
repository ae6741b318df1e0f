"""Delivering recorded frames at a target rate, as a camera would."""

from __future__ import annotations

import time
from collections.abc import Callable


class FramePacer:
    """Sleeps until the next frame is due.

    After a stall (a paused process, a slow disk) the schedule restarts from now
    instead of bursting frames to catch up: a camera does not deliver the past.
    """

    def __init__(
        self,
        fps: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if fps <= 0:
            raise ValueError(f"fps must be > 0, got {fps}")
        self.interval = 1.0 / fps
        self._clock = clock
        self._sleep = sleep
        self._next_due: float | None = None

    def wait(self) -> float:
        """Wait for the next slot and return its monotonic timestamp."""
        now = self._clock()
        if self._next_due is None or now - self._next_due > self.interval:
            self._next_due = now
        delay = self._next_due - now
        if delay > 0:
            self._sleep(delay)
        self._next_due += self.interval
        return self._clock()
