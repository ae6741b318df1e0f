"""Time-aware exponential smoothing of probability rows.

Frames arrive irregularly (5 to 500 fps, with stalls), so the weight of a new reading
depends on the time since the previous one, not on a frame count: the same elapsed time
gives the same smoothing whatever the frame rate.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from appliance.events import EMOTION_LABELS, Emotions

UNIFORM: tuple[float, ...] = (1.0 / len(EMOTION_LABELS),) * len(EMOTION_LABELS)
"""What we know before any face was seen: nothing."""


def blend_weight(dt: float, half_life_s: float) -> float:
    """The new reading's share after ``dt`` seconds: after one half-life the old value
    keeps half its weight. A reading at the same (or an earlier) time changes nothing."""
    if dt <= 0.0:
        return 0.0
    return 1.0 - math.pow(0.5, dt / half_life_s)


def normalised(values: Sequence[float]) -> list[float] | None:
    """The row scaled to sum 1; None when it carries no information (all zero)."""
    total = sum(values)
    if total <= 0.0:
        return None
    return [v / total for v in values]


def probabilities(emotions: Emotions) -> list[float] | None:
    """A reading's probabilities, normalised: fallbacks (Azure JSON) may not sum to 1."""
    return normalised(emotions.as_tuple())


def blend_into(smoothed: list[float], reading: Sequence[float], weight: float) -> None:
    """Move ``smoothed`` towards ``reading`` in place; called per face per frame, so it
    avoids building new objects."""
    keep = 1.0 - weight
    for i, value in enumerate(reading):
        smoothed[i] = smoothed[i] * keep + value * weight
