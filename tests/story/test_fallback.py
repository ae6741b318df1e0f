"""Local first, Azure second: the switch is automatic, visible and reversible."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.commands.story import mood_for
from appliance.events import StoryEvent
from appliance.story.azure_backend import AzureStoryLLM
from appliance.story.backends import StoryBackends
from appliance.story.llama_backend import LlamaBackend
from appliance.story.llm import GenerationRequest, GenerationStats
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


def test_the_tests_story_model_is_deterministic(models: Path, tmp_path: Path) -> None:
    """The same turn twice, from the same state, with the tests' settings: the same text
    (what every test that reads the story relies on)."""
    told = []
    for run in ("first", "second"):
        (tmp_path / run).mkdir()
        storyteller, backends, _ = build(models, tmp_path / run, None)
        try:
            finished = storyteller.next_turn(mood_for("happy", None))
            assert finished is not None
            told.append(finished.record.text)
        finally:
            backends.close()
    assert told[0] == told[1] and told[0]
    assert smol_llama().temperature == 0.0


def test_a_local_model_that_gives_no_first_token_hands_over_to_azure(
    models: Path, tmp_path: Path, fake_azure: FakeAzure
) -> None:
    """The model's owner thread is held (as by a stuck computation): no first token
    within ``first_token_timeout_s``, so Azure tells the turn, and the status says why."""
    storyteller, backends, events = build(
        models,
        tmp_path,
        fake_azure,
        retry_local_after_s=600.0,
        llama=smol_llama(first_token_timeout_s=1.0),
    )
    try:
        assert backends.local is not None
        assert wait_for(lambda: backends.local is not None and backends.local.ready, 60)
        release = threading.Event()
        backends.local.call(lambda _llm: None)  # loaded and idle
        holder = threading.Thread(target=backends.local.call, args=(lambda _llm: release.wait(10),))
        holder.start()
        began = time.monotonic()
        finished = storyteller.next_turn(mood_for("happy", None))
        took = time.monotonic() - began
        release.set()
        holder.join(10)
        assert finished is not None and finished.record.backend == "azure story-gpt"
        stalled = ("no answer for 1 s", "no token for 1 s")
        assert any(s in m for m in messages(events) for s in stalled), messages(events)
        assert took < 8, took  # the timeout, then Azure; never waiting for the stuck model
    finally:
        backends.close()


def test_a_local_model_that_stalls_between_tokens_hands_over_to_azure(
    models: Path, tmp_path: Path, fake_azure: FakeAzure
) -> None:
    """``token_timeout_s`` far below what a token takes: the real model 'stalls' after its
    first token, and the turn goes to Azure (never kept in part). Led by its beat told from
    the plan, the turn that stalled is that whole sentence (shown and heard; Azure would
    tell it again in other words), and the next goes to Azure."""
    storyteller, backends, events = build(
        models,
        tmp_path,
        fake_azure,
        retry_local_after_s=600.0,
        llama=smol_llama(token_timeout_s=0.0005),
        lead_with_beat="words",
    )
    try:
        finished = storyteller.next_turn(mood_for("happy", None))
        assert finished is not None and finished.record.backend == "azure story-gpt"
        assert finished.record.text.startswith("The little fox found a warm lantern")
        assert any("no token for 0 s" in m for m in messages(events)), messages(events)
        assert [t.backend for t in storyteller.store.turns(storyteller.story.id)] == [
            "azure story-gpt"
        ]
    finally:
        backends.close()
    (tmp_path / "led").mkdir()
    storyteller, backends, events = build(
        models,
        tmp_path / "led",
        fake_azure,
        retry_local_after_s=600.0,
        llama=smol_llama(token_timeout_s=0.0005),
    )
    try:
        beat = storyteller._instruction(mood_for("happy", None)).given
        stalled = storyteller.next_turn(mood_for("happy", None))
        assert stalled is not None and stalled.record.text == beat
        assert any("no token for 0 s" in m for m in messages(events)), messages(events)
        after = storyteller.next_turn(mood_for("happy", "happy"))
        assert after is not None and after.record.backend == "azure story-gpt"
        told = [t.text for t in storyteller.store.turns(storyteller.story.id)]
        assert told == [beat, after.record.text]
    finally:
        backends.close()


class StuckBeforeItsFirstToken(LlamaBackend):
    """The real backend whose owner thread gets stuck (a computation that never returns)
    as a turn's generation is asked for: the generation queues behind it, and no first
    token comes."""

    hold: threading.Event | None = None

    def stream(
        self, request: GenerationRequest, cancel: threading.Event, stats: GenerationStats
    ) -> Iterator[str]:
        hold, self.hold = self.hold, None
        if hold is not None and request.purpose == "turn":
            self._executor.submit(lambda: hold.wait(10))
        return super().stream(request, cancel, stats)


def test_no_first_token_in_time_from_the_stream_hands_over_to_azure(
    models: Path, tmp_path: Path, fake_azure: FakeAzure
) -> None:
    settings = smol_story(retry_local_after_s=600.0, llama=smol_llama(first_token_timeout_s=1.0))
    events: list[StoryEvent] = []

    def on_status(status: dict[str, str]) -> None:
        events.append(StoryEvent(kind="status", t=time.monotonic(), status=status))

    local = StuckBeforeItsFirstToken(settings.llama, models)
    backends = StoryBackends(settings, local, AzureStoryLLM(azure_settings(fake_azure)), on_status)
    backends.start()
    store = StoryStore(tmp_path / "stories.sqlite3")
    storyteller = Storyteller(settings, backends, store, n_ctx=1024, emit=events.append)
    try:
        assert wait_for(lambda: local.ready, 60)
        hold = local.hold = threading.Event()
        began = time.monotonic()
        finished = storyteller.next_turn(mood_for("happy", None))
        took = time.monotonic() - began
        hold.set()
        assert finished is not None and finished.record.backend == "azure story-gpt"
        assert any("no token for 1 s" in m for m in messages(events)), messages(events)
        assert took < 8, took
    finally:
        backends.close()
        store.close()
