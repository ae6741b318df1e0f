"""Story settings: what the story is, how turns are made, and the local model."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from appliance.story.llama_backend import LlamaSettings
from appliance.story.plan.parts import PartsError, load_parts


class StorySettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    premise: str = Field(
        default="",
        max_length=600,
        description="What every story is about, beside its plan (empty: the plan alone). "
        "To choose the hero, put them in story.parts_file.",
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
    recap_after_s: float = Field(
        default=20.0,
        ge=0,
        le=3600,
        description="A reader who comes back after looking away at least this long hears "
        "where the story had got to (the goal, then the next beat); a glance away is not "
        "recapped.",
    )
    episode_turns: int = Field(
        default=12,
        ge=5,
        le=60,
        description="An episode tells its plan (setup, troubles, climax, ending) in at most "
        "this many turns, then ends; the next keeps the hero and the world. A plan has 8 "
        "steps, and moments beside them (funny, a twist, ...) while turns are to spare.",
    )
    parts_file: Path | None = Field(
        default=None,
        description="A TOML file of story parts of your own (a hero, companions, names, "
        "places, ...), added to those the package ships.",
    )
    plan_seed: int = Field(
        default=-1,
        ge=-1,
        description="Seed for drawing story plans (-1: a new one for every story).",
    )
    lead_with_beat: Literal["sentence", "words", "off"] = Field(
        default="sentence",
        description="How a turn begins, with the local model. sentence: with its beat, told "
        "from the plan itself (and released at once), then the model goes on from it; words: "
        "with the beat's first three words, written for the model; off: as the model likes. "
        "Led in, a small model tells the plan's beat instead of going on from the shape of "
        "its last reply.",
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

    @field_validator("lead_with_beat", mode="before")
    @classmethod
    def _lead_from_bool(cls, value: object) -> object:
        # The setting was a yes/no before it had three ways.
        if isinstance(value, bool):
            return "sentence" if value else "off"
        return value

    @field_validator("parts_file")
    @classmethod
    def _parts_usable(cls, value: Path | None) -> Path | None:
        if value is not None:
            try:
                load_parts(value)
            except PartsError as exc:
                raise ValueError(str(exc)) from exc
        return value
