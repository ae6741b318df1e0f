"""Story parts as data: the package's own ``parts.toml``, plus a user's file of the same form.

Parts are checked when they are read (every placeholder known, every shape ending in an
ending), so a mistake in a user's file is one clear sentence at start, not a strange
story later.
"""

from __future__ import annotations

import string
import tomllib
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

PLACEHOLDERS = frozenset(
    "hero friend friend2 hero_kind friend_kind friend2_kind home place place2 far "
    "treasure helper thing".split()
)
StepKind = Literal["setup", "go", "trouble", "meet", "worse", "climax", "ending"]


class PartsError(ValueError):
    """A story parts file that cannot be used; the message says where and why."""


def placeholders(text: str) -> set[str]:
    """Every field named in ``text``: "" for "{}" and "0" for "{0}", which no part may use."""
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


class Character(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=40)
    kind: str = Field(min_length=2, max_length=40)
    trait: str = Field(default="kind", min_length=2, max_length=80)
    pronoun: Literal["he", "she", "they"] = "they"


class World(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=2)
    home: str = Field(min_length=2)
    places: list[str] = Field(min_length=4)


class Obstacle(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str
    thing: str
    ease: str
    safe: str


class ShapeStep(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: StepKind
    text: str = ""
    essential: bool = False

    @model_validator(mode="after")
    def _text_where_needed(self) -> ShapeStep:
        if self.kind not in ("trouble", "worse") and not self.text:
            raise ValueError(f"a {self.kind} step needs a text")
        return self


class Shape(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    goal: str
    steps: list[ShapeStep] = Field(min_length=3)
    kept_for_climax: list[str] = Field(default_factory=list)
    """Words for what the climax finds ("mother", "cricket"): a sentence that finds one
    before the climax is told is caught. The treasure, where the plot is about it, always."""

    @model_validator(mode="after")
    def _ends(self) -> Shape:
        kinds = [step.kind for step in self.steps]
        if kinds[-1] != "ending" or kinds[0] != "setup" or "climax" not in kinds:
            raise ValueError(
                f"shape {self.name!r} must begin with a setup, have a climax and end with an ending"
            )
        return self


class StoryParts(BaseModel):
    """Every list may be empty in a user's file; the package's own file fills them all."""

    model_config = ConfigDict(extra="forbid")

    hero: Character | None = None
    companions: list[Character] = Field(default_factory=list, max_length=3)
    kinds: list[str] = Field(default_factory=list)
    names: list[str] = Field(default_factory=list)
    traits: list[str] = Field(default_factory=list)
    other_kinds: list[str] = Field(default_factory=list)
    treasures: list[str] = Field(default_factory=list)
    helpers: list[str] = Field(default_factory=list)
    worlds: list[World] = Field(default_factory=list)
    obstacles: list[Obstacle] = Field(default_factory=list)
    worse: list[str] = Field(default_factory=list)
    worse_ease: str = ""
    worse_safe: str = ""
    shapes: list[Shape] = Field(default_factory=list)
    funny: list[str] = Field(default_factory=list)
    reveals: list[str] = Field(default_factory=list)
    twists: list[str] = Field(default_factory=list)
    comfort: list[str] = Field(default_factory=list)
    safety: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _known_placeholders(self) -> StoryParts:
        for text in self.templates():
            try:
                unknown = placeholders(text) - PLACEHOLDERS
            except ValueError as exc:  # "{hero sneezed": a brace never closed
                raise ValueError(f"{exc} in {text!r}") from exc
            if unknown:
                names = ", ".join("{" + u + "}" for u in sorted(unknown))
                raise ValueError(f"unknown placeholder {names} in {text!r}")
        return self

    def templates(self) -> list[str]:
        texts = [*self.worse, self.worse_ease, self.worse_safe, *self.funny, *self.reveals]
        texts += [*self.twists, *self.comfort, *self.safety]
        for obstacle in self.obstacles:
            texts += [obstacle.text, obstacle.ease, obstacle.safe]
        for shape in self.shapes:
            texts += [shape.goal, *(step.text for step in shape.steps)]
        return texts

    def merged(self, extra: StoryParts) -> StoryParts:
        """These parts with ``extra``'s added (its hero and companions, when it has them,
        take the lead)."""
        data = self.model_dump()
        for key, value in extra.model_dump().items():
            if key == "hero":
                data[key] = value if value is not None else data[key]
            elif isinstance(value, list):
                data[key] = value + [v for v in data[key] if v not in value]
            elif value:
                data[key] = value
        return StoryParts.model_validate(data)

    def complete(self) -> StoryParts:
        """These parts if a story can be made of them; PartsError says what is missing."""
        needed = "kinds names traits treasures helpers worlds obstacles worse shapes funny"
        needed += " reveals twists comfort safety"
        missing = [key for key in needed.split() if not getattr(self, key)]
        if missing:
            raise PartsError(f"story parts lack {', '.join(missing)}")
        return self


def _read(text: str, where: str) -> StoryParts:
    try:
        return StoryParts.model_validate(tomllib.loads(text))
    except tomllib.TOMLDecodeError as exc:
        raise PartsError(f"{where} is not valid TOML: {exc}") from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        at = ".".join(str(p) for p in first["loc"])
        raise PartsError(f"{where}: {at + ': ' if at else ''}{first['msg']}") from exc


def builtin_parts() -> StoryParts:
    text = resources.files("appliance.story.plan").joinpath("parts.toml").read_text()
    return _read(text, "the package's story parts")


def load_parts(user_file: Path | None = None) -> StoryParts:
    """The package's parts, with a user's file added when one is given."""
    parts = builtin_parts()
    if user_file is not None:
        try:
            text = user_file.read_text()
        except OSError as exc:
            raise PartsError(f"cannot read story parts {user_file}: {exc.strerror}") from exc
        parts = parts.merged(_read(text, str(user_file)))
    return parts.complete()
