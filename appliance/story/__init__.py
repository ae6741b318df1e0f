"""The story engine: mood in, the next lines of a story out."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from appliance.azure_openai.settings import AzureSettings
from appliance.events import StoryEvent
from appliance.story.azure_backend import AzureStoryLLM
from appliance.story.backends import StoryBackends
from appliance.story.llama_backend import LlamaBackend
from appliance.story.settings import StorySettings
from appliance.story.store import StoryStore
from appliance.story.storyteller import StoryPausedError, Storyteller, TurnControl

STORE_FILE = "stories.sqlite3"


def open_store(state_dir: Path) -> StoryStore:
    return StoryStore(state_dir / STORE_FILE)


def build_backends(
    story: StorySettings,
    azure: AzureSettings,
    models_dir: Path,
    emit: Callable[[StoryEvent], None] = lambda event: None,
) -> StoryBackends:
    """Local llama.cpp and (when configured) Azure, behind the fallback router; started."""
    import time

    def on_status(status: dict[str, str]) -> None:
        emit(StoryEvent(kind="status", t=time.monotonic(), status=status))

    local = LlamaBackend(story.llama, models_dir) if story.backend != "azure" else None
    remote = AzureStoryLLM(azure) if azure.configured and story.backend != "local" else None
    backends = StoryBackends(story, local, remote, on_status=on_status)
    backends.start()
    return backends


__all__ = [
    "StoryBackends",
    "StoryPausedError",
    "StoryStore",
    "Storyteller",
    "TurnControl",
    "build_backends",
    "open_store",
]
