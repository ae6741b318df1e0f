"""Face readings folded into one ``MoodSummary`` per wall-clock second.

Called from the perception thread, so it does arithmetic only: no I/O, one short lock.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence

from appliance.events import EMOTION_LABELS, Emotions, FaceReading, MoodSummary

STALE_S = 2.0
"""A second still open when no frame has come for this long is finished without one."""


class PerSecondRollup:
    """Sums the readings of the second being seen; hands a summary on when it ends.

    A second ends when a frame of another second arrives, when no frame has come for
    ``STALE_S`` (``finish_stale``), or at ``finish``. A second without frames gives no
    summary; a second whose frames showed nobody gives one with ``faces == 0``.
    """

    def __init__(
        self,
        venue: str,
        device: str,
        emit: Callable[[MoodSummary], None],
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.venue = venue
        self.device = device
        self._emit = emit
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._second: int | None = None
        self._faces = 0
        self._sums = [0.0] * len(EMOTION_LABELS)
        self._last_frame = 0.0

    def add(self, readings: Sequence[FaceReading], at: float) -> None:
        """One frame's readings, seen at unix time ``at``."""
        if not math.isfinite(at):
            return
        second = math.floor(at)
        with self._lock:
            if self._second is not None and second != self._second:
                self._finish_locked()
            self._second = second
            self._last_frame = self._monotonic()
            for reading in readings:
                self._faces += 1
                for i, value in enumerate(reading.emotions.as_tuple()):
                    self._sums[i] += value

    def finish_stale(self) -> None:
        with self._lock:
            if self._second is not None and self._monotonic() - self._last_frame >= STALE_S:
                self._finish_locked()

    def finish(self) -> None:
        with self._lock:
            if self._second is not None:
                self._finish_locked()

    def _finish_locked(self) -> None:
        assert self._second is not None
        summary = MoodSummary(
            venue=self.venue,
            device=self.device,
            second=self._second,
            faces=self._faces,
            emotion_sums=Emotions.from_values(self._sums),
        )
        self._second, self._faces = None, 0
        self._sums = [0.0] * len(EMOTION_LABELS)
        self._emit(summary)
