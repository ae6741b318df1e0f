"""Story settings for benchmarks: the configured ones, local only, with a fixed seed."""

from __future__ import annotations

from appliance.story.settings import StorySettings

BENCH_SEED = 1234


def repeatable_story(story: StorySettings, model: str | None) -> StorySettings:
    """``story`` with the local model only (``model`` if given) and a fixed seed, so two
    runs of a benchmark tell the same story."""
    llama = story.llama.model_copy(
        update={"seed": story.llama.seed if story.llama.seed >= 0 else BENCH_SEED}
        | ({"model": model} if model else {})
    )
    return story.model_copy(update={"llama": llama, "backend": "local"})
