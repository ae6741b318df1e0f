"""Stand-ins for camera hardware this machine does not have."""

from __future__ import annotations

import threading
import time

import numpy as np

from appliance.camera.source import FrameSourceError
from appliance.events import Frame


class ScriptedSource:
    """A frame source that delivers ``fail_after`` frames (forever when None) at ``fps``,
    then fails the way an unplugged camera does; it records which thread did what."""

    def __init__(
        self, fps: float = 200.0, fail_after: int | None = None, crash: bool = False
    ) -> None:
        self.name = "scripted"
        self.fps = fps
        self.fail_after = fail_after
        self.crash = crash
        self.seq = 0
        self.opened_in: int | None = None
        self.closed_in: int | None = None
        self.close_calls = 0

    def open(self) -> None:
        self.opened_in = threading.get_ident()

    def read(self) -> Frame:
        if self.fail_after is not None and self.seq >= self.fail_after:
            if self.crash:
                raise RuntimeError("driver exploded")
            raise FrameSourceError(self.name, "stopped delivering frames")
        time.sleep(1 / self.fps)
        frame = Frame(np.zeros((8, 8, 3), np.uint8), time.monotonic(), self.seq, self.name)
        self.seq += 1
        return frame

    def close(self) -> None:
        self.closed_in = threading.get_ident()
        self.close_calls += 1
