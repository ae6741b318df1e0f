"""Perception: faces in a frame and the expression on each."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from appliance.azure_openai.settings import AzureSettings
from appliance.model_files import Manifest, load_manifest
from appliance.vision.azure_expression import AzureExpressionModel, FallbackExpressionModel
from appliance.vision.blazeface import VARIANTS, BlazeFaceDetector
from appliance.vision.expression import ExpressionModel, FerExpressionModel
from appliance.vision.litert import load_interpreter
from appliance.vision.perception import Perception, StageTimings
from appliance.vision.settings import VisionSettings

EXPRESSION_MODEL = "fer-mini-xception"


def build_perception(
    settings: VisionSettings,
    models_dir: Path,
    manifest: Manifest | None = None,
    azure: AzureSettings | None = None,
) -> Perception:
    """Load the configured models; raises ``ModelFileError`` naming a missing or corrupt file.

    With ``azure.vision_fallback`` on (and Azure configured) a missing or failing
    expression model hands over to Azure instead; off, nothing leaves the device.
    """
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
    make_local = partial(
        FerExpressionModel,
        partial(load_interpreter, expression_entry, models_dir, settings.threads),
        margin=settings.crop_margin,
        max_batch=max(settings.max_faces, 1),
    )
    expressions: ExpressionModel
    if azure is not None and azure.vision_fallback and azure.configured:
        expressions = FallbackExpressionModel(make_local, AzureExpressionModel(azure))
    else:
        expressions = make_local()
    return Perception(detector, expressions)


__all__ = ["Perception", "StageTimings", "VisionSettings", "build_perception"]
