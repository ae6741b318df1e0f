"""The Azure OpenAI story model: chat completions, streamed, through the official client."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any, Literal

from appliance.azure_openai.resilience import AzureCaller, AzureUnavailableError, make_client
from appliance.azure_openai.settings import AzureSettings
from appliance.story.llm import BackendError, ChatMessage, GenerationRequest, GenerationStats


class AzureStoryLLM:
    kind: Literal["azure"] = "azure"

    def __init__(
        self, settings: AzureSettings, caller: AzureCaller | None = None, client: Any = None
    ) -> None:
        self.settings = settings
        self.caller = caller or AzureCaller(settings)
        self._client = client or make_client(settings)
        self.name = f"azure {settings.deployment}"

    def unavailable_for(self) -> float:
        return self.caller.unavailable_for()

    def count_tokens(self, messages: tuple[ChatMessage, ...]) -> int:
        # No tokenizer here: a deliberate overestimate (English runs ~4 chars a token;
        # 3 leaves room) plus the per-message overhead of the chat format.
        return sum(len(m.content) // 3 + 8 for m in messages) + 8

    def stream(
        self, request: GenerationRequest, cancel: threading.Event, stats: GenerationStats
    ) -> Iterator[str]:
        if request.purpose == "warm":
            return  # no cache to warm on this side
        started = time.perf_counter()
        messages = [{"role": m.role, "content": m.content} for m in request.messages]

        def open_stream() -> tuple[Any, list[str]]:
            # Open the stream and read up to the first text, so that errors at the start
            # (429, 5xx, a malformed first chunk) fall under the retry policy.
            stream = self._client.chat.completions.create(
                model=self.settings.deployment,
                messages=messages,
                max_tokens=request.max_tokens,
                temperature=request.temperature,
                seed=request.seed,
                stop=list(request.stop) or None,
                stream=True,
            )
            iterator = iter(stream)
            first: list[str] = []
            for chunk in iterator:
                text = _delta_text(chunk)
                if text:
                    first.append(text)
                    break
            return iterator, first

        try:
            iterator, first = self.caller.call("story", open_stream)
        except AzureUnavailableError as exc:
            raise BackendError(self.name, exc.problem, retry_after=exc.retry_after) from exc
        stats.ttft_s = time.perf_counter() - started
        try:
            for text in first:
                stats.completion_tokens += 1
                yield text
            for chunk in iterator:
                if cancel.is_set():
                    break
                text = _delta_text(chunk)
                if text:
                    stats.completion_tokens += 1
                    yield text
        except GeneratorExit:
            raise
        except Exception as exc:  # a stream broken mid-way: count it against Azure
            problem = f"stream broke: {type(exc).__name__}: {exc}"
            self.caller.record_failure(problem)
            raise BackendError(self.name, problem) from exc
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()
            stats.duration_s = time.perf_counter() - started


def _delta_text(chunk: Any) -> str:
    choices = getattr(chunk, "choices", None) or []
    if not choices:
        return ""
    delta = getattr(choices[0], "delta", None)
    return (getattr(delta, "content", None) or "") if delta is not None else ""
