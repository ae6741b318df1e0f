"""The camera disappears mid-run and comes back: the real replay source, whose folder
of frames is taken away (as a camera is unplugged) and put back."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

from appliance.camera import build_frame_source
from appliance.camera.source import FrameSource
from appliance.daemon import Appliance
from tests.appliance_run.conftest import HAPPY, SAD, appliance_settings, replay_dir
from tests.faults.waiting import wait_until


def test_a_lost_camera_pauses_the_story_retries_with_backoff_and_comes_back(
    tmp_path: Path,
) -> None:
    frames = replay_dir(tmp_path, HAPPY, SAD)
    settings = appliance_settings(tmp_path, frames, seconds_per_image=0.5)
    opened_at: list[float] = []

    def make_source() -> FrameSource:
        opened_at.append(time.monotonic())
        return build_frame_source(settings.camera)

    appliance = Appliance(settings, make_source=make_source)
    appliance.start()
    try:
        wait_until(lambda: appliance.teller.turn_count >= 1, 120, "a first turn")

        unplugged = frames.rename(tmp_path / "unplugged")  # the next image change fails
        wait_until(lambda: appliance.camera.state == "lost", 10, "camera lost")
        lost_at = time.monotonic()
        status = appliance.status()
        assert any(p.startswith("camera lost") for p in status["problems"]), status["problems"]
        assert status["camera"]["state"] == "lost"
        wait_until(
            lambda: (
                (appliance.story_loop.state, appliance.story_loop.reason)
                == ("paused", "camera lost")
            ),
            60,
            "the story paused for the lost camera",
        )
        turns_paused = appliance.teller.turn_count
        # While lost, the capture worker still beats (the watchdog is fed by beats alone):
        # never more than a second and a half between two, through the retries' waits.
        capture = appliance.supervisor.workers["capture"]
        oldest_beat = 0.0
        watched_until = time.monotonic() + 8
        while time.monotonic() < watched_until:
            oldest_beat = max(oldest_beat, time.monotonic() - capture.last_beat)
            time.sleep(0.05)
        assert oldest_beat < 1.5, f"the capture worker went {oldest_beat:.1f} s without a beat"
        assert appliance.supervisor.all_fresh()
        wait_until(lambda: len([t for t in opened_at if t > lost_at]) >= 3, 15, "3 retries")
        # Backoff: 1 s, then 2 s, then 4 s between tries.
        retries = [t for t in opened_at if t > lost_at]
        gaps = [b - a for a, b in itertools.pairwise(retries)]
        assert gaps[0] >= 1.5, gaps
        assert appliance.teller.turn_count == turns_paused  # nothing told while paused
        assert all(w.alive and w.restarts == 0 for w in appliance.supervisor.workers.values())
        ok, _ = appliance.healthy()
        assert ok

        unplugged.rename(frames)
        wait_until(lambda: appliance.camera.state == "delivering frames", 20, "camera back")
        wait_until(lambda: appliance.teller.turn_count > turns_paused, 120, "the story going on")
        status = appliance.status()
        assert not any("camera" in p for p in status["problems"]), status["problems"]
        assert all(w.restarts == 0 for w in appliance.supervisor.workers.values())
    finally:
        appliance.shutdown()
