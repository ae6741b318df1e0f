"""Reading a video file frame by frame with OpenCV, looping if asked."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from appliance.camera.source import FrameSourceError, SourceExhaustedError


class VideoFileReader:
    def __init__(self, path: Path, source_name: str, *, loop: bool) -> None:
        self.path = path
        self._name = source_name
        self._loop = loop
        self._capture: cv2.VideoCapture | None = None

    def open(self) -> None:
        if not self.path.is_file():
            raise FrameSourceError(self._name, f"video file {self.path} does not exist")
        capture = cv2.VideoCapture(str(self.path))
        if not capture.isOpened():
            capture.release()
            raise FrameSourceError(self._name, f"{self.path} is not a video OpenCV can read")
        self._capture = capture

    @property
    def fps(self) -> float:
        """The file's own frame rate, or 0 when it does not say."""
        if self._capture is None:
            return 0.0
        value = float(self._capture.get(cv2.CAP_PROP_FPS))
        return value if np.isfinite(value) and value > 0 else 0.0

    def next_rgb(self) -> NDArray[np.uint8]:
        if self._capture is None:
            raise FrameSourceError(self._name, "read before open")
        ok, bgr = self._capture.read()
        if not ok:
            if not self._loop:
                raise SourceExhaustedError(self._name, "reached the end of the video")
            self._capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, bgr = self._capture.read()
            if not ok:
                raise FrameSourceError(self._name, f"{self.path} has no readable frames")
        return np.asarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), dtype=np.uint8)

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None
