"""Perception settings: the face detector and the expression model."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class VisionSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    detector: Literal["short-range", "full-range"] = Field(
        default="short-range",
        description="BlazeFace variant: short-range for a reader at arm's length (faster), "
        "full-range for crowds and faces farther away.",
    )
    score_threshold: float = Field(
        default=0.6, gt=0, lt=1, description="Minimum detector confidence for a face."
    )
    nms_iou: float = Field(
        default=0.3,
        gt=0,
        lt=1,
        description="Detections overlapping more than this are merged into one face.",
    )
    max_faces: int = Field(
        default=4, ge=1, le=32, description="At most this many faces per frame, largest first."
    )
    crop_margin: float = Field(
        default=0.25,
        ge=0,
        le=1,
        description="Margin around the face box for the expression crop, as a fraction of it.",
    )
    threads: int = Field(
        default=1, ge=1, le=8, description="CPU threads for each LiteRT interpreter."
    )
