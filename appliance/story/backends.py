"""Local first, Azure second: the story model the storyteller talks to.

The local model is used while it is healthy. It is set aside when its file is missing
or corrupt, it fails to load, it crashes or stalls, or it runs below the tokens/s floor
two turns running; Azure takes over if configured, else the story pauses. The switch is
reported (status events), and reversible: a background thread tries the local model
again every ``retry_local_after_s`` and hands the story back when it is healthy.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Literal

from appliance.story.azure_backend import AzureStoryLLM
from appliance.story.llama_backend import LlamaBackend
from appliance.story.llm import (
    BackendError,
    ChatMessage,
    GenerationRequest,
    GenerationStats,
    NoBackendError,
    StoryLLM,
)
from appliance.story.settings import StorySettings

log = logging.getLogger(__name__)

SLOW_TURNS = 2


class StoryBackends:
    """A ``StoryLLM`` that routes each request to the backend in use."""

    def __init__(
        self,
        settings: StorySettings,
        local: LlamaBackend | None,
        azure: AzureStoryLLM | None,
        on_status: Callable[[dict[str, str]], None] = lambda status: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.local = local if settings.backend != "azure" else None
        self.azure = azure if settings.backend != "local" else None
        self.on_status = on_status
        self._clock = clock
        self.local_problem: str | None = None
        self._local_set_aside_until = 0.0
        self._slow_turns = 0
        self._in_use: StoryLLM | None = None
        self._stop = threading.Event()
        self._retry_thread: threading.Thread | None = None
        self.switches = 0

    # -- state --------------------------------------------------------------------------

    @property
    def kind(self) -> Literal["local", "azure"]:
        return self._in_use.kind if self._in_use is not None else "local"

    @property
    def name(self) -> str:
        if self._in_use is not None:
            return self._in_use.name
        return self.local.name if self.local is not None else "none"

    def status(self) -> dict[str, str]:
        status = {"backend": self.name, "kind": self.kind}
        if self.local_problem:
            status["local_problem"] = self.local_problem
        if self.azure is None:
            status["azure"] = "not configured"
        else:
            wait = self.azure.unavailable_for()
            status["azure"] = f"unavailable for {wait:.0f} s" if wait else "available"
        return status

    def _local_usable(self) -> bool:
        return (
            self.local is not None
            and self.local.ready
            and self._clock() >= self._local_set_aside_until
        )

    def current(self) -> StoryLLM:
        """The backend a request goes to now; ``NoBackendError`` when none can serve."""
        chosen: StoryLLM | None = None
        if self._local_usable():
            chosen = self.local
        elif self.azure is not None and self.azure.unavailable_for() == 0:
            chosen = self.azure
        elif self.local is not None and self.local.ready:
            chosen = self.local  # slow, but the only one that answers
        if chosen is None:
            reasons = [self.local_problem or "no local model"]
            retry_after = self.settings.retry_local_after_s
            if self.azure is None:
                reasons.append("Azure is not configured")
            else:
                wait = self.azure.unavailable_for()
                reasons.append(self.azure.caller.last_problem or "Azure is unavailable")
                retry_after = min(retry_after, wait) if wait else retry_after
            raise NoBackendError("story", "; ".join(reasons), retry_after=retry_after)
        if chosen is not self._in_use:
            previous = self._in_use
            self._in_use = chosen
            if previous is not None:
                self.switches += 1
                log.warning("story model: switched from %s to %s", previous.name, chosen.name)
            self.on_status({"message": f"story model in use: {chosen.name}", **self.status()})
        return chosen

    # -- StoryLLM -----------------------------------------------------------------------

    def count_tokens(self, messages: tuple[ChatMessage, ...]) -> int:
        backend = self.current()
        try:
            return backend.count_tokens(messages)
        except BackendError as exc:
            self._failed(backend, exc)
            # A local model set aside here (stuck, say) hands the turn over at once.
            fallback = self.current()
            if fallback is backend:
                raise
            return fallback.count_tokens(messages)

    def stream(
        self, request: GenerationRequest, cancel: threading.Event, stats: GenerationStats
    ) -> Iterator[str]:
        backend = self.current()
        failed = False
        try:
            yield from backend.stream(request, cancel, stats)
        except BackendError as exc:
            failed = True
            self._failed(backend, exc)
            if backend is self.azure and not self._local_usable():
                # Nothing else to turn to: say why neither can serve.
                local = self.local_problem or "no local model"
                raise NoBackendError(
                    "story", f"{local}; {exc.problem}", retry_after=exc.retry_after
                ) from exc
            raise
        finally:
            # Also when the caller stops reading early (the usual end of a turn).
            if not failed and backend is self.local and request.purpose == "turn":
                self._check_speed(stats)

    # -- failure and recovery -------------------------------------------------------------

    def _failed(self, backend: StoryLLM, exc: BackendError) -> None:
        if backend is self.local and exc.broken:
            self.set_local_aside(exc.problem)

    def set_local_aside(self, problem: str) -> None:
        repeated = problem == self.local_problem
        self.local_problem = problem
        self._local_set_aside_until = self._clock() + self.settings.retry_local_after_s
        if repeated:  # still the same trouble: no need to say it again every retry
            log.debug("local story model still unavailable: %s", problem)
            return
        log.warning("local story model set aside: %s", problem)
        self.on_status({"message": f"local story model unavailable: {problem}", **self.status()})

    def _check_speed(self, stats: GenerationStats) -> None:
        floor = self.settings.min_tokens_per_s
        if floor <= 0 or stats.completion_tokens < 8:
            return
        if stats.tokens_per_s < floor:
            self._slow_turns += 1
            if self._slow_turns >= SLOW_TURNS and self.azure is not None:
                self._slow_turns = 0
                self.set_local_aside(
                    f"too slow ({stats.tokens_per_s:.1f} tokens/s, floor {floor:.1f})"
                )
        else:
            self._slow_turns = 0

    def start(self) -> None:
        """Load the local model (failures are reported, not raised) and start retrying."""
        if self.local is not None:
            self._try_local()
        self._retry_thread = threading.Thread(
            target=self._retry_local, name="llm-retry", daemon=True
        )
        self._retry_thread.start()

    def _try_local(self) -> bool:
        assert self.local is not None
        try:
            self.local.load()
        except BackendError as exc:
            self.set_local_aside(exc.problem)
            return False
        recovered = self.local_problem is not None
        self.local_problem = None
        self._local_set_aside_until = 0.0
        if recovered:
            log.info("local story model is back")
            self.on_status({"message": "local story model is back", **self.status()})
        return True

    def _retry_local(self) -> None:
        while not self._stop.wait(1.0):
            if self.local is None or self.local_problem is None:
                continue
            if self._clock() < self._local_set_aside_until:
                continue
            if self.local.ready and self.local_problem.startswith("too slow"):
                # Nothing to reload: give it another chance.
                self.local_problem = None
                continue
            self._try_local()

    def close(self) -> None:
        self._stop.set()
        if self._retry_thread is not None:
            self._retry_thread.join(timeout=2)
        if self.local is not None:
            self.local.close()
