from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
import tomllib
from pathlib import Path

import pytest

from tests.cli_process import moodtale, moodtale_env, start_moodtale
from tests.derived_images import FIXTURES


def test_bench_perception_json() -> None:
    result = moodtale("bench", "perception", "--json", "--frames", "30")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    for key in (
        "fps",
        "detect_ms_p50",
        "classify_ms_p50",
        "total_ms_p50",
        "total_ms_p95",
        "rss_mb",
        "faces",
    ):
        assert isinstance(report[key], int | float), key
    assert report["fps"] > 0 and report["rss_mb"] > 0
    assert report["faces"] == 1
    assert report["faces_found_mean"] == 1.0
    assert report["size"] == "640x480"
    assert report["total_ms_p95"] >= report["total_ms_p50"]


def test_bench_perception_with_several_faces_and_a_size() -> None:
    result = moodtale(
        "bench", "perception", "--json", "--frames", "10", "--faces", "3", "--size", "800x600"
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["faces"] == 3
    assert report["faces_found_mean"] == 3.0
    assert report["size"] == "800x600"


def test_bench_human_output_names_the_machine() -> None:
    result = moodtale("bench", "perception", "--frames", "10")
    assert result.returncode == 0
    assert "frames/s" in result.stdout
    assert "machine:" in result.stdout


@pytest.mark.parametrize("args", [["--size", "640"], ["--frames", "0"], ["--faces", "-1"]])
def test_bench_refuses_bad_arguments(args: list[str]) -> None:
    result = moodtale("bench", "perception", *args)
    assert result.returncode == 2
    assert "expected" in result.stderr


def test_models_list_and_verify() -> None:
    listing = moodtale("models", "list")
    assert listing.returncode == 0
    assert "blazeface-short-range" in listing.stdout and "Apache-2.0" in listing.stdout
    verify = moodtale("models", "verify", "blazeface-short-range", "fer-mini-xception")
    assert verify.returncode == 0
    assert verify.stdout.count(": ok") == 2


def test_models_verify_and_fetch_repair_a_corrupt_file(tmp_path: Path, models_dir: Path) -> None:
    models = tmp_path / "models"
    shutil.copytree(models_dir, models, ignore=shutil.ignore_patterns("*.gguf"))
    (models / "emotion_model_quantized.tflite").write_bytes(b"oops")
    env = moodtale_env(MOODTALE_MODELS_DIR=str(models))
    verify = moodtale("models", "verify", "fer-mini-xception", env=env)
    assert verify.returncode == 1
    assert "fer-mini-xception: corrupt" in verify.stdout
    fetch = moodtale("models", "fetch", "fer-mini-xception", env=env)
    assert fetch.returncode == 0, fetch.stderr
    assert "fer-mini-xception: fetched" in fetch.stdout
    assert moodtale("models", "verify", "fer-mini-xception", env=env).returncode == 0


def test_models_unknown_name() -> None:
    result = moodtale("models", "verify", "nonesuch")
    assert result.returncode == 2
    assert "no model named 'nonesuch'" in result.stderr


def test_config_prints_loadable_toml() -> None:
    result = moodtale("config", env=moodtale_env(MOODTALE_VISION__MAX_FACES="3"))
    assert result.returncode == 0
    assert tomllib.loads(result.stdout)["vision"]["max_faces"] == 3


def read_until(process: subprocess.Popen[str], wanted: list[str], timeout: float) -> list[str]:
    """Lines of output until every wanted text has been seen (or the time is up)."""
    assert process.stdout is not None
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not all(any(w in s for s in seen) for w in wanted):
        line = process.stdout.readline()
        if not line:
            break
        seen.append(line.rstrip("\n"))
    return seen


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_watch_prints_expressions_as_they_change_and_stops_cleanly(
    tmp_path: Path, stop_signal: signal.Signals
) -> None:
    frames = tmp_path / "frames"
    frames.mkdir()
    shutil.copy(FIXTURES / "astronaut.png", frames / "1.png")
    shutil.copy(FIXTURES / "coffee.jpg", frames / "2.jpg")
    env = moodtale_env(
        MOODTALE_CAMERA__TYPE="replay",
        MOODTALE_CAMERA__REPLAY__PATH=str(frames),
        MOODTALE_CAMERA__REPLAY__FPS="20",
        MOODTALE_CAMERA__REPLAY__SECONDS_PER_IMAGE="0.5",
    )
    process = start_moodtale("watch", env=env)
    try:
        lines = read_until(process, ["face 1: happy", "no face"], timeout=30)
        changes = [line for line in lines if line.startswith("[replay")]
        assert any("face 1: happy" in line for line in changes), lines
        assert any("no face" in line for line in changes), lines
        # Printed when it changes, not every frame: 20 fps for ~1 s is far more lines.
        assert len(changes) < 8
        process.send_signal(stop_signal)
        assert process.wait(timeout=5) == 0
    finally:
        process.kill()
        process.wait()


def test_watch_ends_with_a_replay_that_does_not_loop(tmp_path: Path) -> None:
    env = moodtale_env(
        MOODTALE_CAMERA__TYPE="replay",
        MOODTALE_CAMERA__REPLAY__PATH=str(FIXTURES / "astronaut.png"),
        MOODTALE_CAMERA__REPLAY__FPS="30",
        MOODTALE_CAMERA__REPLAY__SECONDS_PER_IMAGE="0.2",
        MOODTALE_CAMERA__REPLAY__LOOP="false",
    )
    result = moodtale("watch", env=env, timeout=30)
    assert result.returncode == 0
    assert "face 1: happy" in result.stdout
    assert "the replay has ended" in result.stdout


def test_watch_keeps_retrying_a_lost_camera(tmp_path: Path) -> None:
    env = moodtale_env(
        MOODTALE_CAMERA__TYPE="opencv", MOODTALE_CAMERA__OPENCV__DEVICE="/dev/video99"
    )
    process = start_moodtale("watch", env=env)
    try:
        lines = read_until(process, ["retrying in 2 s"], timeout=15)
        assert any("/dev/video99 does not exist" in line for line in lines), lines
        assert any("camera lost; retrying in 1 s" in line for line in lines), lines
        assert process.poll() is None  # still running, still trying
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=5) == 0
    finally:
        process.kill()
        process.wait()


@pytest.mark.timeout(180)
@pytest.mark.parametrize("engine", ["auto", "espeak"])
def test_bench_speech_json(engine: str) -> None:
    result = moodtale("bench", "speech", "--json", "--engine", engine, "--turns", "2")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["engine"] == {"auto": "piper", "espeak": "espeak-ng"}[engine]
    assert report["sentences"] == 6 and report["turns"] == 2
    for key in (
        "first_audio_ms_p50",
        "first_audio_ms_p95",
        "rtf",
        "gap_ms_max",
        "turn_first_audio_ms_p50",
        "turn_first_audio_ms_max",
    ):
        assert isinstance(report[key], int | float) and report[key] >= 0, key
    assert 0 < report["rtf"] < 1  # faster than real time, and something was timed
    assert report["first_audio_ms_p50"] <= report["first_audio_ms_p95"]


def test_bench_speech_refuses_bad_turns() -> None:
    result = moodtale("bench", "speech", "--turns", "7")
    assert result.returncode == 2
    assert "expected a whole number from 1 to 6, got '7'" in result.stderr
