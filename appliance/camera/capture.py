"""The capture thread: the one owner of the frame source in use."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from appliance.camera.newest_frame import NewestFrameSlot
from appliance.camera.source import FrameSource, FrameSourceError

log = logging.getLogger(__name__)


class CaptureThread(threading.Thread):
    """Opens the source, reads it as fast as it delivers, and puts every frame in the
    newest-frame slot; it never waits for perception.

    The source is built, opened, read and closed here, in this thread (a Pi camera
    belongs to the thread that opened it). When the source fails the thread records
    the error and ends; whoever owns the thread decides whether to start another.
    """

    def __init__(
        self,
        make_source: Callable[[], FrameSource],
        slot: NewestFrameSlot,
        stop: threading.Event,
        name: str = "capture",
    ) -> None:
        super().__init__(name=name, daemon=True)
        self._make_source = make_source
        self._slot = slot
        self._stop_event = stop
        self.source_name = "?"
        self.frames = 0
        self.error: FrameSourceError | None = None
        self.opened = threading.Event()
        self.started_at = 0.0

    def run(self) -> None:
        source: FrameSource | None = None
        try:
            source = self._make_source()
            self.source_name = source.name
            source.open()
            self.started_at = time.monotonic()
            self.opened.set()
            while not self._stop_event.is_set():
                self._slot.put(source.read())
                self.frames += 1
        except FrameSourceError as exc:
            self.error = exc
            log.warning("%s", exc)
        except Exception as exc:  # the boundary of this worker: report, never die silently
            self.error = FrameSourceError(self.source_name, f"failed: {exc!r}")
            log.exception("capture from %s failed", self.source_name)
        finally:
            if source is not None:
                try:
                    source.close()
                except Exception:
                    log.exception("closing %s failed", self.source_name)
