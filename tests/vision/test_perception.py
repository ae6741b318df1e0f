from __future__ import annotations

import numpy as np

from appliance.events import Frame
from appliance.vision import Perception
from tests.derived_images import astronaut


def test_a_frame_becomes_face_readings(perception: Perception) -> None:
    frame = Frame(astronaut(), t=123.5, seq=42, source="test")
    (reading,) = perception.read(frame)
    assert reading.t == 123.5
    assert reading.frame_seq == 42
    assert reading.emotions.dominant == "happy"
    assert 0.8 < reading.score <= 1.0
    assert len(reading.keypoints) == 6
    assert perception.timings.detect_ms > 0
    assert perception.timings.classify_ms > 0
    assert perception.timings.total_ms >= perception.timings.detect_ms


def test_an_empty_frame_costs_no_classification(perception: Perception) -> None:
    frame = Frame(np.full((480, 640, 3), 30, dtype=np.uint8), t=1.0, seq=1, source="test")
    assert perception.read(frame) == []
    assert perception.timings.detect_ms > 0
    assert perception.timings.classify_ms < perception.timings.detect_ms


def test_perception_accepts_read_only_frames(perception: Perception) -> None:
    image = astronaut()
    image.flags.writeable = False
    assert len(perception.read(Frame(image, 0.0, 0, "test"))) == 1
