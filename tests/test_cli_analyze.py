from __future__ import annotations

import json
import shutil
from pathlib import Path

from appliance.events import EMOTION_LABELS
from tests.cli_process import moodtale, moodtale_env
from tests.derived_images import FIXTURES


def lines_of(stdout: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in stdout.splitlines()]


def test_a_folder_as_json_lines() -> None:
    result = moodtale("analyze", "--json", FIXTURES)
    assert result.returncode == 0, result.stderr
    lines = lines_of(result.stdout)
    by_name = {Path(str(line["path"])).name: line for line in lines}
    assert set(by_name) == {
        "astronaut.png",
        "camera.png",
        "coffee.jpg",
        "chelsea.jpg",
        "rocket.jpg",
        "brick.jpg",
    }
    assert [Path(str(line["path"])).name for line in lines] == sorted(by_name)
    astronaut = by_name["astronaut.png"]
    assert astronaut["error"] is None
    faces = astronaut["faces"]
    assert isinstance(faces, list)
    (face,) = faces
    assert face["label"] == "happy"
    x, y, w, h = face["box"]
    assert all(isinstance(v, int) for v in (x, y, w, h))
    assert abs(x - 178) < 10 and abs(y - 81) < 10 and abs(w - 94) < 10
    assert 0 < face["score"] <= 1
    assert tuple(face["emotions"]) == EMOTION_LABELS
    for name in ("coffee.jpg", "rocket.jpg", "brick.jpg", "chelsea.jpg"):
        assert by_name[name]["faces"] == []


def test_bad_files_get_their_error_and_the_rest_is_still_analysed(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not a picture")
    fake = tmp_path / "fake.jpg"
    fake.write_bytes(b"\xff\xd8\xff garbage")
    result = moodtale(
        "analyze", "--json", text, FIXTURES / "astronaut.png", tmp_path / "gone.png", fake
    )
    assert result.returncode == 1
    lines = lines_of(result.stdout)
    assert [Path(str(line["path"])).name for line in lines] == [
        "notes.txt",
        "astronaut.png",
        "gone.png",
        "fake.jpg",
    ]
    assert "not an image" in str(lines[0]["error"])
    assert lines[1]["error"] is None and len(lines[1]["faces"]) == 1  # type: ignore[arg-type]
    assert "no such file" in str(lines[2]["error"])
    assert "not an image" in str(lines[3]["error"])


def test_a_folder_without_images_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "readme.txt").write_text("nothing to see")
    result = moodtale("analyze", "--json", tmp_path)
    assert result.returncode == 1
    (line,) = lines_of(result.stdout)
    assert line["error"] == "directory contains no image files"


def test_folders_are_walked_into(tmp_path: Path) -> None:
    (tmp_path / "b" / "c").mkdir(parents=True)
    shutil.copy(FIXTURES / "astronaut.png", tmp_path / "b" / "c" / "one.png")
    shutil.copy(FIXTURES / "coffee.jpg", tmp_path / "two.jpg")
    result = moodtale("analyze", "--json", tmp_path)
    assert result.returncode == 0
    names = [Path(str(line["path"])).name for line in lines_of(result.stdout)]
    assert names == ["two.jpg", "one.png"]


def test_human_readable_output() -> None:
    result = moodtale("analyze", FIXTURES / "astronaut.png", FIXTURES / "coffee.jpg")
    assert result.returncode == 0
    assert "astronaut.png: 1 face" in result.stdout
    assert "face 1: happy at x=" in result.stdout
    assert "coffee.jpg: 0 faces" in result.stdout


def test_a_corrupt_model_stops_analysis_with_the_fix(tmp_path: Path, models_dir: Path) -> None:
    models = tmp_path / "models"
    shutil.copytree(models_dir, models, ignore=shutil.ignore_patterns("*.gguf"))
    (models / "emotion_model_quantized.tflite").write_bytes(b"truncated")
    result = moodtale(
        "analyze",
        FIXTURES / "astronaut.png",
        env=moodtale_env(MOODTALE_MODELS_DIR=str(models)),
    )
    assert result.returncode == 2
    assert "emotion_model_quantized.tflite" in result.stderr
    assert "moodtale models fetch fer-mini-xception" in result.stderr
