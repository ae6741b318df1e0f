"""USB/V4L2 cameras (by index or /dev path) and video files, through OpenCV."""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from appliance.camera.pacing import FramePacer
from appliance.camera.source import FrameSourceError
from appliance.camera.video_file import VideoFileReader
from appliance.events import Frame


class OpenCVSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    device: str = Field(
        default="0",
        min_length=1,
        description="A V4L2 camera by index (0) or path (/dev/video0), or a video file.",
    )
    width: int = Field(default=640, ge=64, le=4096, description="Requested capture width.")
    height: int = Field(default=480, ge=48, le=4096, description="Requested capture height.")
    fps: float = Field(
        default=30.0,
        gt=0,
        le=240,
        description="Requested camera frame rate; for a video file, the rate it is played at.",
    )


def is_camera_device(device: str) -> bool:
    return device.isdigit() or device.startswith("/dev/")


class OpenCVSource:
    def __init__(self, settings: OpenCVSettings) -> None:
        self.settings = settings
        self.name = f"opencv {settings.device}"
        self._capture: cv2.VideoCapture | None = None
        self._video: VideoFileReader | None = None
        self._pacer: FramePacer | None = None
        self._seq = 0

    def open(self) -> None:
        device = self.settings.device
        if not is_camera_device(device):
            self._video = VideoFileReader(Path(device), self.name, loop=True)
            self._video.open()
            self._pacer = FramePacer(self.settings.fps)
            return
        target: int | str = int(device) if device.isdigit() else device
        if isinstance(target, str) and not Path(target).exists():
            raise FrameSourceError(self.name, f"{target} does not exist (camera unplugged?)")
        capture = cv2.VideoCapture(target, cv2.CAP_V4L2)
        if not capture.isOpened():
            capture.release()
            raise FrameSourceError(
                self.name, "could not be opened (not a camera, or in use by another program)"
            )
        capture.set(cv2.CAP_PROP_FRAME_WIDTH, self.settings.width)
        capture.set(cv2.CAP_PROP_FRAME_HEIGHT, self.settings.height)
        capture.set(cv2.CAP_PROP_FPS, self.settings.fps)
        # One driver buffer: a frame read now was taken now, not several frames ago.
        capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        self._capture = capture

    def read(self) -> Frame:
        if self._video is not None and self._pacer is not None:
            image = self._video.next_rgb()
            t = self._pacer.wait()
        elif self._capture is not None:
            ok, bgr = self._capture.read()
            t = time.monotonic()
            if not ok or bgr is None:
                raise FrameSourceError(
                    self.name,
                    "stopped delivering frames (unplugged, or in use by another program?)",
                )
            image = np.asarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), dtype=np.uint8)
        else:
            raise FrameSourceError(self.name, "read before open")
        image.flags.writeable = False
        frame = Frame(image=image, t=t, seq=self._seq, source=self.name)
        self._seq += 1
        return frame

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None
        if self._video is not None:
            self._video.close()
            self._video = None
