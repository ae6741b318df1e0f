"""The story model's file is deleted or corrupted while the appliance runs, then put
back: Azure tells the story meanwhile when configured, else the story pauses with a
clear status; restoring the file restores local generation. Real llama.cpp, real files."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.daemon import Appliance
from tests.appliance_run.conftest import HAPPY, SAD, appliance_settings, replay_dir
from tests.fake_azure import FakeAzure
from tests.faults.waiting import wait_until
from tests.story.conftest import azure_settings, smol_story

MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


@pytest.fixture
def models(tmp_path: Path, models_dir: Path) -> Path:
    """A models directory of our own: the story model copied (the tests break it), the
    rest linked."""
    mine = tmp_path / "models"
    mine.mkdir()
    for item in models_dir.iterdir():
        if item.name == MODEL_FILE:
            shutil.copy(item, mine / item.name)
        elif item.is_file() and item.suffix != ".gguf":
            (mine / item.name).symlink_to(item)
    return mine


def start(tmp_path: Path, models: Path, azure: object = None) -> Appliance:
    frames = replay_dir(tmp_path, HAPPY, SAD)
    story = smol_story(reading_wpm=0, sentences_per_turn=2, retry_local_after_s=1.0)
    changes: dict[str, object] = {"models_dir": models, "story": story}
    if azure is not None:
        changes["azure"] = azure
    settings = appliance_settings(tmp_path, frames, 6.0, **changes)
    appliance = Appliance(settings)
    appliance.start()
    return appliance


@pytest.fixture
def appliance_without_azure(tmp_path: Path, models: Path) -> Iterator[Appliance]:
    appliance = start(tmp_path, models)
    yield appliance
    appliance.shutdown()


def problems(appliance: Appliance) -> list[str]:
    return list(appliance.status()["problems"])


def test_deleted_then_corrupt_then_restored_without_azure(
    appliance_without_azure: Appliance, models: Path, tmp_path: Path
) -> None:
    appliance = appliance_without_azure
    model = models / MODEL_FILE
    wait_until(lambda: appliance.teller.turn_count >= 1, 120, "a first turn")
    kept = model.rename(tmp_path / "kept.gguf")  # deleted from where the device looks

    def paused_saying(words: str) -> bool:
        loop = appliance.story_loop
        return loop.state == "paused" and words in (loop.reason or "")

    wait_until(lambda: paused_saying("was deleted"), 60, "paused: model file deleted")
    assert any("Local story model" in p for p in problems(appliance)), problems(appliance)
    turns = appliance.teller.turn_count

    # A corrupt file in its place (the right size, the wrong bytes): refused by its
    # sha256, the story stays paused, and says why.
    with model.open("wb") as corrupt:
        corrupt.truncate(kept.stat().st_size)
    wait_until(lambda: paused_saying("sha256"), 60, "paused: model file corrupt")
    assert appliance.teller.turn_count == turns
    assert all(w.alive for w in appliance.supervisor.workers.values())
    assert appliance.status()["story"]["state"] == "paused"

    kept.replace(model)  # restored
    wait_until(lambda: appliance.teller.turn_count > turns, 120, "the story going on")
    assert appliance.backends.kind == "local"
    assert not any("Local story model" in p for p in problems(appliance))
    stored = appliance.store.turns(appliance.teller.story.id)
    assert all(t.backend.startswith("local") for t in stored)
    assert all(w.restarts == 0 for w in appliance.supervisor.workers.values())


def test_deleted_model_hands_the_story_to_azure_and_back(
    tmp_path: Path, models: Path, fake_azure: FakeAzure
) -> None:
    appliance = start(tmp_path, models, azure=azure_settings(fake_azure))
    try:
        model = models / MODEL_FILE
        wait_until(lambda: appliance.teller.turn_count >= 1, 120, "a first turn")
        kept = model.rename(tmp_path / "kept.gguf")
        wait_until(lambda: appliance.backends.kind == "azure", 60, "Azure takes over")
        azure_from = appliance.teller.turn_count
        wait_until(lambda: appliance.teller.turn_count >= azure_from + 1, 60, "an Azure turn")
        status = appliance.status()
        assert status["story"]["kind"] == "azure"
        assert any("Azure OpenAI tells the story" in p for p in status["problems"])

        kept.replace(model)
        wait_until(lambda: appliance.backends.kind == "local", 60, "local model back")
        local_from = appliance.teller.turn_count
        wait_until(lambda: appliance.teller.turn_count > local_from, 120, "a local turn again")
        stored = appliance.store.turns(appliance.teller.story.id)
        backends = [t.backend.split()[0] for t in stored]
        assert backends[0] == "local" and "azure" in backends and backends[-1] == "local"
        assert len(fake_azure.requests) > 0
    finally:
        appliance.shutdown()


def test_a_model_llama_cpp_cannot_load_at_start_pauses_the_story_not_the_appliance(
    tmp_path: Path, models: Path
) -> None:
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + bytes(range(256)) * 64)  # a GGUF that is not one
    frames = replay_dir(tmp_path, HAPPY, SAD)
    story = smol_story(reading_wpm=0, sentences_per_turn=2, retry_local_after_s=1.0)
    story = story.model_copy(
        update={"llama": story.llama.model_copy(update={"model": str(broken)})}
    )
    appliance = Appliance(appliance_settings(tmp_path, frames, 6.0, models_dir=models, story=story))
    appliance.start()
    try:
        wait_until(
            lambda: (
                appliance.story_loop.state == "paused"
                and "could not load" in (appliance.story_loop.reason or "")
            ),
            60,
            "paused: the model does not load",
        )
        assert any("the local model could not load" in p for p in problems(appliance)), problems(
            appliance
        )
        ok, _ = appliance.healthy()
        assert ok and appliance.teller.turn_count == 0
    finally:
        appliance.shutdown()
