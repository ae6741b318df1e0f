"""Replayed frames: a directory of images or a video file, looped, at a target rate.

This is what the appliance shows itself when no camera is attached, and what tests
and benchmarks use in place of a camera.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field

from appliance.camera.image_files import ImageReadError, images_in, is_image_name, read_rgb
from appliance.camera.pacing import FramePacer
from appliance.camera.source import FrameSourceError, SourceExhaustedError
from appliance.camera.video_file import VideoFileReader
from appliance.events import Frame

SAMPLE_FRAMES_DIR = Path(__file__).with_name("sample_frames")


class ReplaySettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: Path | None = Field(
        default=None,
        description="A directory of images or a video file to replay. "
        "Unset: the bundled public-domain sample frames.",
    )
    fps: float = Field(default=15.0, gt=0, le=240, description="Frames delivered per second.")
    seconds_per_image: float = Field(
        default=3.0,
        gt=0,
        le=3600,
        description="How long each image of a directory stays in view "
        "(a video plays frame by frame).",
    )
    loop: bool = Field(default=True, description="Start again after the last image or frame.")


class ReplaySource:
    def __init__(
        self,
        settings: ReplaySettings,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self.path = settings.path or SAMPLE_FRAMES_DIR
        self.name = f"replay {self.path}"
        self._pacer = FramePacer(settings.fps, clock, sleep)
        self._images: list[Path] = []
        self._video: VideoFileReader | None = None
        self._frames_per_image = max(1, round(settings.seconds_per_image * settings.fps))
        self._current: tuple[int, NDArray[np.uint8]] | None = None
        self._seq = 0

    def open(self) -> None:
        if self.path.is_dir():
            self._images = images_in(self.path)
            if not self._images:
                raise FrameSourceError(self.name, f"no image files in {self.path}")
            # Decode each once now so that a bad file is reported at start, not minutes later.
            for image in self._images:
                self._decode(image)
        elif self.path.is_file() and is_image_name(self.path):
            self._images = [self.path]
            self._decode(self.path)
        elif self.path.is_file():
            self._video = VideoFileReader(self.path, self.name, loop=self.settings.loop)
            self._video.open()
        else:
            raise FrameSourceError(self.name, f"{self.path} does not exist")

    def _decode(self, path: Path) -> NDArray[np.uint8]:
        try:
            image = read_rgb(path)
        except ImageReadError as exc:
            raise FrameSourceError(self.name, str(exc)) from exc
        image.flags.writeable = False
        return image

    def _next_image(self) -> NDArray[np.uint8]:
        if self._video is not None:
            image = self._video.next_rgb()
            image.flags.writeable = False
            return image
        if not self._images:
            raise FrameSourceError(self.name, "read before open")
        index = self._seq // self._frames_per_image
        if index >= len(self._images):
            if not self.settings.loop:
                raise SourceExhaustedError(self.name, "replayed every image")
            index %= len(self._images)
        if self._current is None or self._current[0] != index:
            # Only the image in view stays decoded: a long replay costs one frame of memory.
            self._current = (index, self._decode(self._images[index]))
        return self._current[1]

    def read(self) -> Frame:
        image = self._next_image()
        t = self._pacer.wait()
        frame = Frame(image=image, t=t, seq=self._seq, source=self.name)
        self._seq += 1
        return frame

    def close(self) -> None:
        if self._video is not None:
            self._video.close()
            self._video = None
        self._current = None
