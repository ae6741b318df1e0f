"""Perception: faces in a frame and the expression on each."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from appliance.model_files import Manifest, load_manifest
from appliance.vision.blazeface import VARIANTS, BlazeFaceDetector
from appliance.vision.expression import FerExpressionModel
from appliance.vision.litert import load_interpreter
from appliance.vision.perception import Perception, StageTimings
from appliance.vision.settings import VisionSettings

EXPRESSION_MODEL = "fer-mini-xception"


def build_perception(
    settings: VisionSettings, models_dir: Path, manifest: Manifest | None = None
) -> Perception:
    """Load the configured models; raises ``ModelFileError`` naming a missing or corrupt file."""
    manifest = manifest or load_manifest()
    variant = VARIANTS[settings.detector]
    detector = BlazeFaceDetector(
        load_interpreter(manifest[variant.model], models_dir, settings.threads),
        variant,
        score_threshold=settings.score_threshold,
        nms_iou=settings.nms_iou,
        max_faces=settings.max_faces,
    )
    expression_entry = manifest[EXPRESSION_MODEL]
    expressions = FerExpressionModel(
        partial(load_interpreter, expression_entry, models_dir, settings.threads),
        margin=settings.crop_margin,
        max_batch=max(settings.max_faces, 1),
    )
    return Perception(detector, expressions)


__all__ = ["Perception", "StageTimings", "VisionSettings", "build_perception"]
