"""The story model as a Spark executor sees it: built once per Python worker process from
plain settings, asked for one turn at a time, and rate-limited without ever waiting.

Nothing here holds story state: a venue's story lives in Spark's state store (see
``venue_story``). What is cached per process is the loaded model and the rate limiter's
bucket, which are resources, not history.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from appliance.story.llm import (
    BackendError,
    ChatMessage,
    GenerationRequest,
    GenerationStats,
    StoryLLM,
)
from appliance.story.prompts import MOOD_INSTRUCTIONS
from appliance.story.settings import StorySettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VenueLLMConfig:
    """Plain, picklable settings shipped to the executors with the job."""

    story: dict[str, Any]
    """``StorySettings`` as a dict (premise, genre, audience, llama...)."""
    models_dir: str
    backend: str = "local"
    """local (llama.cpp, in the executor), server (a llama.cpp server, or any
    OpenAI-compatible one, at ``server_url``), azure, or none (no turns: windows only)."""
    server_url: str | None = None
    server_model: str = "story"
    azure: dict[str, Any] | None = field(default=None, repr=False)
    """Azure settings, key included (shipped to the executors; never printed)."""
    calls_per_minute: float = 30.0
    """Per executor process: a turn that would exceed it is put off to a later window."""
    llm_threads: int = 1
    """llama.cpp threads for each executor's own model (backend local; 0: one per core).
    Spark runs a task per core and each Python worker loads its own model, so more than
    one thread each oversubscribes the cores, and llama.cpp's OpenMP threads spin while
    they wait: two workers of 2 threads on 2 cores wrote 6 times slower than one."""
    recent_turns: int = 3
    """How many earlier turns of the venue's story go into the prompt."""

    def key(self) -> str:
        return json.dumps(
            {
                "story": self.story,
                "models": self.models_dir,
                "backend": self.backend,
                "server": [self.server_url, self.server_model],
                "threads": self.llm_threads,
            },
            sort_keys=True,
            default=str,
        )


class RateLimit:
    """A token bucket; ``try_take`` never waits."""

    def __init__(self, per_minute: float, clock: Any = time.monotonic) -> None:
        self.capacity = max(1.0, per_minute / 6)  # bursts of up to 10 s worth
        self.rate = per_minute / 60.0
        self._tokens = self.capacity
        self._clock = clock
        self._at = clock()
        self._lock = threading.Lock()

    def try_take(self) -> bool:
        with self._lock:
            now = self._clock()
            self._tokens = min(self.capacity, self._tokens + (now - self._at) * self.rate)
            self._at = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return True
            return False


_models: dict[str, StoryLLM] = {}
_limits: dict[str, RateLimit] = {}
_lock = threading.Lock()


def _build(config: VenueLLMConfig) -> StoryLLM:
    story = StorySettings(**config.story)
    if config.backend == "server":
        from appliance.story.server_backend import server_story_llm

        if not config.server_url:
            raise BackendError("server", "no server_url given")
        return server_story_llm(config.server_url, config.server_model)
    if config.backend == "azure":
        from appliance.azure_openai.settings import AzureSettings
        from appliance.story.azure_backend import AzureStoryLLM

        return AzureStoryLLM(AzureSettings(**(config.azure or {})))
    from appliance.story.llama_backend import LlamaBackend

    llama = story.llama.model_copy(update={"threads": config.llm_threads})
    local = LlamaBackend(llama, Path(config.models_dir))
    local.load()
    return local


def model_for(config: VenueLLMConfig) -> StoryLLM:
    with _lock:
        key = config.key()
        if key not in _models:
            _models[key] = _build(config)
        return _models[key]


def limit_for(config: VenueLLMConfig) -> RateLimit:
    with _lock:
        key = config.key()
        if key not in _limits:
            _limits[key] = RateLimit(config.calls_per_minute)
        return _limits[key]


def turn_seed(venue: str, idx: int) -> int:
    """The same turn of the same venue is written alike when a batch is replayed."""
    digest = hashlib.sha256(f"{venue}\0{idx}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


def turn_messages(
    story: StorySettings, venue: str, label: str, recent: list[str], idx: int
) -> tuple[ChatMessage, ...]:
    rules = (
        f"You are the narrator of a {story.genre} story told to a crowd at {venue}, for "
        f"{story.audience}. Premise: {story.premise}\nWrite in {story.language}, in the past "
        "tense, two short sentences that move the story forward; nothing else. Keep it kind "
        "and safe for a child."
    )
    so_far = " ".join(recent) if recent else "(nothing yet)"
    mood = MOOD_INSTRUCTIONS.get(label, MOOD_INSTRUCTIONS["neutral"])
    ask = "Begin the story." if idx == 0 else "Go on with the story."
    prompt = f"The story so far: {so_far}\nThe crowd feels {label}. {mood} {ask}"
    return (ChatMessage("system", rules), ChatMessage("user", prompt))


def write_turn(
    config: VenueLLMConfig, venue: str, label: str, recent: list[str], idx: int
) -> tuple[str, str] | None:
    """The text of the venue's next turn and the backend that wrote it; None when the
    rate limit or the model says not now (the turn is put off, never waited for)."""
    if config.backend == "none" or not limit_for(config).try_take():
        return None
    story = StorySettings(**config.story)
    try:
        llm = model_for(config)
        request = GenerationRequest(
            messages=turn_messages(story, venue, label, recent, idx),
            max_tokens=story.llama.max_tokens,
            temperature=story.llama.temperature,
            seed=turn_seed(venue, idx),
        )
        text = "".join(llm.stream(request, threading.Event(), GenerationStats())).strip()
    except BackendError as exc:
        log.warning("venue %s: no turn now (%s)", venue, exc)
        return None
    return (text, llm.name) if text else None
