"""Mood settings: how fast the mood follows a face, and how much change counts as a shift."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

MoodMode = Literal["reader", "crowd"]


class MoodSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: MoodMode = Field(
        default="reader",
        description="Whose mood steers the story: reader (the largest, most central face "
        "looking at the device) or crowd (every face looking at the device, weighted by "
        "size and detector score).",
    )
    half_life_s: float = Field(
        default=0.15,
        gt=0.0,
        le=5.0,
        description="Half-life of the exponential smoothing of each face's expression, in "
        "seconds of frame time (not frames, so any frame rate gives the same curve). "
        "0.15 s hides single-frame classifier noise yet follows a real change of "
        "expression within about a fifth of a second.",
    )
    emit_hz: float = Field(
        default=8.0,
        ge=1.0,
        le=30.0,
        description="Steady rate of mood updates per second; shifts and engagement changes "
        "are sent at once on top of it. 8/s keeps the page's timeline lively without "
        "flooding the story, the page or the fleet publisher.",
    )
    track_iou: float = Field(
        default=0.3,
        ge=0.05,
        le=0.95,
        description="Minimum overlap (intersection over union) between a face's box and a "
        "track's last box to count as the same person. 0.3 follows a head moving at "
        "ordinary speed at 5 fps and still keeps two people side by side apart.",
    )
    track_timeout_s: float = Field(
        default=1.0,
        gt=0.0,
        le=30.0,
        description="A face unseen this long is forgotten; it starts afresh if it returns. "
        "1 s bridges missed detections and short camera stalls.",
    )
    shift_margin: float = Field(
        default=0.1,
        ge=0.0,
        le=1.0,
        description="Hysteresis: a new mood label must beat the current one's smoothed "
        "probability by at least this much before it can take over, so two labels that "
        "are nearly tied (flicker) never count as a change.",
    )
    min_dwell_s: float = Field(
        default=0.1,
        ge=0.0,
        le=10.0,
        description="The new label must stay ahead by the margin this long before it counts "
        "as a shift. With the default half-life and margin a real change is reported "
        "about 0.3 s after it starts; a blip shorter than that is ignored.",
    )
    away_after_s: float = Field(
        default=1.5,
        ge=0.0,
        le=60.0,
        description="Nobody facing the device this long means the reader is away. 1.5 s "
        "rides out a glance aside, a sneeze or a missed detection.",
    )
    facing_max_nose_offset: float = Field(
        default=1.0,
        gt=0.0,
        le=5.0,
        description="How far the nose tip may sit to one side of the midpoint between the "
        "eyes, in eye distances, for a face to count as facing the device (0 is straight "
        "on; about 0.3 is a 30° head turn, 0.5 about 45°, 1.0 about 60°). Generous: a "
        "reader who sits beside the device and reads at an angle is still reading (the "
        "sample 'sad' face, a three-quarter view, measures 0.71). A face without "
        "landmarks counts as facing.",
    )
    reader_switch_ratio: float = Field(
        default=1.5,
        ge=1.0,
        le=10.0,
        description="In reader mode another face becomes the reader only when its size and "
        "centrality score beats the current reader's by this factor, so the reader does "
        "not flip between two similar faces.",
    )
