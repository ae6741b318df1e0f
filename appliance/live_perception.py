"""``moodtale run`` until the whole appliance exists: perception live on the configured
frame source, printing each face's dominant emotion when it changes."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from appliance.camera import build_frame_source
from appliance.camera.capture import CaptureThread
from appliance.camera.newest_frame import NewestFrameSlot
from appliance.camera.source import SourceExhaustedError
from appliance.events import FaceReading
from appliance.settings import Settings
from appliance.vision import Perception

log = logging.getLogger(__name__)

STATS_EVERY_S = 30.0
MAX_BACKOFF_S = 30.0


def describe_faces(readings: list[FaceReading]) -> str:
    if not readings:
        return "no face"
    return "; ".join(
        f"face {i}: {r.emotions.dominant} ({r.emotions.confidence:.2f})"
        for i, r in enumerate(readings, start=1)
    )


def run_live_perception(
    settings: Settings,
    perception: Perception,
    stop: threading.Event,
    emit: Callable[[str], None] = print,
) -> int:
    slot = NewestFrameSlot()
    backoff = 1.0

    def start_capture() -> CaptureThread:
        thread = CaptureThread(lambda: build_frame_source(settings.camera), slot, stop)
        thread.start()
        return thread

    capture = start_capture()
    shown: list[str] | None = None
    processed = 0
    stats_at = time.monotonic() + STATS_EVERY_S
    try:
        while not stop.is_set():
            if not capture.is_alive():
                if isinstance(capture.error, SourceExhaustedError):
                    emit("the replay has ended")
                    return 0
                # The source failed (camera unplugged, file gone): try again, backing off.
                log.warning("camera lost; retrying in %.0f s", backoff)
                if stop.wait(backoff):
                    break
                backoff = min(backoff * 2, MAX_BACKOFF_S)
                capture = start_capture()
                continue
            frame = slot.take(timeout=0.5)
            if frame is None:
                continue
            if capture.frames > 10:
                backoff = 1.0
            readings = perception.read(frame)
            processed += 1
            labels = [r.emotions.dominant for r in readings]
            if labels != shown:
                emit(f"[{capture.source_name}] {describe_faces(readings)}")
                shown = labels
            if time.monotonic() >= stats_at:
                stats_at += STATS_EVERY_S
                log.info(
                    "frames captured %d, perceived %d, dropped %d; last frame %.1f ms",
                    capture.frames,
                    processed,
                    slot.dropped,
                    perception.timings.total_ms,
                )
    finally:
        stop.set()
        slot.close()
        capture.join(timeout=3)
    return 0
