from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from appliance.events import EMOTION_LABELS, Box, Emotions, Frame


def test_emotions_in_model_order() -> None:
    emotions = Emotions.from_values([0.1, 0, 0, 0.6, 0.2, 0, 0.1])
    assert emotions.happy == 0.6
    assert emotions.dominant == "happy"
    assert emotions.confidence == pytest.approx(0.6)
    assert tuple(emotions.as_dict()) == EMOTION_LABELS
    assert emotions.as_tuple() == (0.1, 0, 0, 0.6, 0.2, 0, 0.1)


def test_confidence_is_a_share_for_sums() -> None:
    sums = Emotions(happy=3.0, sad=1.0)
    assert sums.dominant == "happy"
    assert sums.confidence == pytest.approx(0.75)
    assert Emotions().confidence == 0.0


@pytest.mark.parametrize(
    "values", [[0.5] * 6, [0.5] * 8, [-0.1, 0, 0, 1, 0, 0, 0], [math.nan, 0, 0, 1, 0, 0, 0]]
)
def test_bad_emotion_values_are_refused(values: list[float]) -> None:
    with pytest.raises(ValueError, match="emotion"):
        Emotions.from_values(values)


def test_emotions_from_mapping() -> None:
    assert Emotions.from_mapping({"sad": 1.0}).dominant == "sad"
    with pytest.raises(ValueError, match="bored"):
        Emotions.from_mapping({"bored": 1.0})


def test_box_geometry() -> None:
    a = Box(0.0, 0.0, 0.5, 0.5)
    b = Box(0.25, 0.25, 0.5, 0.5)
    assert a.area == 0.25
    assert a.center == (0.25, 0.25)
    assert a.iou(b) == pytest.approx(0.0625 / (0.5 - 0.0625))
    assert a.iou(Box(0.6, 0.6, 0.1, 0.1)) == 0.0
    assert Box(0.1, 0.2, 0.3, 0.4).to_pixels(640, 480) == (64, 96, 192, 192)


def test_events_are_frozen() -> None:
    frame = Frame(np.zeros((4, 6, 3), np.uint8), t=1.0, seq=3, source="test")
    assert (frame.width, frame.height) == (6, 4)
    with pytest.raises(dataclasses.FrozenInstanceError):
        frame.seq = 4  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        Emotions().happy = 1.0  # type: ignore[misc]
