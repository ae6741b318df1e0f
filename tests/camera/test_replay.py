from __future__ import annotations

import itertools
import shutil
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from appliance.camera.pacing import FramePacer
from appliance.camera.replay import SAMPLE_FRAMES_DIR, ReplaySettings, ReplaySource
from appliance.camera.source import FrameSourceError, SourceExhaustedError
from tests.derived_images import FIXTURES


def colour_images(directory: Path, colours: list[tuple[int, int, int]]) -> Path:
    """PNG files named in order, each one flat RGB colour."""
    directory.mkdir(parents=True, exist_ok=True)
    for index, rgb in enumerate(colours):
        image = np.full((48, 64, 3), rgb, dtype=np.uint8)
        cv2.imwrite(str(directory / f"{index:02d}.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    return directory


def write_video(path: Path, colours: list[tuple[int, int, int]], fps: float = 25) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), fps, (64, 48))
    assert writer.isOpened()
    for rgb in colours:
        writer.write(np.full((48, 64, 3), rgb[::-1], dtype=np.uint8))
    writer.release()
    return path


RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_pacer_delivers_at_the_target_rate() -> None:
    clock = FakeClock()
    pacer = FramePacer(10, clock, clock.sleep)
    stamps = [pacer.wait() for _ in range(5)]
    assert np.diff(stamps) == pytest.approx([0.1] * 4)


def test_pacer_does_not_burst_after_a_stall() -> None:
    clock = FakeClock()
    pacer = FramePacer(10, clock, clock.sleep)
    pacer.wait()
    clock.now += 5.0  # the process was paused
    first, second = pacer.wait(), pacer.wait()
    assert second - first == pytest.approx(0.1)


def test_images_play_in_name_order_and_loop(tmp_path: Path) -> None:
    clock = FakeClock()
    folder = colour_images(tmp_path / "frames", [RED, GREEN, BLUE])
    source = ReplaySource(
        ReplaySettings(path=folder, fps=10, seconds_per_image=0.2), clock, clock.sleep
    )
    source.open()
    frames = [source.read() for _ in range(8)]
    source.close()
    colours = [tuple(int(v) for v in f.image[0, 0]) for f in frames]
    assert colours == [RED, RED, GREEN, GREEN, BLUE, BLUE, RED, RED]
    assert [f.seq for f in frames] == list(range(8))
    assert np.diff([f.t for f in frames]) == pytest.approx([0.1] * 7)
    assert all(not f.image.flags.writeable for f in frames)
    assert frames[0].source == f"replay {folder}"


def test_real_time_replay_is_not_faster_than_its_rate(tmp_path: Path) -> None:
    folder = colour_images(tmp_path / "frames", [RED])
    source = ReplaySource(ReplaySettings(path=folder, fps=50))
    source.open()
    started = time.monotonic()
    frames = [source.read() for _ in range(21)]
    elapsed = time.monotonic() - started
    source.close()
    assert elapsed >= 20 / 50 * 0.95
    assert all(b.t > a.t for a, b in itertools.pairwise(frames))
    assert frames[0].t >= started


def test_without_loop_the_replay_ends(tmp_path: Path) -> None:
    clock = FakeClock()
    folder = colour_images(tmp_path / "frames", [RED, GREEN])
    source = ReplaySource(
        ReplaySettings(path=folder, fps=10, seconds_per_image=0.1, loop=False),
        clock,
        clock.sleep,
    )
    source.open()
    source.read()
    source.read()
    with pytest.raises(SourceExhaustedError):
        source.read()


def test_a_single_image_file_replays(tmp_path: Path) -> None:
    source = ReplaySource(ReplaySettings(path=FIXTURES / "astronaut.png", fps=100))
    source.open()
    assert source.read().image.shape == (512, 512, 3)
    source.close()


def test_a_video_file_plays_frame_by_frame_in_rgb(tmp_path: Path) -> None:
    clock = FakeClock()
    video = write_video(tmp_path / "clip.avi", [RED, GREEN, BLUE])
    source = ReplaySource(ReplaySettings(path=video, fps=30), clock, clock.sleep)
    source.open()
    frames = [source.read() for _ in range(5)]
    source.close()
    for frame, expected in zip(frames, [RED, GREEN, BLUE, RED, GREEN], strict=True):
        np.testing.assert_allclose(frame.image[24, 32], expected, atol=40)


def test_the_default_is_the_bundled_sample_frames() -> None:
    source = ReplaySource(ReplaySettings())
    assert source.path == SAMPLE_FRAMES_DIR
    source.open()
    assert source.read().image.shape == (480, 640, 3)
    source.close()


@pytest.mark.parametrize("case", ["empty-dir", "missing", "bad-image", "not-a-video"])
def test_a_bad_replay_path_names_the_problem(tmp_path: Path, case: str) -> None:
    if case == "empty-dir":
        path = tmp_path / "empty"
        path.mkdir()
        expected = "no image files"
    elif case == "missing":
        path = tmp_path / "nowhere"
        expected = "does not exist"
    elif case == "bad-image":
        path = colour_images(tmp_path / "frames", [RED])
        (path / "01-broken.jpg").write_bytes(b"\xff\xd8 this is not a jpeg")
        expected = "01-broken.jpg: not an image"
    else:
        path = tmp_path / "notes.txt"
        path.write_text("hello")
        expected = "not a video"
    source = ReplaySource(ReplaySettings(path=path))
    with pytest.raises(FrameSourceError) as caught:
        source.open()
    assert expected in str(caught.value)
    assert str(caught.value).startswith(f"camera source replay {path}")
    source.close()


def test_an_image_that_disappears_mid_replay_is_reported(tmp_path: Path) -> None:
    clock = FakeClock()
    folder = colour_images(tmp_path / "frames", [RED, GREEN])
    source = ReplaySource(
        ReplaySettings(path=folder, fps=10, seconds_per_image=0.1), clock, clock.sleep
    )
    source.open()
    source.read()
    shutil.rmtree(folder)
    with pytest.raises(FrameSourceError, match=r"01\.png"):
        source.read()
