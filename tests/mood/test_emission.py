from __future__ import annotations

import random

from appliance.mood import MoodSettings, MoodTracker
from tests.mood.scripted_faces import T0, face, frame_times, play


def test_moods_come_at_the_steady_rate_at_30fps() -> None:
    moods = play(MoodTracker(MoodSettings()), "happy", T0, 5.0, fps=30)
    assert abs(len(moods) - 5 * 8) <= 1


def test_moods_come_at_the_steady_rate_with_irregular_frames() -> None:
    rng = random.Random(3)
    tracker = MoodTracker(MoodSettings(emit_hz=10))
    t, count = T0, 0
    while t < T0 + 5.0:
        count += tracker.update([face("neutral", t)], t) is not None
        t += rng.uniform(1 / 500, 1 / 30)
    assert abs(count - 5 * 10) <= 1


def test_a_fast_camera_does_not_speed_up_the_moods() -> None:
    moods = play(MoodTracker(MoodSettings(emit_hz=4)), "happy", T0, 2.0, fps=500)
    assert abs(len(moods) - 2 * 4) <= 1


def test_no_burst_after_a_stall() -> None:
    tracker = MoodTracker(MoodSettings())
    play(tracker, "happy", T0, 1.0, fps=30)
    moods = play(tracker, "happy", T0 + 3.0, 0.5, fps=30)
    # The first frame after the stall emits; then the beat goes on at 8/s, no catch-up.
    assert abs(len(moods) - 4) <= 1


def test_a_shift_is_emitted_at_once() -> None:
    tracker = MoodTracker(MoodSettings(emit_hz=1))
    moods = play(tracker, "happy", T0, 2.0, fps=15)
    shift_at = None
    for t in frame_times(T0 + 2.0, 2.0, 15):
        mood = tracker.update([face("sad", t)], t)
        if mood is not None:
            if mood.shift:
                shift_at = t
            moods.append(mood)
    [shift] = [m for m in moods if m.shift]
    assert shift.t == shift_at
    previous = moods[moods.index(shift) - 1]
    # Off the one-per-second beat: it did not wait for the next one.
    assert shift.t - previous.t < 0.99
    assert tracker.current is moods[-1]


def test_current_is_the_last_mood_returned() -> None:
    tracker = MoodTracker(MoodSettings())
    assert tracker.current is None
    quiet = 0
    for t in frame_times(T0, 2.0, 15):
        before = tracker.current
        mood = tracker.update([face("happy", t)], t)
        if mood is None:
            quiet += 1
            assert tracker.current is before
        else:
            assert tracker.current is mood
    assert quiet > 0
