from __future__ import annotations

import random

import pytest

from appliance.events import EMOTION_LABELS, Box
from appliance.mood import MoodSettings
from appliance.mood.face_tracks import FaceTracks
from appliance.mood.smoothing import blend_weight
from tests.mood.scripted_faces import T0, face, frame_times

SAD = EMOTION_LABELS.index("sad")


def sad_after_step(times: list[float], settings: MoodSettings) -> float:
    """One face happy until T0, sad at every later time in ``times``: its smoothed 'sad'."""
    tracks = FaceTracks(settings)
    tracks.observe([face("happy", T0 - 0.1)], T0 - 0.1)
    tracks.observe([face("happy", T0)], T0)
    for t in times:
        tracks.observe([face("sad", t)], t)
    [track] = tracks.tracks
    assert track.emotions is not None
    return track.emotions[SAD]


def test_same_elapsed_time_gives_the_same_mood_at_any_frame_rate() -> None:
    settings = MoodSettings(half_life_s=0.25)
    at_10fps = sad_after_step(list(frame_times(T0 + 0.1, 0.5, 10)), settings)
    at_30fps = sad_after_step(list(frame_times(T0 + 1 / 30, 0.5, 30)), settings)
    # Both end on the frame at T0 + 0.5: two half-lives after the change.
    assert at_10fps == pytest.approx(0.75, abs=1e-6)
    assert at_30fps == pytest.approx(at_10fps, abs=1e-6)


@pytest.mark.parametrize("half_life_s", [0.1, 0.25, 1.0])
def test_after_one_half_life_the_value_is_halfway(half_life_s: float) -> None:
    rng = random.Random(7)
    times, t = [], T0
    while t < T0 + half_life_s:
        t = min(t + rng.uniform(0.002, 0.2), T0 + half_life_s)
        times.append(t)
    sad = sad_after_step(times, MoodSettings(half_life_s=half_life_s))
    assert sad == pytest.approx(0.5, abs=1e-6)


def test_the_first_reading_initialises_and_a_repeated_timestamp_changes_nothing() -> None:
    tracks = FaceTracks(MoodSettings())
    tracks.observe([face("sad", T0, strength=0.7)], T0)
    tracks.observe([face("happy", T0, strength=0.7)], T0)
    [track] = tracks.tracks
    assert track.emotions is not None
    assert track.emotions[SAD] == pytest.approx(0.7)
    assert blend_weight(0.0, 0.25) == 0.0
    assert blend_weight(-1.0, 0.25) == 0.0


def test_readings_that_do_not_sum_to_one_are_normalised() -> None:
    from appliance.events import Emotions, FaceReading

    tracks = FaceTracks(MoodSettings())
    reading = FaceReading(Box(0.4, 0.4, 0.2, 0.2), 0.9, Emotions(happy=3.0, sad=1.0), T0)
    tracks.observe([reading], T0)
    [track] = tracks.tracks
    assert track.emotions is not None
    assert sum(track.emotions) == pytest.approx(1.0)
    assert track.emotions[SAD] == pytest.approx(0.25)
