"""From per-frame face readings to a steady stream of ``Mood`` values."""

from __future__ import annotations

from appliance.events import EMOTION_LABELS, Emotions, FaceReading, Mood
from appliance.mood.face_tracks import FaceTracks
from appliance.mood.settings import MoodSettings
from appliance.mood.shift_detector import ShiftDetector
from appliance.mood.smoothing import UNIFORM, normalised
from appliance.mood.whose_mood import ReaderChoice, crowd_average

NO_LABEL_YET = "neutral"
"""Reported before any face was seen; its confidence (1/7) says it is a guess."""


class MoodTracker:
    """Owned by the perception thread: call ``update`` once per perceived frame and
    ``tick`` when no frame came, and pass on whatever ``Mood`` they return.

    Moods come at a steady ``emit_hz`` so consumers see a regular pulse, and at once (off
    the beat) when the mood shifts or the reader comes or goes, so the story can react
    without waiting for the next beat.
    """

    def __init__(self, settings: MoodSettings) -> None:
        self._settings = settings
        self._tracks = FaceTracks(settings)
        self._reader = ReaderChoice(settings.reader_switch_ratio)
        self._shifts = ShiftDetector(settings.shift_margin, settings.min_dwell_s)
        self._interval = 1.0 / settings.emit_hz
        self._emotions: list[float] = list(UNIFORM)
        self._engaged = False
        self._away_s = 0.0
        self._started_t: float | None = None
        self._last_facing_t: float | None = None
        self._next_emit_t: float | None = None
        self._current: Mood | None = None

    @property
    def current(self) -> Mood | None:
        """The last Mood returned."""
        return self._current

    @property
    def away_s(self) -> float:
        """Seconds since anyone last faced the device; 0 while engaged."""
        return self._away_s

    @property
    def reader_id(self) -> int | None:
        """The track followed as the reader (reader mode), for diagnostics."""
        return self._reader.reader_id

    def update(self, readings: list[FaceReading], t: float) -> Mood | None:
        """Fold one frame's faces (possibly none) taken at ``t``."""
        return self._advance(readings, t)

    def tick(self, t: float) -> Mood | None:
        """No frame came (camera stalled): age the faces so the reader can leave."""
        return self._advance([], t)

    def _advance(self, readings: list[FaceReading], t: float) -> Mood | None:
        settings = self._settings
        if self._started_t is None:
            self._started_t = t
        self._tracks.forget_stale(t)
        seen = self._tracks.observe(readings, t)
        if any(track.facing for track in seen):
            self._last_facing_t = t
        engaged = self._last_facing_t is not None and (
            t - self._last_facing_t <= settings.away_after_s
        )
        shift = False
        if engaged:
            source = self._mood_source(t)
            if source is not None:
                self._emotions = source
                # Only a frame is evidence: a stalled camera must not confirm a shift.
                if readings:
                    shift = self._shifts.update(source, t)
        else:
            # Nobody to read: keep the last mood rather than invent one.
            self._shifts.forget_challenger()
        if engaged:
            self._away_s = 0.0
        else:
            left_t = self._started_t if self._last_facing_t is None else self._last_facing_t
            self._away_s = t - left_t
        flipped = engaged != self._engaged
        self._engaged = engaged
        on_beat = self._due(t)  # always asked: it keeps the beat's schedule
        if not (on_beat or shift or flipped or self._current is None):
            return None
        self._current = self._mood(len(seen), shift, t)
        return self._current

    def _mood_source(self, t: float) -> list[float] | None:
        away_after_s = self._settings.away_after_s
        candidates = [
            track
            for track in self._tracks.tracks
            if track.emotions is not None and track.attentive(t, away_after_s)
        ]
        if self._settings.mode == "crowd":
            return crowd_average(candidates)
        reader = self._reader.choose(candidates)
        return None if reader is None or reader.emotions is None else normalised(reader.emotions)

    def _due(self, t: float) -> bool:
        """On the steady beat. The beat keeps its phase (so 30 fps input still yields
        emit_hz, not the nearest divisor of 30) but restarts after a stall rather than
        firing a burst to catch up."""
        if self._next_emit_t is not None and t < self._next_emit_t:
            return False
        if self._next_emit_t is None or t - self._next_emit_t >= self._interval:
            self._next_emit_t = t + self._interval
        else:
            self._next_emit_t += self._interval
        return True

    def _mood(self, faces: int, shift: bool, t: float) -> Mood:
        held = self._shifts.held
        dominant = NO_LABEL_YET if held is None else EMOTION_LABELS[held]
        return Mood(
            emotions=Emotions.from_values(self._emotions),
            dominant=dominant,
            confidence=self._emotions[EMOTION_LABELS.index(dominant)],
            faces=faces,
            engaged=self._engaged,
            shift=shift,
            t=t,
            away_s=self._away_s,
        )
