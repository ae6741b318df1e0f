from __future__ import annotations

from appliance.events import EMOTION_LABELS, Box
from appliance.mood import MoodSettings, MoodTracker
from appliance.mood.face_tracks import FaceTracks
from tests.mood.scripted_faces import T0, face, frame_times


def test_two_faces_moving_slowly_keep_their_identities() -> None:
    tracks = FaceTracks(MoodSettings())
    ids: dict[str, int] | None = None
    for n, t in enumerate(frame_times(T0, 3.0, 15)):
        step = 0.004 * n  # they walk towards each other, 0.06 of the picture per second
        left = face("happy", t, Box(0.05 + step, 0.3, 0.2, 0.3))
        right = face("sad", t, Box(0.75 - step, 0.35, 0.2, 0.3))
        # The detector's order means nothing: alternate it.
        tracks.observe([left, right] if n % 2 else [right, left], t)
        by_label = {}
        for track in tracks.tracks:
            assert track.emotions is not None
            by_label[EMOTION_LABELS[max(range(7), key=track.emotions.__getitem__)]] = track.track_id
        if ids is None:
            ids = by_label
        assert by_label == ids
    assert len(tracks.tracks) == 2


def test_a_face_gone_longer_than_the_timeout_is_dropped() -> None:
    tracks = FaceTracks(MoodSettings(track_timeout_s=1.0))
    tracks.observe([face("happy", T0)], T0)
    [first] = tracks.tracks
    tracks.forget_stale(T0 + 0.9)
    assert [t.track_id for t in tracks.tracks] == [first.track_id]
    tracks.forget_stale(T0 + 1.1)
    assert tracks.tracks == []
    tracks.observe([face("happy", T0 + 1.2)], T0 + 1.2)
    [again] = tracks.tracks
    assert again.track_id != first.track_id


def test_a_face_that_returns_within_the_timeout_is_the_same_track() -> None:
    tracks = FaceTracks(MoodSettings())
    tracks.observe([face("happy", T0)], T0)
    [first] = tracks.tracks
    tracks.forget_stale(T0 + 0.8)
    tracks.observe([face("happy", T0 + 0.8)], T0 + 0.8)
    assert [t.track_id for t in tracks.tracks] == [first.track_id]


def run_two_faces(tracker: MoodTracker, big: Box, small: Box, seconds: float = 1.0) -> str:
    mood = None
    for t in frame_times(T0, seconds, 15):
        mood = tracker.update([face("happy", t, small), face("sad", t, big)], t) or mood
    assert mood is not None
    return mood.dominant


def test_the_reader_is_the_large_central_face() -> None:
    centre_small = Box(0.4, 0.4, 0.2, 0.2)
    centre_large = Box(0.3, 0.25, 0.4, 0.5)
    side = Box(0.0, 0.3, 0.2, 0.2)
    # The bigger of two central faces wins.
    assert run_two_faces(MoodTracker(MoodSettings()), big=centre_large, small=centre_small) == "sad"
    # Of two equal faces, the central one wins even when listed second.
    tracker = MoodTracker(MoodSettings())
    mood = None
    for t in frame_times(T0, 1.0, 15):
        mood = tracker.update([face("happy", t, side), face("sad", t, centre_small)], t) or mood
    assert mood is not None
    assert mood.dominant == "sad"
    assert mood.faces == 2


def test_the_reader_does_not_flip_between_two_similar_faces() -> None:
    tracker = MoodTracker(MoodSettings())
    readers = set()
    moods = []
    for n, t in enumerate(frame_times(T0, 5.0, 15)):
        # Two people side by side; detector jitter makes each look a little bigger in turn.
        wobble = 0.01 if n % 2 else -0.01
        left = face("happy", t, Box(0.2, 0.3, 0.25 + wobble, 0.3 + wobble))
        right = face("sad", t, Box(0.55, 0.3, 0.25 - wobble, 0.3 - wobble))
        mood = tracker.update([left, right], t)
        readers.add(tracker.reader_id)
        if mood is not None:
            moods.append(mood)
    assert len(readers) == 1
    assert {m.dominant for m in moods} == {moods[0].dominant}
    assert not any(m.shift for m in moods)


def test_a_clearly_better_face_takes_over_as_reader() -> None:
    tracker = MoodTracker(MoodSettings())
    side = Box(0.0, 0.35, 0.15, 0.2)
    near = Box(0.25, 0.15, 0.5, 0.7)
    moods = []
    for t in frame_times(T0, 1.0, 15):
        moods += [m for m in [tracker.update([face("happy", t, side)], t)] if m]
    for t in frame_times(T0 + 1.0, 2.0, 15):
        readings = [face("happy", t, side), face("sad", t, near)]
        moods += [m for m in [tracker.update(readings, t)] if m]
    assert moods[0].dominant == "happy"
    assert moods[-1].dominant == "sad"
    assert sum(m.shift for m in moods) == 1
