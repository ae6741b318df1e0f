"""Faces followed from frame to frame, each with its own smoothed expression.

Smoothing per person (not per frame) matters as soon as two people are in view: averaging
whatever faces a frame happens to hold would mix them and jump when one is missed.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from appliance.events import Box, FaceReading
from appliance.mood.facing import is_facing
from appliance.mood.settings import MoodSettings
from appliance.mood.smoothing import blend_into, blend_weight, probabilities


@dataclass(slots=True)
class FaceTrack:
    """One person as seen so far."""

    track_id: int
    box: Box
    score: float
    emotions: list[float] | None
    """Smoothed probabilities in ``EMOTION_LABELS`` order; None until a reading carried any."""
    reading_t: float
    """Timestamp of the last reading folded into ``emotions`` (the smoothing clock)."""
    last_seen_t: float
    facing: bool
    last_facing_t: float | None

    def attentive(self, t: float, away_after_s: float) -> bool:
        """Facing now or recently enough that a glance aside does not count as leaving."""
        return self.last_facing_t is not None and t - self.last_facing_t <= away_after_s


class FaceTracks:
    """Matches each frame's faces to the tracks by box overlap, greedily best first.

    Greedy is enough: with a handful of faces that do not jump across the picture between
    frames, the best overlap is almost always the right pairing.
    """

    def __init__(self, settings: MoodSettings) -> None:
        self._settings = settings
        self._tracks: list[FaceTrack] = []
        self._ids = itertools.count(1)

    @property
    def tracks(self) -> list[FaceTrack]:
        return self._tracks

    def forget_stale(self, t: float) -> None:
        timeout = self._settings.track_timeout_s
        self._tracks = [track for track in self._tracks if t - track.last_seen_t <= timeout]

    def observe(self, readings: list[FaceReading], t: float) -> list[FaceTrack]:
        """Fold one frame's readings into the tracks; returns the tracks this frame saw."""
        if not readings:
            return []
        min_iou = self._settings.track_iou
        pairs = [
            (iou, r, k)
            for r, reading in enumerate(readings)
            for k, track in enumerate(self._tracks)
            if (iou := reading.box.iou(track.box)) >= min_iou
        ]
        pairs.sort(key=lambda pair: pair[0], reverse=True)
        matched_readings: set[int] = set()
        matched_tracks: set[int] = set()
        seen: list[FaceTrack] = []
        for _, r, k in pairs:
            if r in matched_readings or k in matched_tracks:
                continue
            matched_readings.add(r)
            matched_tracks.add(k)
            self._fold(self._tracks[k], readings[r], t)
            seen.append(self._tracks[k])
        for r, reading in enumerate(readings):
            if r not in matched_readings:
                track = self._start(reading, t)
                self._tracks.append(track)
                seen.append(track)
        return seen

    def _start(self, reading: FaceReading, t: float) -> FaceTrack:
        facing = is_facing(reading.keypoints, self._settings.facing_max_nose_offset)
        return FaceTrack(
            track_id=next(self._ids),
            box=reading.box,
            score=reading.score,
            emotions=probabilities(reading.emotions),
            reading_t=reading.t,
            last_seen_t=t,
            facing=facing,
            last_facing_t=t if facing else None,
        )

    def _fold(self, track: FaceTrack, reading: FaceReading, t: float) -> None:
        track.box = reading.box
        track.score = reading.score
        track.last_seen_t = t
        track.facing = is_facing(reading.keypoints, self._settings.facing_max_nose_offset)
        if track.facing:
            track.last_facing_t = t
        values = probabilities(reading.emotions)
        if values is None:
            return
        if track.emotions is None:
            track.emotions = values
        else:
            weight = blend_weight(reading.t - track.reading_t, self._settings.half_life_s)
            blend_into(track.emotions, values, weight)
        track.reading_t = max(track.reading_t, reading.t)
