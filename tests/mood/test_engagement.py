from __future__ import annotations

import pytest

from appliance.events import Box
from appliance.mood import MoodSettings, MoodTracker
from appliance.mood.facing import is_facing, nose_offset
from tests.mood.scripted_faces import (
    CENTRE,
    T0,
    face,
    frame_times,
    frontal_keypoints,
    play,
    turned_keypoints,
)


def test_engaged_outlasts_a_short_absence_then_flips_at_once() -> None:
    tracker = MoodTracker(MoodSettings(away_after_s=1.5))
    seen = play(tracker, "happy", T0, 2.0)
    last_face_t = seen[-1].t
    for t in frame_times(T0 + 2.0, 3.0, 15):
        before = tracker.current
        mood = tracker.update([], t)
        if t - (T0 + 2.0 - 1 / 15) <= 1.5:
            assert mood is None or mood.engaged
            assert tracker.away_s == 0.0
        elif before is not None and before.engaged:
            # The first frame past away_after_s reports it, off the beat.
            assert mood is not None
            assert not mood.engaged
            assert mood.away_s == pytest.approx(1.5, abs=1 / 15 + 1e-9)
            assert mood.faces == 0
            assert mood.dominant == "happy"
            assert mood.emotions == seen[-1].emotions
    assert tracker.current is not None
    assert not tracker.current.engaged
    assert tracker.away_s > 2.9
    assert tracker.current.t > last_face_t


def test_tick_without_frames_also_lets_the_reader_leave() -> None:
    tracker = MoodTracker(MoodSettings())
    play(tracker, "sad", T0, 1.0)
    left_t = T0 + 1.0 - 1 / 15
    moods = [m for t in frame_times(T0 + 1.0, 4.0, 8) if (m := tracker.tick(t)) is not None]
    flips = [m for m in moods if not m.engaged]
    assert flips
    assert flips[0].t - left_t == pytest.approx(1.5, abs=1 / 8 + 1e-9)
    assert all(m.engaged for m in moods[: moods.index(flips[0])])
    # away_s keeps growing while nobody is there, and the mood is kept.
    assert [m.away_s for m in flips] == sorted(m.away_s for m in flips)
    assert flips[-1].away_s > 3.5
    assert {m.dominant for m in moods} == {"sad"}
    # Still the steady beat while away: about 8 a second.
    assert abs(len(moods) - 4 * 8) <= 2


def test_a_face_turned_away_is_not_engaged() -> None:
    tracker = MoodTracker(MoodSettings())
    moods = []
    for t in frame_times(T0, 2.0, 15):
        mood = tracker.update([face("happy", t, facing=False)], t)
        if mood is not None:
            moods.append(mood)
    assert moods
    assert not any(m.engaged for m in moods)
    assert all(m.faces == 1 for m in moods)
    # Its expression does not steer anything: nothing was established.
    assert moods[-1].dominant == "neutral"
    assert moods[-1].confidence < 0.2


def test_turning_away_for_long_disengages_and_turning_back_reengages_at_once() -> None:
    tracker = MoodTracker(MoodSettings())
    play(tracker, "happy", T0, 1.0)
    moods = []
    for t in frame_times(T0 + 1.0, 2.0, 15):
        if (mood := tracker.update([face("happy", t, facing=False)], t)) is not None:
            moods.append(mood)
    assert moods[0].engaged
    assert not moods[-1].engaged
    assert tracker.away_s > 0
    back_t = T0 + 3.0
    back = tracker.update([face("happy", back_t)], back_t)
    assert back is not None
    assert back.engaged
    assert back.away_s == 0.0
    assert tracker.away_s == 0.0


def test_the_reader_returning_after_the_track_was_dropped_reengages_at_once() -> None:
    tracker = MoodTracker(MoodSettings())
    play(tracker, "happy", T0, 1.0)
    play(tracker, None, T0 + 1.0, 5.0)
    assert tracker.current is not None
    assert not tracker.current.engaged
    mood = tracker.update([face("happy", T0 + 6.0)], T0 + 6.0)
    assert mood is not None
    assert mood.engaged
    assert not mood.shift


def test_nobody_yet_is_not_engaged() -> None:
    tracker = MoodTracker(MoodSettings())
    mood = tracker.tick(T0)
    assert mood is not None
    assert not mood.engaged
    assert mood.faces == 0
    assert mood.dominant == "neutral"
    assert sum(mood.emotions.as_tuple()) == pytest.approx(1.0)
    tracker.tick(T0 + 2.0)
    assert tracker.away_s == pytest.approx(2.0)


def test_facing_from_landmarks() -> None:
    box = Box(0.3, 0.3, 0.3, 0.4)
    assert nose_offset(frontal_keypoints(box)) == pytest.approx(0.0)
    assert is_facing(frontal_keypoints(box), 0.5)
    assert not is_facing(turned_keypoints(box), 0.5)
    # No landmarks: no evidence that the face looks away.
    assert is_facing((), 0.5)
    # A tilted head looking at the device: nose below the eye midpoint, not beside it.
    tilted = ((0.40, 0.40), (0.48, 0.46), (0.41, 0.47))
    assert nose_offset(tilted) == pytest.approx(0.0, abs=1e-9)
    # Nose a fifth of the eye distance aside: a slight turn still counts as facing.
    slight = ((0.40, 0.40), (0.50, 0.40), (0.47, 0.45))
    assert nose_offset(slight) == pytest.approx(0.2)
    assert is_facing(slight, 0.5)


def test_a_face_without_landmarks_is_engaged() -> None:
    tracker = MoodTracker(MoodSettings())
    mood = tracker.update([face("happy", T0, CENTRE, facing=None)], T0)
    assert mood is not None
    assert mood.engaged
    assert mood.dominant == "happy"
