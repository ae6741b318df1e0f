"""The venue story processor's decisions, without Spark: when a turn is due, and that a
turn the rate limit (or the model) refuses is put off, never waited for."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from appliance.events import EMOTION_LABELS
from appliance.fleet.venue_llm import RateLimit, VenueLLMConfig, turn_seed
from appliance.fleet.venue_story import OUTPUT_COLUMNS, VenueStory


class MemoryState:
    """Spark's ValueState, in memory."""

    def __init__(self) -> None:
        self.value: tuple[Any, ...] | None = None

    def exists(self) -> bool:
        return self.value is not None

    def get(self) -> tuple[Any, ...] | None:
        return self.value

    def update(self, value: tuple[Any, ...]) -> None:
        self.value = value


def windows(*labels: str) -> pd.DataFrame:
    rows = []
    for i, label in enumerate(labels):
        means = {name: (1.0 if name == label else 0.0) for name in EMOTION_LABELS}
        rows.append(
            {
                "venue": "hall",
                "window_start": pd.Timestamp(i * 10, unit="s", tz="UTC"),
                "window_end": pd.Timestamp(i * 10 + 10, unit="s", tz="UTC"),
                "faces": 0 if label == "nobody" else 4,
                "devices": 2,
                "rows": 20,
                **means,
                "dominant": label,
            }
        )
    return pd.DataFrame(rows)


def processor(backend: str = "none") -> tuple[VenueStory, MemoryState]:
    story = VenueStory(VenueLLMConfig(story={}, models_dir="", backend=backend), turn_every=3)
    state = MemoryState()
    story.state = state  # type: ignore[assignment]
    return story, state


def output(story: VenueStory, frame: pd.DataFrame) -> pd.DataFrame:
    frames = list(story.handleInputRows(("hall",), iter([frame]), None))
    return pd.concat(frames) if frames else pd.DataFrame(columns=OUTPUT_COLUMNS)


def test_a_refused_turn_is_put_off_to_a_later_window() -> None:
    story, state = processor("none")  # no model: every turn is refused at once
    out = output(story, windows("happy", "happy", "nobody"))
    assert out.empty
    assert state.value is not None
    turns, last_label, windows_since, pending, _recent = state.value
    assert (turns, last_label, windows_since, pending) == (0, "", 3, True)


def test_turns_come_on_a_shift_or_every_n_windows(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[tuple[str, int]] = []

    def write_turn(
        config: VenueLLMConfig, venue: str, label: str, recent: list[str], idx: int
    ) -> tuple[str, str]:
        asked.append((label, idx))
        return f"Turn {idx}, {label}.", "test model"

    monkeypatch.setattr("appliance.fleet.venue_story.write_turn", write_turn)
    story, _state = processor("local")
    out = output(story, windows("happy", "happy", "happy", "happy", "sad", "nobody", "sad"))
    assert list(out.columns) == OUTPUT_COLUMNS
    # The first window starts the story; three windows later one is due; sad is a shift.
    assert asked == [("happy", 0), ("happy", 1), ("sad", 2)]
    assert list(out["turn"]) == [0, 1, 2] and list(out["shift"]) == [False, False, True]
    assert list(out["text"]) == ["Turn 0, happy.", "Turn 1, happy.", "Turn 2, sad."]


def test_the_rate_limit_never_waits() -> None:
    now = [0.0]
    limit = RateLimit(per_minute=6, clock=lambda: now[0])  # a burst of 1, then 1 per 10 s
    assert limit.try_take()
    assert not limit.try_take()  # refused at once, not waited for
    now[0] += 9.9
    assert not limit.try_take()
    now[0] += 0.2
    assert limit.try_take()


def test_a_turn_has_the_same_seed_when_a_batch_is_replayed() -> None:
    assert turn_seed("hall", 3) == turn_seed("hall", 3)
    assert turn_seed("hall", 3) != turn_seed("hall", 4) != turn_seed("porch", 3)


def test_an_executors_own_model_runs_on_one_thread_unless_told() -> None:
    """Spark already runs a task per core: each worker's model gets ``llm_threads``
    threads (1), whatever the appliance's own ``story.llama.threads`` says."""
    from appliance.fleet import venue_llm
    from appliance.model_files.manifest import REPO_MODELS_DIR
    from appliance.story.llama_backend import LlamaBackend
    from tests.story.conftest import smol_story

    story = smol_story().model_dump(mode="json")
    assert story["llama"]["threads"] == 2
    for threads in (1, 2):
        config = VenueLLMConfig(story=story, models_dir=str(REPO_MODELS_DIR), llm_threads=threads)
        llm = venue_llm.model_for(config)
        assert isinstance(llm, LlamaBackend) and llm.settings.threads == threads
        assert llm._llm is not None and llm._llm.n_threads == threads
        venue_llm._models.pop(config.key())  # this process's cache: no closed model left in it
        llm.close()
