"""Story settings: what the story is, how turns are made, and the local model."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from appliance.story.llama_backend import LlamaSettings


class StorySettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    premise: str = Field(
        default="A small fox named Pip, who lives at the edge of a quiet forest, sets out "
        "to find where the river begins.",
        min_length=10,
        max_length=600,
        description="What the story is about. A new story starts from it.",
    )
    genre: str = Field(
        default="gentle adventure", min_length=2, max_length=60, description="Kind of story."
    )
    audience: str = Field(
        default="all ages", min_length=2, max_length=60, description="Who the story is for."
    )
    language: Literal["English"] = Field(
        default="English", description="Language of the story (the guards check English)."
    )
    sentences_per_turn: int = Field(
        default=3, ge=1, le=8, description="A turn ends after at most this many sentences."
    )
    beats: bool = Field(
        default=True,
        description="Give each turn a story beat to reach (someone new appears, a small "
        "problem, ...), so that turns move the story on.",
    )
    openers: bool = Field(
        default=True,
        description="Start each turn with a few words chosen for the mood (the local model "
        "continues from them).",
    )
    bored_after_turns: int = Field(
        default=4,
        ge=1,
        le=100,
        description="Calm turns in a row after which the reader counts as bored (a twist).",
    )
    backend: Literal["auto", "local", "azure"] = Field(
        default="auto",
        description="auto: the local model, Azure OpenAI when it is missing, failing or too "
        "slow; local or azure: only that one.",
    )
    min_tokens_per_s: float = Field(
        default=2.0,
        ge=0,
        le=1000,
        description="A local model slower than this for two turns running hands over to "
        "Azure (when configured). 0: never for slowness.",
    )
    retry_local_after_s: float = Field(
        default=60.0,
        gt=0,
        le=86400,
        description="How long after a local failure the local model is tried again.",
    )
    attempts: int = Field(
        default=4, ge=1, le=10, description="Tries (new seed each) before a turn is given up."
    )
    summary_max_words: int = Field(
        default=70, ge=20, le=400, description="Longest the summary of folded turns may be."
    )
    keep_recent_turns: int = Field(
        default=4,
        ge=0,
        le=50,
        description="Turns kept word for word when older ones are folded into the summary.",
    )
    cut_on_shift: float = Field(
        default=0.4,
        ge=0,
        le=1.01,
        description="A mood shift at least this confident ends the turn being written at "
        "once, at the last sentence already shown (dropping it if none was), so the next "
        "turn answers the new mood without waiting (above 1: never).",
    )
    prepared_answers: int = Field(
        default=2,
        ge=0,
        le=8,
        description="While the story waits (for the narrator or the reader), write the "
        "first sentence of the answer to this many likely mood shifts (moods the reader "
        "showed lately first), so that when one comes its answer is shown at once. Costs "
        "model time only while idle; 0: off. Local model only.",
    )
    reading_wpm: int = Field(
        default=200,
        ge=0,
        le=2000,
        description="With speech off: the reading speed the story keeps pace with, never "
        "more than speech.max_ahead_s ahead of such a reader (words per minute; 0: no "
        "pacing, turn after turn as fast as the model writes).",
    )
    llama: LlamaSettings = Field(
        default_factory=LlamaSettings, description="The local story model (llama.cpp)."
    )
