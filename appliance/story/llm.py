"""The one interface every story model implements, and what travels through it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal, Protocol

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True, slots=True)
class ChatMessage:
    role: Role
    content: str


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    messages: tuple[ChatMessage, ...]
    max_tokens: int
    temperature: float
    seed: int | None = None
    stop: tuple[str, ...] = ()
    purpose: Literal["turn", "summary", "warm"] = "turn"
    """turn: a story turn; summary: folding old turns (a local backend keeps the story's
    cache across it); warm: only read the prompt into the cache, generate nothing (a
    backend with no cache does nothing)."""
    avoid_repeating: tuple[str, ...] = ()
    """Texts (the story so far) whose runs of tokens the reply must not copy."""
    avoid_echo: tuple[str, ...] = ()
    """Instructions: not even three tokens of them may be copied."""
    avoid_openings: tuple[str, ...] = ()
    """How earlier replies began: the reply must begin differently."""
    avoid_sentence_openings: tuple[str, ...] = ()
    """Texts (the last turns) whose sentences' first two words no sentence of the reply
    may begin with."""
    prefill: str = ""
    """The reply's first words, written for the model (a local backend continues from
    them and streams them first; a backend that cannot prefill ignores them)."""
    min_tokens: int = 0
    """The reply may not end before it has this many tokens of its own (a local backend;
    the prefill does not count)."""
    free_words: tuple[str, ...] = ()
    """Names the reply may always write, however often they were written before."""
    no_repeat_ngram: int | None = None
    """Run length (tokens) that may not be copied from ``avoid_repeating``; None: the
    backend's setting."""


@dataclass(slots=True)
class GenerationStats:
    """Filled in by the backend as it streams."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    ttft_s: float = 0.0
    duration_s: float = 0.0
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def tokens_per_s(self) -> float:
        generating = self.duration_s - self.ttft_s
        return self.completion_tokens / generating if generating > 0 else 0.0


class BackendError(RuntimeError):
    """A story model could not serve a request. ``retry_after`` (seconds) when it said
    when to come back; ``broken`` when the backend itself is unusable (model file
    missing or corrupt, load failure, crash), not just this request."""

    def __init__(
        self, backend: str, problem: str, *, retry_after: float | None = None, broken: bool = False
    ) -> None:
        super().__init__(f"{backend}: {problem}")
        self.backend = backend
        self.problem = problem
        self.retry_after = retry_after
        self.broken = broken


class NoBackendError(BackendError):
    """No story model can serve at all right now (the story pauses)."""


class StoryLLM(Protocol):
    """A story model. ``stream`` yields text pieces as they are generated and stops
    between two pieces once ``cancel`` is set; it raises ``BackendError``."""

    @property
    def name(self) -> str: ...

    @property
    def kind(self) -> Literal["local", "azure"]: ...

    def stream(
        self, request: GenerationRequest, cancel: threading.Event, stats: GenerationStats
    ) -> Iterator[str]: ...

    def count_tokens(self, messages: tuple[ChatMessage, ...]) -> int:
        """Tokens the prompt for ``messages`` takes (with the generation prompt)."""
        ...
