"""With no sound device the story keeps to a reader's pace; a shift moves the reader's eyes
to the answer, as it makes the narrator skip the rest of the old turn, so the pace never
runs up a backlog however often the mood changes."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from appliance.daemon import Appliance
from tests.appliance_run.conftest import HAPPY, SAD, appliance_settings, replay_dir
from tests.story.conftest import smol_story

WPM = 200
WATCH_S = 45.0


def test_frequent_shifts_never_pile_up_reading_for_a_text_only_reader(tmp_path: Path) -> None:
    frames = replay_dir(tmp_path, HAPPY, SAD)
    settings = appliance_settings(
        tmp_path,
        frames,
        seconds_per_image=3.0,
        story=smol_story(reading_wpm=WPM, sentences_per_turn=2),
        speech={"output": "none"},
    )
    appliance = Appliance(settings)
    appliance.start()
    try:
        base = f"http://127.0.0.1:{appliance.port}"
        behind: list[float] = []
        deadline = time.monotonic() + WATCH_S
        while time.monotonic() < deadline:
            status = httpx.get(base + "/api/status", timeout=10).json()
            assert status["speech"]["mode"] == "text only"
            behind.append(status["speech"]["behind_s"])
            time.sleep(0.5)
    finally:
        appliance.shutdown()
    assert appliance.teller.turn_count >= 6, "the shifts were answered"
    # At most max_ahead_s, plus the turn being read: two sentences of a small model (80
    # words is generous). Measured: 16.0 s at most; 53.7 s and growing before the fix.
    longest_turn_s = 80 * 60 / WPM
    bound = settings.speech.max_ahead_s + longest_turn_s
    assert max(behind) <= bound, (max(behind), behind[-10:])
