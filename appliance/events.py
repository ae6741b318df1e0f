"""The values that travel between stages.

Every stage knows only the type it receives and the one it emits, so these are the
whole contract between camera/, vision/, mood/, story/, speech/, web/ and fleet/.
All are frozen; timestamps are ``time.monotonic()`` seconds.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

EMOTION_LABELS: tuple[str, ...] = (
    "angry",
    "disgust",
    "fear",
    "happy",
    "sad",
    "surprise",
    "neutral",
)
"""The fixed label set, in the order the FER-2013 classifier emits it."""


@dataclass(frozen=True, slots=True)
class Emotions:
    """Probabilities (or, in a ``MoodSummary``, sums of probabilities) per label."""

    angry: float = 0.0
    disgust: float = 0.0
    fear: float = 0.0
    happy: float = 0.0
    sad: float = 0.0
    surprise: float = 0.0
    neutral: float = 0.0

    def __post_init__(self) -> None:
        for label in EMOTION_LABELS:
            value = getattr(self, label)
            if not math.isfinite(value) or value < 0.0:
                raise ValueError(f"emotion {label!r} must be a finite number >= 0, got {value!r}")

    @classmethod
    def from_values(cls, values: Iterable[float]) -> Emotions:
        """Build from values in ``EMOTION_LABELS`` order (a model's output row)."""
        row = [float(v) for v in values]
        if len(row) != len(EMOTION_LABELS):
            raise ValueError(f"expected {len(EMOTION_LABELS)} emotion values, got {len(row)}")
        return cls(*row)

    @classmethod
    def from_mapping(cls, values: Mapping[str, float]) -> Emotions:
        unknown = set(values) - set(EMOTION_LABELS)
        if unknown:
            raise ValueError(f"unknown emotion labels: {', '.join(sorted(unknown))}")
        return cls(**{label: float(values.get(label, 0.0)) for label in EMOTION_LABELS})

    def as_tuple(self) -> tuple[float, ...]:
        return tuple(getattr(self, label) for label in EMOTION_LABELS)

    def as_dict(self) -> dict[str, float]:
        return {label: getattr(self, label) for label in EMOTION_LABELS}

    @property
    def dominant(self) -> str:
        """The label with the highest value (ties go to the earlier label)."""
        values = self.as_tuple()
        return EMOTION_LABELS[values.index(max(values))]

    @property
    def confidence(self) -> float:
        """The dominant label's share of the total (1.0 for a one-hot row)."""
        values = self.as_tuple()
        total = sum(values)
        return max(values) / total if total > 0 else 0.0


@dataclass(frozen=True, slots=True)
class Box:
    """A rectangle in normalized image coordinates: (0, 0) top left, (1, 1) bottom right."""

    x: float
    y: float
    w: float
    h: float

    @property
    def area(self) -> float:
        return max(self.w, 0.0) * max(self.h, 0.0)

    @property
    def center(self) -> tuple[float, float]:
        return (self.x + self.w / 2, self.y + self.h / 2)

    def iou(self, other: Box) -> float:
        ix = max(0.0, min(self.x + self.w, other.x + other.w) - max(self.x, other.x))
        iy = max(0.0, min(self.y + self.h, other.y + other.h) - max(self.y, other.y))
        inter = ix * iy
        union = self.area + other.area - inter
        return inter / union if union > 0 else 0.0

    def to_pixels(self, width: int, height: int) -> tuple[int, int, int, int]:
        """(x, y, w, h) in whole pixels of an image of the given size."""
        x0 = round(self.x * width)
        y0 = round(self.y * height)
        x1 = round((self.x + self.w) * width)
        y1 = round((self.y + self.h) * height)
        return (x0, y0, x1 - x0, y1 - y0)


@dataclass(frozen=True, slots=True, eq=False)
class Frame:
    """One picture from a frame source: H x W x 3 uint8 RGB, read-only."""

    image: NDArray[np.uint8]
    t: float
    seq: int
    source: str

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    @property
    def height(self) -> int:
        return int(self.image.shape[0])


@dataclass(frozen=True, slots=True)
class FaceReading:
    """One face seen in one frame and what its expression says."""

    box: Box
    score: float
    emotions: Emotions
    t: float
    frame_seq: int = 0
    keypoints: tuple[tuple[float, float], ...] = ()
    """Normalized (x, y) of the detector's landmarks: right eye, left eye, nose tip,
    mouth, right ear tragion, left ear tragion (BlazeFace order)."""


@dataclass(frozen=True, slots=True)
class Mood:
    """The smoothed mood of the reader (or of the crowd) at time ``t``."""

    emotions: Emotions
    dominant: str
    confidence: float
    faces: int
    engaged: bool
    shift: bool
    t: float
    away_s: float = 0.0
    """Seconds since anyone last faced the device; 0 while ``engaged``."""


StoryEventKind = Literal["turn_started", "token", "sentence", "turn_finished", "status"]


@dataclass(frozen=True, slots=True)
class StoryEvent:
    """What the storyteller tells the narrator and the web page."""

    kind: StoryEventKind
    t: float
    turn_id: int | None = None
    text: str = ""
    mood: Mood | None = None
    status: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class MoodSummary:
    """One row per device per second. Sums and counts, so rows combine exactly downstream."""

    venue: str
    device: str
    second: int
    faces: int
    emotion_sums: Emotions
