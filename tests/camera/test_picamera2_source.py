"""The Pi camera source against a stand-in for picamera2 (no Pi camera on this machine)."""

from __future__ import annotations

import sys
import threading
import types
from typing import Any, ClassVar

import numpy as np
import pytest

from appliance.camera.capture import CaptureThread
from appliance.camera.newest_frame import NewestFrameSlot
from appliance.camera.picamera2_source import Picamera2Settings, Picamera2Source, picamera2_cameras
from appliance.camera.source import FrameSourceError


class FakePicamera2:
    """Records what the source asks of the camera, and in which thread."""

    instances: ClassVar[list[FakePicamera2]] = []
    fail_start: ClassVar[str | None] = None

    def __init__(self, camera_num: int = 0) -> None:
        self.camera_num = camera_num
        self.calls: list[tuple[str, int]] = []
        self.config_args: dict[str, Any] = {}
        self.frames = 0
        FakePicamera2.instances.append(self)

    @staticmethod
    def global_camera_info() -> list[dict[str, Any]]:
        return [{"Model": "imx708", "Num": 0}]

    def _record(self, name: str) -> None:
        self.calls.append((name, threading.get_ident()))

    def create_video_configuration(self, **kwargs: Any) -> dict[str, Any]:
        self._record("create_video_configuration")
        self.config_args = kwargs
        return {"config": kwargs}

    def configure(self, config: dict[str, Any]) -> None:
        self._record("configure")

    def start(self) -> None:
        self._record("start")
        if FakePicamera2.fail_start:
            raise RuntimeError(FakePicamera2.fail_start)

    def capture_array(self, stream: str = "main") -> np.ndarray:
        self._record("capture_array")
        w, h = self.config_args["main"]["size"]
        self.frames += 1
        return np.full((h, w, 3), self.frames % 256, dtype=np.uint8)

    def stop(self) -> None:
        self._record("stop")

    def close(self) -> None:
        self._record("close")


@pytest.fixture
def fake_picamera2(monkeypatch: pytest.MonkeyPatch) -> type[FakePicamera2]:
    FakePicamera2.instances = []
    FakePicamera2.fail_start = None
    module = types.ModuleType("picamera2")
    module.Picamera2 = FakePicamera2  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "picamera2", module)
    return FakePicamera2


def test_asks_for_a_small_rgb_stream(fake_picamera2: type[FakePicamera2]) -> None:
    source = Picamera2Source(Picamera2Settings(width=320, height=240, fps=15))
    source.open()
    frame = source.read()
    source.close()
    (camera,) = fake_picamera2.instances
    assert camera.config_args["main"] == {"size": (320, 240), "format": "BGR888"}
    assert camera.config_args["controls"] == {"FrameRate": 15}
    assert camera.config_args["queue"] is False
    assert frame.image.shape == (240, 320, 3)
    assert not frame.image.flags.writeable
    assert [name for name, _ in camera.calls][-2:] == ["stop", "close"]


def test_the_camera_lives_and_dies_in_the_capture_thread(
    fake_picamera2: type[FakePicamera2],
) -> None:
    slot = NewestFrameSlot()
    stop = threading.Event()
    capture = CaptureThread(lambda: Picamera2Source(Picamera2Settings()), slot, stop)
    capture.start()
    assert slot.take(timeout=2) is not None
    stop.set()
    capture.join(timeout=2)
    (camera,) = fake_picamera2.instances
    threads = {thread for _, thread in camera.calls}
    assert threads == {capture.ident}
    assert camera.calls[-1][0] == "close"


def test_a_camera_held_by_another_process_is_released_and_named(
    fake_picamera2: type[FakePicamera2],
) -> None:
    fake_picamera2.fail_start = "Pipeline handler in use by another process"
    source = Picamera2Source(Picamera2Settings())
    with pytest.raises(FrameSourceError, match="in use by another process"):
        source.open()
    (camera,) = fake_picamera2.instances
    assert [name for name, _ in camera.calls][-2:] == ["stop", "close"]


def test_without_picamera2_the_error_says_how_to_get_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "picamera2", None)
    with pytest.raises(FrameSourceError, match="apt install python3-picamera2"):
        Picamera2Source(Picamera2Settings()).open()
    assert picamera2_cameras() == 0


def test_counts_the_cameras_libcamera_sees(fake_picamera2: type[FakePicamera2]) -> None:
    assert picamera2_cameras() == 1
