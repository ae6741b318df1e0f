"""The Raspberry Pi camera through picamera2.

picamera2 comes from Raspberry Pi OS (apt: python3-picamera2) and cannot be installed
elsewhere, so it is imported only when this source opens. The camera belongs to the
thread that opens it: open, read and close all happen in the capture thread, and
``close`` runs in a ``finally`` so that a crash never leaves the camera held
("Pipeline handler in use by another process").
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from appliance.camera.source import FrameSourceError
from appliance.events import Frame

INSTALL_HINT = (
    "picamera2 is not available to this Python: on Raspberry Pi OS run "
    "'sudo apt install python3-picamera2' and use a venv made with --system-site-packages "
    "(scripts/install-pi does both)"
)


class Picamera2Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    camera: int = Field(default=0, ge=0, le=7, description="Which Pi camera (0 is the first).")
    width: int = Field(default=640, ge=64, le=4608, description="Width of the inference stream.")
    height: int = Field(default=480, ge=48, le=3496, description="Height of the inference stream.")
    fps: float = Field(default=30.0, gt=0, le=120, description="Camera frame rate.")


def import_picamera2() -> Any:
    from picamera2 import Picamera2

    return Picamera2


def picamera2_cameras() -> int:
    """How many cameras libcamera sees; 0 when picamera2 is not installed."""
    try:
        picamera2_class = import_picamera2()
        return len(picamera2_class.global_camera_info())
    except Exception:  # a missing module, or libcamera failing to enumerate
        return 0


class Picamera2Source:
    def __init__(self, settings: Picamera2Settings) -> None:
        self.settings = settings
        self.name = f"picamera2 camera {settings.camera}"
        self._camera: Any = None
        self._seq = 0

    def open(self) -> None:
        try:
            picamera2_class = import_picamera2()
        except ImportError as exc:
            raise FrameSourceError(self.name, INSTALL_HINT) from exc
        s = self.settings
        try:
            self._camera = picamera2_class(camera_num=s.camera)
            # Ask the ISP for the small stream inference needs, already in RGB order
            # ("BGR888" is RGB in memory in libcamera's naming): no resize or colour
            # conversion in Python. The Pi 4's lores stream can only be YUV420, so the
            # main stream is the small one. queue=False: a capture returns a frame
            # taken after the request, never an old queued one.
            config = self._camera.create_video_configuration(
                main={"size": (s.width, s.height), "format": "BGR888"},
                controls={"FrameRate": s.fps},
                queue=False,
            )
            self._camera.configure(config)
            self._camera.start()
        except Exception as exc:
            self.close()
            raise FrameSourceError(self.name, f"could not be started: {exc}") from exc

    def read(self) -> Frame:
        if self._camera is None:
            raise FrameSourceError(self.name, "read before open")
        try:
            array = self._camera.capture_array("main")
        except Exception as exc:
            raise FrameSourceError(self.name, f"stopped delivering frames: {exc}") from exc
        t = time.monotonic()
        image = np.ascontiguousarray(array[:, :, :3], dtype=np.uint8)
        image.flags.writeable = False
        frame = Frame(image=image, t=t, seq=self._seq, source=self.name)
        self._seq += 1
        return frame

    def close(self) -> None:
        camera, self._camera = self._camera, None
        if camera is None:
            return
        try:
            camera.stop()
        finally:
            camera.close()
