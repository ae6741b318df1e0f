"""Frame sources behind one interface, and the thread that owns the one in use."""

from __future__ import annotations

from appliance.camera.auto import pick_frame_source
from appliance.camera.opencv_source import OpenCVSource
from appliance.camera.picamera2_source import Picamera2Source
from appliance.camera.replay import ReplaySource
from appliance.camera.settings import CameraSettings
from appliance.camera.source import FrameSource, FrameSourceError, SourceExhaustedError


def build_frame_source(settings: CameraSettings) -> FrameSource:
    """An unopened source for the configured type (``auto`` probes the hardware)."""
    if settings.type == "replay":
        return ReplaySource(settings.replay)
    if settings.type == "opencv":
        return OpenCVSource(settings.opencv)
    if settings.type == "picamera2":
        return Picamera2Source(settings.picamera2)
    return pick_frame_source(settings)


__all__ = [
    "CameraSettings",
    "FrameSource",
    "FrameSourceError",
    "SourceExhaustedError",
    "build_frame_source",
]
