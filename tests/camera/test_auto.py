from __future__ import annotations

from pathlib import Path

from appliance.camera import build_frame_source
from appliance.camera.auto import pick_frame_source, usb_camera_works
from appliance.camera.opencv_source import OpenCVSettings, OpenCVSource
from appliance.camera.picamera2_source import Picamera2Source
from appliance.camera.replay import SAMPLE_FRAMES_DIR, ReplaySource
from appliance.camera.settings import CameraSettings
from tests.camera.test_replay import RED, write_video


def test_no_camera_means_the_sample_frames() -> None:
    source = pick_frame_source(
        CameraSettings(), count_pi_cameras=lambda: 0, list_video_devices=lambda: []
    )
    assert isinstance(source, ReplaySource)
    assert source.path == SAMPLE_FRAMES_DIR


def test_the_pi_camera_comes_first() -> None:
    source = pick_frame_source(
        CameraSettings(), count_pi_cameras=lambda: 1, list_video_devices=lambda: ["/dev/video0"]
    )
    assert isinstance(source, Picamera2Source)


def test_the_first_video_device_that_delivers_wins() -> None:
    probed: list[str] = []

    def probe(settings: OpenCVSettings) -> bool:
        probed.append(settings.device)
        return settings.device == "/dev/video2"

    source = pick_frame_source(
        CameraSettings(),
        count_pi_cameras=lambda: 0,
        list_video_devices=lambda: ["/dev/video0", "/dev/video2", "/dev/video4"],
        probe_usb=probe,
    )
    assert isinstance(source, OpenCVSource)
    assert source.settings.device == "/dev/video2"
    assert probed == ["/dev/video0", "/dev/video2"]


def test_probing_reads_a_frame(tmp_path: Path) -> None:
    video = write_video(tmp_path / "clip.avi", [RED])
    assert usb_camera_works(OpenCVSettings(device=str(video)))
    assert not usb_camera_works(OpenCVSettings(device="/dev/video99"))


def test_an_explicit_type_is_built_without_probing(tmp_path: Path) -> None:
    assert isinstance(build_frame_source(CameraSettings(type="replay")), ReplaySource)
    assert isinstance(build_frame_source(CameraSettings(type="opencv")), OpenCVSource)
    assert isinstance(build_frame_source(CameraSettings(type="picamera2")), Picamera2Source)
