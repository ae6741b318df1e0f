"""A story plan: a cast, a world, a goal and the steps of one episode, drawn from the parts.

The plan is data (saved with the story as JSON), so a restart goes on with the same
hero, the same goal and the same next step. The model writes prose; the plan keeps the
cast and the continuity.
"""

from __future__ import annotations

import random
import re
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, Field

from appliance.story.plan.parts import Character, StepKind, StoryParts, World

ARTICLE = re.compile(r"^(?:the|a|an|some)\s+", re.IGNORECASE)
FINDING = re.compile(
    r"\b(?:found|finds|discover(?:ed|s)?|spott(?:ed)?|spots?|saw|sees|got it|in (?:hand|paw))\b"
)
NAMED = re.compile(r"\b(?:named|called)\s+([A-Z][\w'-]*)")


class PlannedStep(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: StepKind
    text: str
    essential: bool = False
    ease: str = ""
    """How it goes when the reader frowns (the trouble eases)."""
    safe: str = ""
    """How it goes when the reader is afraid (safety now)."""


class StoryPlan(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seed: int
    cast: list[Character] = Field(min_length=1)
    """The hero first, then the companions."""
    world: str
    home: str
    places: list[str]
    episode: int = 1
    shape: str
    goal: str
    treasure: str
    helper: str
    steps: list[PlannedStep]
    cursor: int = 0
    """The next step to tell."""
    turns_told: int = 0
    """Turns told in this episode."""
    reveal: str = ""
    twists: list[str] = Field(default_factory=list)
    funny: list[str] = Field(default_factory=list)
    comfort: list[str] = Field(default_factory=list)
    safety: list[str] = Field(default_factory=list)
    previously: list[str] = Field(default_factory=list)
    """How the earlier episodes ended (the latest last)."""
    last_was_moment: bool = False
    """The last turn told a moment beside the plan: the next one moves the plot."""
    kept_for_climax: list[str] = Field(default_factory=list)
    """What the climax finds, besides a treasure the plot is about (see found_too_soon)."""
    helper_met: bool = False
    """The helper has been told of in this episode: from now on, by their name."""

    @property
    def hero(self) -> Character:
        return self.cast[0]

    @property
    def ended(self) -> bool:
        return self.cursor >= len(self.steps)

    def cast_line(self) -> str:
        people = [f"{c.name} is a {c.kind} ({c.pronoun}), {c.trait}" for c in self.cast]
        return "; ".join(people) + "."

    def world_line(self) -> str:
        return (
            f"The story happens in {self.world}. Home is {self.home}. Places: "
            f"{', '.join(self.places)}."
        )

    def helper_name(self) -> str:
        """How the story speaks of the helper once met: "a kind heron named Stilts" ->
        "Stilts", "a family of glow-worms" -> "the family of glow-worms"."""
        named = NAMED.search(self.helper)
        return named.group(1) if named else ARTICLE.sub("the ", self.helper, count=1)

    def found_too_soon(self, sentence: str) -> bool:
        """Whether ``sentence`` has the treasure found before the climax is told: the plan
        keeps that for the climax ("They dug down and discovered a shell that hummed", in
        the second turn of a hunt for a shell that hums). Only for an episode whose plot is
        about its treasure."""
        climax = next((i for i, s in enumerate(self.steps) if s.kind == "climax"), None)
        if climax is None or self.cursor > climax:
            return False
        things = [w.lower() for w in self.kept_for_climax]
        if any(self.treasure in s.text for s in self.steps):
            treasure = re.findall(r"[a-z]+", key_words(self.treasure).lower())
            things += [w for w in treasure if len(w) > 3 and w not in {"that", "with"}]
            things.append("treasure")
        lowered = sentence.lower()
        return (
            bool(things)
            and bool(FINDING.search(lowered))
            and any(re.search(rf"\b{re.escape(w)}", lowered) for w in things)
        )

    def names(self) -> list[str]:
        return [c.name for c in self.cast]

    def proper_names(self) -> tuple[str, ...]:
        """The words a story must be free to say again and again, spelt the same: the
        cast's names, the places, the home, the treasure and the helper."""
        names = [*self.names(), *self.places, self.home, key_words(self.treasure)]
        names.append(key_words(self.helper))
        return tuple(dict.fromkeys(w for name in names for w in name.split() if len(w) > 2))


def key_words(text: str) -> str:
    """A thing's name without its article ("a silver acorn" -> "silver acorn")."""
    return ARTICLE.sub("", text.strip())


T = TypeVar("T")


def rotation(items: list[T], k: int, seed: int, episode: int) -> list[T]:
    """``k`` of ``items`` for this episode: shuffled once per story, then taken in turn,
    so that the episodes of a series meet different troubles and moments. Once all have
    been used they are shuffled again, so a long series does not come round in the same
    order (and never gives what the episode before used again across the seam)."""
    n = len(items)
    start = (episode - 1) * k
    orders: list[list[T]] = []
    for cycle in range((start + min(k, n) - 1) // n + 1 if n else 0):
        shuffled = random.Random(seed + 7919 * cycle).sample(items, n)
        if orders and n > k:
            # What the last episode of the cycle used comes last in the new one: not in the
            # next episode again (a comfort told twice in 13 turns).
            recent = orders[-1][-k:]
            shuffled = [x for x in shuffled if x not in recent] + [
                x for x in shuffled if x in recent
            ]
        elif orders and n > 1 and shuffled[0] == orders[-1][-1]:
            shuffled[0], shuffled[1] = shuffled[1], shuffled[0]
        orders.append(shuffled)
    return [orders[(start + i) // n][(start + i) % n] for i in range(min(k, n))]


def cast_for_episode(cast: list[Character], shapes: int, episode: int) -> list[Character]:
    """The cast with the companions' roles swapped every time the shapes come round again:
    the second telling of a shape is about the other friend ("a surprise party for Poppy",
    then for Moss)."""
    if len(cast) < 3 or ((episode - 1) // max(shapes, 1)) % 2 == 0:
        return cast
    return [cast[0], cast[2], cast[1], *cast[3:]]


def _fill(text: str, roles: dict[str, str]) -> str:
    return text.format(**roles)


def _cast(parts: StoryParts, rng: random.Random) -> list[Character]:
    cast: list[Character] = []
    if parts.hero is not None:
        cast.append(parts.hero)
    cast += parts.companions[: 3 - len(cast)]
    names = [n for n in parts.names if n not in {c.name for c in cast}]
    kinds = [k for k in parts.kinds if k not in {c.kind for c in cast}]
    rng.shuffle(names)
    rng.shuffle(kinds)
    traits = rng.sample(parts.traits, k=min(3, len(parts.traits)))
    while len(cast) < 3 and names and kinds:
        cast.append(
            Character(
                name=names.pop(),
                kind=kinds.pop(),
                trait=traits[len(cast) % len(traits)],
                pronoun=rng.choice(("he", "she")),
            )
        )
    return cast


def _roles(
    cast: list[Character], home: str, places: list[str], treasure: str, helper: str
) -> dict[str, str]:
    friend = cast[1] if len(cast) > 1 else cast[0]
    friend2 = cast[2] if len(cast) > 2 else friend
    return {
        "hero": cast[0].name,
        "hero_kind": cast[0].kind,
        "friend": friend.name,
        "friend_kind": friend.kind,
        "friend2": friend2.name,
        "friend2_kind": friend2.kind,
        "home": home,
        "place": places[0],
        "place2": places[1],
        "far": places[2],
        "treasure": treasure,
        "helper": helper,
        "thing": "",
    }


def _episode(
    parts: StoryParts,
    rng: random.Random,
    cast: list[Character],
    world: World,
    *,
    seed: int,
    episode: int,
    previously: list[str],
) -> StoryPlan:
    shape = rotation(parts.shapes, 1, seed, episode)[0]
    home, world_name = world.home, world.name
    places = rng.sample(world.places, k=min(4, len(world.places)))
    treasure = rotation(parts.treasures, 1, seed, episode)[0]
    helper = rotation(parts.helpers, 1, seed, episode)[0]
    roles = _roles(
        cast_for_episode(cast, len(parts.shapes), episode), home, places, treasure, helper
    )
    troubles = sum(1 for step in shape.steps if step.kind == "trouble")
    obstacles = rotation(parts.obstacles, troubles, seed, episode)
    steps: list[PlannedStep] = []
    trouble_at = [places[0], places[1], places[3] if len(places) > 3 else places[1]]
    for step in shape.steps:
        if step.kind == "trouble":
            obstacle = obstacles.pop()
            at = {**roles, "place": trouble_at[min(len(steps) // 3, 2)], "thing": obstacle.thing}
            steps.append(
                PlannedStep(
                    kind="trouble",
                    text=_fill(obstacle.text, at),
                    essential=step.essential,
                    ease=_fill(obstacle.ease, at),
                    safe=_fill(obstacle.safe, at),
                )
            )
        elif step.kind == "worse":
            worse = _fill(step.text or rotation(parts.worse, 1, seed, episode)[0], roles)
            steps.append(
                PlannedStep(
                    kind="worse",
                    text=worse,
                    essential=step.essential,
                    ease=f"{worse}, {_fill(parts.worse_ease, roles)}" if parts.worse_ease else "",
                    safe=f"{worse}, {_fill(parts.worse_safe, roles)}" if parts.worse_safe else "",
                )
            )
        else:
            steps.append(
                PlannedStep(kind=step.kind, text=_fill(step.text, roles), essential=step.essential)
            )

    def pool(texts: list[str], k: int) -> list[str]:
        return [_fill(t, roles) for t in rotation(texts, k, seed + len(texts), episode)]

    return StoryPlan(
        seed=seed,
        cast=cast,
        world=world_name,
        home=home,
        places=places,
        episode=episode,
        shape=shape.name,
        goal=_fill(shape.goal, roles),
        kept_for_climax=shape.kept_for_climax,
        treasure=treasure,
        helper=helper,
        steps=steps,
        reveal=pool(parts.reveals, 1)[0],
        twists=pool(parts.twists, 2),
        funny=pool(parts.funny, 3),
        comfort=pool(parts.comfort, 2),
        safety=pool(parts.safety, 2),
        previously=previously[-2:],
    )


def make_plan(parts: StoryParts, seed: int | None = None) -> StoryPlan:
    """A new story: a cast, a world and the first episode, at random from ``parts``."""
    seed = random.SystemRandom().randrange(2**31) if seed is None else seed
    rng = random.Random(seed)
    cast = _cast(parts, rng)
    world = rng.choice(parts.worlds)
    return _episode(parts, rng, cast, world, seed=seed, episode=1, previously=[])


def next_episode(parts: StoryParts, plan: StoryPlan) -> StoryPlan:
    """The series goes on: the same cast in the same world, a new shape and new troubles."""
    rng = random.Random(plan.seed * 1009 + plan.episode)
    world = next((w for w in parts.worlds if w.name == plan.world), None)
    world = world or World(name=plan.world, home=plan.home, places=plan.places)
    ending = plan.steps[-1].text if plan.steps else ""
    return _episode(
        parts,
        rng,
        plan.cast,
        world,
        seed=plan.seed,
        episode=plan.episode + 1,
        previously=[*plan.previously, f"{ending[:1].upper()}{ending[1:]}."],
    )
