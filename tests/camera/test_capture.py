from __future__ import annotations

import threading
import time

from appliance.camera.capture import CaptureThread
from appliance.camera.newest_frame import NewestFrameSlot
from tests.camera.fake_sources import ScriptedSource


def test_a_slow_consumer_never_slows_the_camera() -> None:
    """Perception taking 50 ms a frame does not hold back a 200 fps camera: frames are
    dropped (and counted), and each frame taken is the newest one."""
    source = ScriptedSource(fps=200)
    slot = NewestFrameSlot()
    stop = threading.Event()
    capture = CaptureThread(lambda: source, slot, stop)
    capture.start()
    assert capture.opened.wait(2)
    taken = []
    deadline = time.monotonic() + 0.6
    while time.monotonic() < deadline:
        frame = slot.take(timeout=1)
        assert frame is not None
        # Nothing newer than the frame just taken had been produced when it was taken.
        assert frame.seq >= capture.frames - 2
        taken.append(frame.seq)
        time.sleep(0.05)
    stop.set()
    capture.join(timeout=2)
    assert not capture.is_alive()
    assert taken == sorted(set(taken))  # never stale, never twice
    assert capture.frames > 4 * len(taken)
    assert slot.dropped >= capture.frames - len(taken) - 1
    assert capture.error is None
    assert source.opened_in == source.closed_in == capture.ident


def test_a_failing_source_ends_the_thread_with_its_error() -> None:
    source = ScriptedSource(fail_after=3)
    capture = CaptureThread(lambda: source, NewestFrameSlot(), threading.Event())
    capture.start()
    capture.join(timeout=2)
    assert not capture.is_alive()
    assert capture.frames == 3
    assert capture.error is not None
    assert str(capture.error) == "camera source scripted: stopped delivering frames"
    assert source.close_calls == 1
    assert source.closed_in == capture.ident


def test_an_unexpected_crash_is_reported_as_a_source_error() -> None:
    source = ScriptedSource(fail_after=1, crash=True)
    capture = CaptureThread(lambda: source, NewestFrameSlot(), threading.Event())
    capture.start()
    capture.join(timeout=2)
    assert capture.error is not None
    assert "driver exploded" in str(capture.error)
    assert "scripted" in str(capture.error)
    assert source.close_calls == 1
