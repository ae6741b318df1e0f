"""Frames never reach disk or the log: after the appliance has watched faces and told
turns (speech to WAV files), nothing in its state or WAV folders is a picture or holds a
frame's pixels, and no log record carries image data."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import cv2
import numpy as np
import pytest

from appliance.camera.image_files import read_rgb
from appliance.daemon import Appliance
from tests.appliance_run.conftest import HAPPY, SAD, appliance_settings, replay_dir
from tests.faults.waiting import wait_until

MAX_LOG_MESSAGE = 4000
"""The longest log message expected (a turn's text is a few hundred characters)."""


def pixels_inside(blob: bytes, frame: np.ndarray) -> bool:
    """Whether a run of a frame's raw pixels (one row) stands in ``blob``."""
    row = frame[frame.shape[0] // 2].tobytes()
    return row[:512] in blob


def test_no_frame_reaches_the_state_or_wav_folders_or_the_log(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    frames = replay_dir(tmp_path, HAPPY, SAD)
    pictures = [read_rgb(p) for p in sorted(frames.iterdir())]
    appliance = Appliance(appliance_settings(tmp_path, frames, seconds_per_image=2.0))
    appliance.start()
    try:
        wait_until(lambda: appliance.teller.turn_count >= 2, 120, "two turns told")
        wait_until(lambda: appliance.frames_perceived >= 60, 60, "frames perceived")
    finally:
        appliance.shutdown()
    written = [
        p for d in (tmp_path / "state", tmp_path / "wav") for p in d.rglob("*") if p.is_file()
    ]
    assert written, "nothing was written: the test proves nothing"
    assert any(p.suffix == ".wav" for p in written)
    for path in written:
        data = path.read_bytes()
        if path.suffix == ".wav":
            assert data[:4] == b"RIFF" and data[8:12] == b"WAVE", path
        else:  # nothing a picture reader can open (JPEG, PNG, WebP, BMP, TIFF, PPM ...)
            picture = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
            assert picture is None, path
        assert not any(pixels_inside(data, frame) for frame in pictures), path
    with sqlite3.connect(tmp_path / "state" / "stories.sqlite3") as db:
        tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            for row in db.execute(f"SELECT * FROM {table}"):
                assert not any(isinstance(v, bytes) and len(v) > 1024 for v in row), table
    for record in caplog.records:
        message = record.getMessage()
        assert "data:image" not in message and len(message) < MAX_LOG_MESSAGE, message[:200]
        assert message.count("\\x") < 16, message[:200]  # no bytes' repr of pixels
        assert not any(pixels_inside(message.encode("latin-1", "replace"), f) for f in pictures)
