"""The real story model, wrapped: a test changes what it sees or when, nothing else."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Literal

from appliance.story.llm import ChatMessage, GenerationRequest, GenerationStats, StoryLLM


class WrappedLLM:
    """Passes everything to ``llm``; subclasses change ``stream``."""

    def __init__(self, llm: StoryLLM) -> None:
        self.llm = llm

    @property
    def name(self) -> str:
        return self.llm.name

    @property
    def kind(self) -> Literal["local", "azure"]:
        return self.llm.kind

    def stream(
        self, request: GenerationRequest, cancel: threading.Event, stats: GenerationStats
    ) -> Iterator[str]:
        return self.llm.stream(request, cancel, stats)

    def count_tokens(self, messages: tuple[ChatMessage, ...]) -> int:
        return self.llm.count_tokens(messages)
