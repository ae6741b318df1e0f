from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from appliance.camera.opencv_source import OpenCVSettings, OpenCVSource
from appliance.camera.source import FrameSourceError
from tests.camera.test_replay import BLUE, GREEN, RED, write_video


def test_a_video_file_through_opencv_loops_in_rgb(tmp_path: Path) -> None:
    video = write_video(tmp_path / "clip.avi", [RED, GREEN, BLUE])
    source = OpenCVSource(OpenCVSettings(device=str(video), fps=200))
    source.open()
    frames = [source.read() for _ in range(4)]
    source.close()
    np.testing.assert_allclose(frames[0].image[10, 10], RED, atol=40)
    np.testing.assert_allclose(frames[3].image[10, 10], RED, atol=40)
    assert [f.seq for f in frames] == [0, 1, 2, 3]
    assert not frames[0].image.flags.writeable


def test_a_missing_device_path_is_named() -> None:
    source = OpenCVSource(OpenCVSettings(device="/dev/video99"))
    with pytest.raises(FrameSourceError, match=r"opencv /dev/video99: /dev/video99 does not exist"):
        source.open()
    source.close()


def test_a_camera_index_with_no_camera_is_named() -> None:
    source = OpenCVSource(OpenCVSettings(device="57"))
    with pytest.raises(FrameSourceError, match="opencv 57: could not be opened"):
        source.open()
    source.close()


def test_a_missing_video_file_is_named(tmp_path: Path) -> None:
    source = OpenCVSource(OpenCVSettings(device=str(tmp_path / "gone.mp4")))
    with pytest.raises(FrameSourceError, match="does not exist"):
        source.open()
