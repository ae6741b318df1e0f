"""Whether a face looks at the device, from BlazeFace's landmarks.

When the head turns, the nose tip moves off the midpoint between the eyes while the eyes
close up in the picture, so the nose's offset measured in eye distances grows with the
turn (roughly 0.5 x tan(yaw) for an adult face) whatever the face's size.
"""

from __future__ import annotations

from collections.abc import Sequence

RIGHT_EYE, LEFT_EYE, NOSE_TIP = 0, 1, 2


def nose_offset(keypoints: Sequence[tuple[float, float]]) -> float | None:
    """The nose tip's distance from the eye midpoint along the eye line, in eye distances;
    None when the landmarks are missing or degenerate (no evidence either way).

    Measured along the line through the eyes, so a tilted (rolled) head that still faces
    the device is not mistaken for a turned one.
    """
    if len(keypoints) <= NOSE_TIP:
        return None
    (rx, ry), (lx, ly), (nx, ny) = keypoints[RIGHT_EYE], keypoints[LEFT_EYE], keypoints[NOSE_TIP]
    ex, ey = lx - rx, ly - ry
    span = ex * ex + ey * ey
    if span < 1e-12:
        return None
    mx, my = (rx + lx) / 2, (ry + ly) / 2
    return abs((nx - mx) * ex + (ny - my) * ey) / span


def is_facing(keypoints: Sequence[tuple[float, float]], max_nose_offset: float) -> bool:
    """A face counts as facing unless its landmarks say it is turned away: a detector
    without landmarks must not make every reader look absent."""
    offset = nose_offset(keypoints)
    return offset is None or offset <= max_nose_offset
