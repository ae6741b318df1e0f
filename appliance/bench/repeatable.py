"""Story settings for benchmarks: the configured ones, local only, with a fixed seed."""

from __future__ import annotations

from pathlib import Path

from appliance.settings import Settings
from appliance.story.settings import StorySettings

BENCH_SEED = 1234


def repeatable_story(story: StorySettings, model: str | None) -> StorySettings:
    """``story`` with the local model only (``model`` if given) and fixed seeds (sampling
    and plan), so two runs of a benchmark tell the same story."""
    llama = story.llama.model_copy(
        update={"seed": story.llama.seed if story.llama.seed >= 0 else BENCH_SEED}
        | ({"model": model} if model else {})
    )
    plan_seed = story.plan_seed if story.plan_seed >= 0 else BENCH_SEED
    return story.model_copy(update={"llama": llama, "backend": "local", "plan_seed": plan_seed})


def bench_appliance_settings(settings: Settings, state_dir: Path, model: str | None) -> Settings:
    """The appliance as benchmarks run it: its state in ``state_dir``, the repeatable
    story, the narrator writing WAV files (no speaker here), the page on a free local port."""
    return settings.model_copy(
        update={
            "state_dir": state_dir,
            "story": repeatable_story(settings.story, model),
            "speech": settings.speech.model_copy(
                update={"output": "wav", "wav_dir": state_dir / "wav"}
            ),
            "web": settings.web.model_copy(update={"host": "127.0.0.1", "port": 0}),
        }
    )
