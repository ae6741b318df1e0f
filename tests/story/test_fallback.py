"""Local first, Azure second: the switch is automatic, visible and reversible."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from appliance.commands.story import mood_for
from appliance.events import StoryEvent
from appliance.story.azure_backend import AzureStoryLLM
from appliance.story.backends import StoryBackends
from appliance.story.llama_backend import LlamaBackend
from appliance.story.settings import StorySettings
from appliance.story.store import StoryStore
from appliance.story.storyteller import StoryPausedError, Storyteller
from tests.fake_azure import FakeAzure
from tests.story.conftest import azure_settings, smol_llama, smol_story

MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


@pytest.fixture
def models(tmp_path: Path, models_dir: Path) -> Path:
    """A models directory of our own, whose story model the tests may break."""
    mine = tmp_path / "models"
    mine.mkdir()
    shutil.copy(models_dir / MODEL_FILE, mine / MODEL_FILE)
    return mine


def wait_for(condition: object, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return True
        time.sleep(0.05)
    return False


def build(
    models: Path, tmp_path: Path, azure: FakeAzure | None, **changes: object
) -> tuple[Storyteller, StoryBackends, list[StoryEvent]]:
    settings: StorySettings = smol_story(**{"retry_local_after_s": 0.3, **changes})
    events: list[StoryEvent] = []

    def on_status(status: dict[str, str]) -> None:
        events.append(StoryEvent(kind="status", t=time.monotonic(), status=status))

    remote = AzureStoryLLM(azure_settings(azure)) if azure is not None else None
    backends = StoryBackends(settings, LlamaBackend(settings.llama, models), remote, on_status)
    backends.start()
    store = StoryStore(tmp_path / "stories.sqlite3")
    storyteller = Storyteller(
        settings, backends, store, n_ctx=settings.llama.n_ctx, emit=events.append
    )
    return storyteller, backends, events


def messages(events: list[StoryEvent]) -> list[str]:
    return [e.status.get("message", "") for e in events if e.kind == "status"]


def test_a_missing_model_falls_back_to_azure_and_comes_back(
    models: Path, tmp_path: Path, fake_azure: FakeAzure
) -> None:
    (models / MODEL_FILE).rename(models / "aside.gguf")
    storyteller, backends, events = build(models, tmp_path, fake_azure)
    try:
        finished = storyteller.next_turn(mood_for("happy", None))
        assert finished is not None
        assert finished.record.backend == "azure story-gpt"
        assert finished.record.text.startswith("The little fox found a warm lantern")
        assert any("local story model unavailable" in m for m in messages(events))
        assert backends.status()["kind"] == "azure"
        (models / "aside.gguf").rename(models / MODEL_FILE)  # the user restores the file
        assert wait_for(lambda: backends.local_problem is None)
        finished = storyteller.next_turn(mood_for("happy", "happy"))
        assert finished is not None and finished.record.backend.startswith("local")
        assert any("local story model is back" in m for m in messages(events))
    finally:
        backends.close()


def test_a_corrupt_model_falls_back_to_azure(
    models: Path, tmp_path: Path, fake_azure: FakeAzure
) -> None:
    with (models / MODEL_FILE).open("r+b") as f:
        f.seek(1_000_000)
        f.write(b"\xff" * 32)
    storyteller, backends, events = build(models, tmp_path, fake_azure)
    try:
        finished = storyteller.next_turn(mood_for("sad", None))
        assert finished is not None and finished.record.backend == "azure story-gpt"
        assert any("corrupt" in m for m in messages(events))
    finally:
        backends.close()


def test_without_azure_a_missing_model_pauses_the_story(models: Path, tmp_path: Path) -> None:
    (models / MODEL_FILE).unlink()
    storyteller, backends, events = build(models, tmp_path, None)
    try:
        with pytest.raises(StoryPausedError) as caught:
            storyteller.next_turn(mood_for("happy", None))
        assert any("local story model unavailable" in m for m in messages(events))
        assert "is missing" in str(caught.value)
        assert "Azure is not configured" in str(caught.value)
        assert storyteller.store.turns(storyteller.story.id) == []
    finally:
        backends.close()


def test_a_slow_local_model_hands_over_to_azure(
    models: Path, tmp_path: Path, fake_azure: FakeAzure
) -> None:
    storyteller, backends, events = build(
        models, tmp_path, fake_azure, min_tokens_per_s=1000.0, retry_local_after_s=600.0
    )
    try:
        used = []
        for n in range(3):
            finished = storyteller.next_turn(mood_for("happy", None if n == 0 else "happy"))
            assert finished is not None
            used.append(finished.record.backend)
        assert used == ["local smollm2-135m-instruct"] * 2 + ["azure story-gpt"]
        assert any("too slow" in m for m in messages(events))
    finally:
        backends.close()


def test_azure_down_and_no_local_model_pauses_with_both_reasons(
    models: Path, tmp_path: Path, fake_azure: FakeAzure
) -> None:
    (models / MODEL_FILE).unlink()
    fake_azure.queue(*["500"] * 20)
    storyteller, backends, _ = build(models, tmp_path, fake_azure)
    try:
        with pytest.raises(StoryPausedError) as caught:
            for _ in range(4):
                storyteller.next_turn(mood_for("happy", None))
        assert "is missing" in str(caught.value)
        assert "InternalServerError" in str(caught.value) or "Azure" in str(caught.value)
        assert len(fake_azure.requests) <= 9  # bounded: retries, then the circuit opens
    finally:
        backends.close()


def test_only_local_when_told(models: Path, tmp_path: Path, fake_azure: FakeAzure) -> None:
    (models / MODEL_FILE).unlink()
    storyteller, backends, _ = build(models, tmp_path, fake_azure, backend="local")
    try:
        with pytest.raises(StoryPausedError):
            storyteller.next_turn(mood_for("happy", None))
        assert fake_azure.requests == []
    finally:
        backends.close()


def test_llama_settings_for_tests_are_deterministic() -> None:
    assert smol_llama().temperature == 0.0 and smol_llama().seed == 42
