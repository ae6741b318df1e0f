"""The whole appliance, in-process, on replayed frames with the real models."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.camera.replay import SAMPLE_FRAMES_DIR
from appliance.daemon import Appliance
from appliance.settings import Settings
from tests.story.conftest import smol_story

HAPPY = "01-astronaut.jpg"
SAD = "02-cameraman.jpg"
EMPTY = "03-empty-room.jpg"


def replay_dir(tmp_path: Path, *names: str) -> Path:
    """Sample frames in this order (a replay plays a folder in name order)."""
    frames = tmp_path / "frames"
    frames.mkdir(exist_ok=True)
    for i, name in enumerate(names):
        shutil.copy(SAMPLE_FRAMES_DIR / name, frames / f"{i:02d}-{name}")
    return frames


def appliance_settings(
    tmp_path: Path, frames: Path, seconds_per_image: float = 6.0, **changes: object
) -> Settings:
    story = changes.pop("story", None) or smol_story(reading_wpm=0, sentences_per_turn=2)
    values: dict[str, object] = {
        "state_dir": tmp_path / "state",
        "camera": {
            "type": "replay",
            "replay": {"path": frames, "fps": 15.0, "seconds_per_image": seconds_per_image},
        },
        "story": story,
        "speech": {"output": "wav", "wav_dir": tmp_path / "wav"},
        "web": {"host": "127.0.0.1", "port": 0},
        **changes,
    }
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Appliance]:
    """Happy for 6 s, then sad for 6 s, looping; serving on a free port."""
    frames = replay_dir(tmp_path, HAPPY, SAD)
    appliance = Appliance(appliance_settings(tmp_path, frames))
    appliance.start()
    try:
        yield appliance
    finally:
        appliance.shutdown()
