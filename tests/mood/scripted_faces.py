"""Scripted face readings: what perception would report, without a camera or a model."""

from __future__ import annotations

from collections.abc import Iterator

from appliance.events import EMOTION_LABELS, Box, Emotions, FaceReading, Mood
from appliance.mood import MoodTracker

T0 = 1000.0
"""Scripts start well away from zero, as time.monotonic() does."""

CENTRE = Box(0.35, 0.3, 0.3, 0.4)


def emotions(label: str, strength: float = 1.0) -> Emotions:
    """``label`` at ``strength``, the rest spread evenly (a classifier is never sure)."""
    rest = (1.0 - strength) / (len(EMOTION_LABELS) - 1)
    return Emotions.from_mapping(
        {name: strength if name == label else rest for name in EMOTION_LABELS}
    )


def frontal_keypoints(box: Box) -> tuple[tuple[float, float], ...]:
    """BlazeFace's six landmarks for a face looking straight at the camera."""
    cx, cy = box.center
    w, h = box.w, box.h
    return (
        (cx - 0.2 * w, cy - 0.15 * h),
        (cx + 0.2 * w, cy - 0.15 * h),
        (cx, cy),
        (cx, cy + 0.2 * h),
        (cx - 0.45 * w, cy - 0.1 * h),
        (cx + 0.45 * w, cy - 0.1 * h),
    )


def turned_keypoints(box: Box) -> tuple[tuple[float, float], ...]:
    """The same face turned well aside (nearly in profile, about 70°): the eyes close up
    and the nose sits far off to one side (1.5 eye distances from their midpoint)."""
    cx, cy = box.center
    w, h = box.w, box.h
    return (
        (cx - 0.05 * w, cy - 0.15 * h),
        (cx + 0.15 * w, cy - 0.15 * h),
        (cx + 0.35 * w, cy),
        (cx + 0.15 * w, cy + 0.2 * h),
        (cx - 0.4 * w, cy - 0.1 * h),
        (cx + 0.3 * w, cy - 0.1 * h),
    )


def face(
    label: str,
    t: float,
    box: Box = CENTRE,
    *,
    score: float = 0.9,
    strength: float = 1.0,
    facing: bool | None = True,
) -> FaceReading:
    """``facing=None``: a detector that gives no landmarks."""
    if facing is None:
        keypoints: tuple[tuple[float, float], ...] = ()
    else:
        keypoints = frontal_keypoints(box) if facing else turned_keypoints(box)
    return FaceReading(
        box=box, score=score, emotions=emotions(label, strength), t=t, keypoints=keypoints
    )


def frame_times(start: float, seconds: float, fps: float) -> Iterator[float]:
    """Frame times in [start, start + seconds), computed (not accumulated) to stay exact."""
    n = 0
    while (t := start + n / fps) < start + seconds - 1e-9:
        yield t
        n += 1


def play(
    tracker: MoodTracker, label: str | None, start: float, seconds: float, fps: float = 15.0
) -> list[Mood]:
    """Feed one centred face showing ``label`` (None: no face) and collect the moods."""
    moods = []
    for t in frame_times(start, seconds, fps):
        readings = [] if label is None else [face(label, t)]
        mood = tracker.update(readings, t)
        if mood is not None:
            moods.append(mood)
    return moods
