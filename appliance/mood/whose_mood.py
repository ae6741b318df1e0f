"""Whose expression counts: one reader, or the whole crowd."""

from __future__ import annotations

import math
from collections.abc import Sequence

from appliance.mood.face_tracks import FaceTrack
from appliance.mood.smoothing import normalised

CENTRE_FALLOFF = 0.25
"""Distance from the picture's centre (in picture widths) at which a face's claim to be the
reader halves: the person holding the device sits in front of it, bystanders to the side."""


def reader_score(track: FaceTrack) -> float:
    """Big and central wins: the reader is close to the device and in front of it."""
    cx, cy = track.box.center
    distance = math.hypot(cx - 0.5, cy - 0.5)
    return track.box.area / (1.0 + (distance / CENTRE_FALLOFF) ** 2)


class ReaderChoice:
    """Remembers the reader, so that two similar faces do not take turns at being it."""

    def __init__(self, switch_ratio: float) -> None:
        self._switch_ratio = switch_ratio
        self._reader_id: int | None = None

    @property
    def reader_id(self) -> int | None:
        return self._reader_id

    def choose(self, candidates: Sequence[FaceTrack]) -> FaceTrack | None:
        if not candidates:
            return None
        best = max(candidates, key=reader_score)
        current = next((c for c in candidates if c.track_id == self._reader_id), None)
        if current is not None and reader_score(best) <= reader_score(current) * self._switch_ratio:
            return current
        self._reader_id = best.track_id
        return best


def crowd_average(candidates: Sequence[FaceTrack]) -> list[float] | None:
    """Weighted by box area x detector score: a near, clearly seen face says more than a
    small, doubtful one at the back."""
    totals: list[float] | None = None
    for track in candidates:
        if track.emotions is None:
            continue
        weight = track.box.area * track.score
        if weight <= 0.0:
            continue
        if totals is None:
            totals = [0.0] * len(track.emotions)
        for i, value in enumerate(track.emotions):
            totals[i] += value * weight
    return None if totals is None else normalised(totals)
