from __future__ import annotations

import pytest

from appliance.events import Box, Mood
from appliance.mood import MoodSettings, MoodTracker
from tests.mood.scripted_faces import T0, face, frame_times

BIG = Box(0.05, 0.2, 0.4, 0.5)
SMALL = Box(0.65, 0.3, 0.2, 0.25)


def crowd(happy_box: Box, sad_box: Box, *, sad_facing: bool = True) -> Mood:
    tracker = MoodTracker(MoodSettings(mode="crowd"))
    mood = None
    for t in frame_times(T0, 1.0, 15):
        readings = [face("happy", t, happy_box), face("sad", t, sad_box, facing=sad_facing)]
        mood = tracker.update(readings, t) or mood
    assert mood is not None
    return mood


def test_the_crowd_mood_is_the_weighted_mix() -> None:
    mood = crowd(BIG, SMALL)
    big, small = BIG.area * 0.9, SMALL.area * 0.9
    assert mood.emotions.happy == pytest.approx(big / (big + small))
    assert mood.emotions.sad == pytest.approx(small / (big + small))
    assert sum(mood.emotions.as_tuple()) == pytest.approx(1.0)
    assert mood.dominant == "happy"
    assert mood.faces == 2
    assert mood.engaged


def test_the_dominant_follows_the_weighted_majority() -> None:
    assert crowd(SMALL, BIG).dominant == "sad"


def test_faces_turned_away_do_not_count_in_the_crowd() -> None:
    mood = crowd(SMALL, BIG, sad_facing=False)
    assert mood.dominant == "happy"
    assert mood.emotions.happy == pytest.approx(1.0)
