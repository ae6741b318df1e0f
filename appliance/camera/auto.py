"""Choosing a frame source when the user did not: Pi camera, then USB, then replay."""

from __future__ import annotations

import glob
import logging
from collections.abc import Callable

from appliance.camera.opencv_source import OpenCVSettings, OpenCVSource
from appliance.camera.picamera2_source import Picamera2Source, picamera2_cameras
from appliance.camera.replay import ReplaySource
from appliance.camera.settings import CameraSettings
from appliance.camera.source import FrameSource, FrameSourceError

log = logging.getLogger(__name__)


def video_devices() -> list[str]:
    def number(path: str) -> int:
        suffix = path.removeprefix("/dev/video")
        return int(suffix) if suffix.isdigit() else 1 << 30

    return sorted(glob.glob("/dev/video*"), key=number)


def usb_camera_works(settings: OpenCVSettings) -> bool:
    """Open the device and read one frame: many /dev/video nodes are not cameras
    (on a Pi: the ISP, codecs), and only a frame proves it is one."""
    source = OpenCVSource(settings)
    try:
        source.open()
        source.read()
        return True
    except FrameSourceError as exc:
        log.debug("%s", exc)
        return False
    finally:
        source.close()


def pick_frame_source(
    settings: CameraSettings,
    *,
    count_pi_cameras: Callable[[], int] = picamera2_cameras,
    list_video_devices: Callable[[], list[str]] = video_devices,
    probe_usb: Callable[[OpenCVSettings], bool] = usb_camera_works,
) -> FrameSource:
    """The first source that works. The probes are parameters so tests can swap hardware."""
    if count_pi_cameras() > 0:
        log.info("camera: using the Raspberry Pi camera (picamera2)")
        return Picamera2Source(settings.picamera2)
    for device in list_video_devices():
        candidate = settings.opencv.model_copy(update={"device": device})
        if probe_usb(candidate):
            log.info("camera: using %s (OpenCV/V4L2)", device)
            return OpenCVSource(candidate)
    replay = ReplaySource(settings.replay)
    log.info("camera: no camera found; replaying %s", replay.path)
    return replay
