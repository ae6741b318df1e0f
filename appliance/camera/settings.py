"""Camera settings: which source, and each source's own settings beside it."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from appliance.camera.opencv_source import OpenCVSettings
from appliance.camera.picamera2_source import Picamera2Settings
from appliance.camera.replay import ReplaySettings

CameraType = Literal["auto", "replay", "opencv", "picamera2"]


class CameraSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: CameraType = Field(
        default="auto",
        description="Frame source: auto (Pi camera, else the first working /dev/video*, "
        "else replay of the sample frames), replay, opencv or picamera2.",
    )
    replay: ReplaySettings = Field(default_factory=ReplaySettings, description="Replay source.")
    opencv: OpenCVSettings = Field(default_factory=OpenCVSettings, description="OpenCV source.")
    picamera2: Picamera2Settings = Field(
        default_factory=Picamera2Settings, description="Raspberry Pi camera source."
    )
