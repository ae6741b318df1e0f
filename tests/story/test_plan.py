"""Story plans: parts as data, a cast and a plot drawn from them, beats chosen by the mood."""

from __future__ import annotations

import itertools
import random
import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from appliance.story.guards import sentence_reason
from appliance.story.plan.beats import after, choose_beat, spare_turns
from appliance.story.plan.parts import PartsError, builtin_parts, load_parts
from appliance.story.plan.planner import StoryPlan, key_words, make_plan, next_episode, rotation
from appliance.story.prompts import as_sentence
from appliance.story.settings import StorySettings
from appliance.story.storyteller import cast_check

PARTS = load_parts()
EPISODE = 12


def told(plan: StoryPlan, labels: list[str], episode_turns: int = EPISODE) -> StoryPlan:
    for label in labels:
        plan = after(plan, choose_beat(plan, label, episode_turns))
    return plan


def test_a_plan_has_a_cast_a_world_a_goal_troubles_a_climax_and_an_ending() -> None:
    plan = make_plan(PARTS, 11)
    assert len(plan.cast) == 3
    assert len({c.name for c in plan.cast}) == 3 and len({c.kind for c in plan.cast}) == 3
    assert all(c.trait and c.pronoun in ("he", "she") for c in plan.cast)
    assert plan.world in {w.name for w in PARTS.worlds} and len(plan.places) == 4
    assert plan.hero.name in plan.goal
    kinds = [step.kind for step in plan.steps]
    assert kinds[0] == "setup" and kinds[-1] == "ending" and "climax" in kinds
    assert kinds.count("trouble") >= 2 and "worse" in kinds
    # Every trouble comes with the way it eases (a frown) and the way it is made safe (fear).
    for step in plan.steps:
        if step.kind in ("trouble", "worse"):
            assert step.ease and step.safe
        assert "{" not in step.text  # every placeholder filled
    assert plan.reveal and plan.twists and plan.funny


def test_plans_are_drawn_at_random_and_repeat_by_seed() -> None:
    assert make_plan(PARTS, 5) == make_plan(PARTS, 5)
    plans = [make_plan(PARTS, seed) for seed in range(20)]
    assert len({(p.hero.name, p.hero.kind, p.world, p.shape) for p in plans}) == 20
    assert len({p.shape for p in plans}) == len(PARTS.shapes)


def test_a_plan_round_trips_as_json() -> None:
    plan = told(make_plan(PARTS, 2), ["neutral", "happy", "neutral"])
    assert StoryPlan.model_validate_json(plan.model_dump_json()) == plan


@pytest.mark.parametrize(
    ("label", "kind", "way"),
    [
        ("neutral", "trouble", "plain"),  # a calm reader: the plot simply goes on
        ("sad", "trouble", "eased"),  # a frown: the trouble eases now
        ("angry", "trouble", "eased"),
        ("disgust", "trouble", "eased"),  # disgust is a frown too
        ("fear", "trouble", "safe"),  # fear: safety now
    ],
)
def test_the_mood_chooses_how_a_trouble_goes(label: str, kind: str, way: str) -> None:
    plan = make_plan(PARTS, 4)
    plan = plan.model_copy(update={"cursor": [s.kind for s in plan.steps].index("trouble")})
    beat = choose_beat(plan, label, EPISODE)
    assert (beat.kind, beat.way) == (kind, way)
    step = plan.steps[plan.cursor]
    assert beat.text == {"plain": step.text, "eased": step.ease, "safe": step.safe}[way]


@pytest.mark.parametrize(
    ("label", "kind", "pool"),
    [
        ("happy", "funny", "funny"),  # a smile: the funny branch
        ("surprise", "reveal", "reveal"),  # surprise: the reveal
        ("bored", "twist", "twists"),  # boredom: a twist the plan allows
        ("away", "twist", "twists"),
        ("sad", "comfort", "comfort"),  # a frown with no trouble near: a warm moment
        ("fear", "safety", "safety"),
    ],
)
def test_the_mood_chooses_what_happens(label: str, kind: str, pool: str) -> None:
    plan = told(make_plan(PARTS, 4), ["neutral"])  # the setup is told; the next is "go"
    beat = choose_beat(plan, label, EPISODE)
    assert beat.kind == kind and beat.step is None
    texts = [plan.reveal] if pool == "reveal" else getattr(plan, pool)
    assert beat.text == texts[0]
    later = after(plan, beat)
    assert later.cursor == plan.cursor  # a moment beside the plan: the plot waits one turn
    assert beat.text not in ([later.reveal] if pool == "reveal" else getattr(later, pool))


def test_a_turn_for_the_worse_eases_for_a_frown_and_is_made_safe_for_fear() -> None:
    plan = make_plan(PARTS, 4)
    worse = [s.kind for s in plan.steps].index("worse")
    plan = plan.model_copy(update={"cursor": worse})
    step = plan.steps[worse]
    assert step.ease and step.ease != step.text
    assert choose_beat(plan, "sad", EPISODE).text == step.ease
    assert choose_beat(plan, "fear", EPISODE).text == step.safe
    assert choose_beat(plan, "neutral", EPISODE).text == step.text


@pytest.mark.parametrize("kind", ["climax", "ending"])
@pytest.mark.parametrize("label", ["happy", "surprise", "bored", "sad", "fear"])
def test_no_moment_holds_up_a_climax_or_an_ending(kind: str, label: str) -> None:
    plan = make_plan(PARTS, 4)
    kinds: list[str] = [s.kind for s in plan.steps]
    at = kinds.index(kind)
    plan = plan.model_copy(update={"cursor": at, "turns_told": 1})  # turns to spare
    assert spare_turns(plan, EPISODE) > 0
    beat = choose_beat(plan, label, EPISODE)
    assert (beat.kind, beat.step) == (kind, at)


def test_no_moment_before_the_setup_nor_two_in_a_row() -> None:
    plan = make_plan(PARTS, 4)
    assert choose_beat(plan, "happy", EPISODE).kind == "setup"
    plan = told(plan, ["neutral", "happy"])
    assert choose_beat(plan, "happy", EPISODE).step == plan.cursor


def test_with_no_turns_to_spare_the_plot_goes_on_and_skips_what_it_can() -> None:
    plan = make_plan(PARTS, 4)
    essential = sum(1 for s in plan.steps if s.essential)
    short = essential + 1
    plan = told(plan, ["neutral"], short)
    assert spare_turns(plan, short) <= 0
    beat = choose_beat(plan, "happy", short)
    assert beat.step is not None  # no funny moment: there is no time for it
    plan = told(plan, ["neutral"] * (short - 1), short)
    assert plan.ended  # the climax and the ending were told in the turns there were


@pytest.mark.parametrize("seed", range(12))
def test_every_episode_ends_within_its_turns_whatever_the_reader_does(seed: int) -> None:
    rng = random.Random(seed)
    labels = ["neutral", "happy", "sad", "fear", "surprise", "angry", "disgust", "bored", "away"]
    plan = make_plan(PARTS, seed)
    kinds: list[str] = []
    while len(kinds) < 3 * EPISODE:
        beat = choose_beat(plan, rng.choice(labels), EPISODE)
        plan = after(plan, beat)
        kinds.append(beat.kind)
        if beat.ends_episode:
            break
    assert kinds[-1] == "ending" and "climax" in kinds and len(kinds) <= EPISODE
    assert kinds[0] == "setup" and plan.ended


def test_the_next_episode_keeps_the_hero_and_the_world() -> None:
    first = told(make_plan(PARTS, 9), ["neutral"] * EPISODE)
    assert first.ended
    second = next_episode(PARTS, first)
    assert second.episode == 2 and second.cast == first.cast and second.world == first.world
    assert second.cursor == 0 and second.turns_told == 0
    assert second.shape != first.shape
    assert first.steps[-1].text[1:] in second.previously[-1]
    third = next_episode(PARTS, told(second, ["neutral"] * EPISODE))
    assert third.shape not in (first.shape, second.shape) and len(third.previously) == 2


def test_a_long_series_does_not_tell_an_episode_again() -> None:
    plan = told(make_plan(PARTS, 1234), ["neutral"] * EPISODE)
    plans = [plan]
    for _ in range(2 * len(PARTS.shapes)):
        plans.append(next_episode(PARTS, told(plans[-1], ["neutral"] * EPISODE)))
    shapes = [p.shape for p in plans]
    assert all(a != b for a, b in itertools.pairwise(shapes))  # never twice running
    setups = [p.steps[0].text for p in plans]
    assert len(set(setups)) == len(setups)  # a shape told again is about the other friend
    troubles = [tuple(s.text for s in p.steps if s.kind == "trouble") for p in plans]
    assert len(set(troubles)) == len(troubles)
    assert all(p.cast == plan.cast for p in plans)


def test_a_users_parts_add_to_the_package_and_choose_the_hero(tmp_path: Path) -> None:
    mine = tmp_path / "parts.toml"
    mine.write_text(
        '[hero]\nname = "Maya"\nkind = "girl"\ntrait = "fond of puddles"\npronoun = "she"\n'
        '[[companions]]\nname = "Biscuit"\nkind = "dog"\ntrait = "always hungry"\n'
        '[[worlds]]\nname = "Grandma\'s Garden"\nhome = "the blue house"\n'
        'places = ["the Swing", "the Bean Rows", "the Pond", "the Big Tree"]\n'
    )
    parts = load_parts(mine)
    assert len(parts.worlds) == len(builtin_parts().worlds) + 1
    for seed in range(5):
        plan = make_plan(parts, seed)
        assert plan.hero.name == "Maya" and plan.hero.kind == "girl"
        assert plan.cast[1].name == "Biscuit" and len(plan.cast) == 3
    assert StorySettings(parts_file=mine).parts_file == mine


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("kinds = [", "not valid TOML"),
        ('twists = ["the {dragon} woke"]', "unknown placeholder {dragon}"),
        ('funny = ["{} sneezed"]', "unknown placeholder {}"),
        ('funny = ["{0} sneezed"]', "unknown placeholder {0}"),
        ('funny = ["{hero sneezed"]', "expected '}' before end of string in '{hero sneezed'"),
        ('[hero]\nname = "Maya"\n', "hero.kind"),
        ('colour = "blue"', "colour"),
        (
            '[[shapes]]\nname = "x"\ngoal = "y"\nsteps = [{kind="go", text="a"}, '
            '{kind="climax", text="b"}, {kind="ending", text="c"}]',
            "must begin with a setup",
        ),
        (
            '[[shapes]]\nname = "x"\ngoal = "y"\nsteps = [{kind="setup", text="a"}, '
            '{kind="go", text="b"}, {kind="ending", text="c"}]',
            "have a climax",
        ),
        (
            '[[shapes]]\nname = "x"\ngoal = "y"\nsteps = [{kind="setup", text="a"}, '
            '{kind="climax", text="b"}, {kind="go", text="c"}]',
            "end with an ending",
        ),
    ],
)
def test_a_bad_parts_file_is_one_clear_sentence(tmp_path: Path, text: str, says: str) -> None:
    mine = tmp_path / "parts.toml"
    mine.write_text(text)
    with pytest.raises(PartsError, match=r"parts\.toml") as caught:
        load_parts(mine)
    assert says in str(caught.value)
    with pytest.raises(ValidationError, match="parts_file"):
        StorySettings(parts_file=mine)


def test_parts_that_lack_a_list_say_which() -> None:
    bare = builtin_parts().model_copy(update={"twists": [], "safety": []})
    with pytest.raises(PartsError, match="story parts lack twists, safety"):
        bare.complete()
    assert builtin_parts().complete() == builtin_parts()


def test_a_users_lists_come_first_and_nothing_is_doubled(tmp_path: Path) -> None:
    mine = tmp_path / "parts.toml"
    own = builtin_parts().funny[0]
    mine.write_text(f'funny = ["{{hero}} sneezed a dandelion", "{own}"]\n')
    funny = load_parts(mine).funny
    assert funny[:2] == ["{hero} sneezed a dandelion", own]
    assert funny.count(own) == 1 and len(funny) == len(builtin_parts().funny) + 1


def test_a_missing_parts_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(PartsError, match=r"cannot read story parts .*missing\.toml"):
        load_parts(tmp_path / "missing.toml")


def every_beat_text(plan: StoryPlan) -> list[str]:
    texts = [t for s in plan.steps for t in (s.text, s.ease, s.safe) if t]
    moments = [plan.reveal, *plan.twists, *plan.funny, *plan.comfort, *plan.safety]
    return [*texts, *moments, plan.goal]


def test_every_beat_the_parts_can_tell_passes_the_guards() -> None:
    """Told word for word as a turn's first sentence, each text of the parts must be a
    sentence the guards would let a model say: the story's own words set the example. Every
    shape, treasure and helper is drawn (and a helper met is called by name)."""
    shapes, treasures, helpers = set(), set(), set()
    for seed in range(12):
        plan = make_plan(PARTS, seed)
        for _ in range(len(PARTS.shapes)):
            shapes.add(plan.shape)
            treasures.add(plan.treasure)
            helpers.add(plan.helper)
            check = cast_check(plan, PARTS)
            named = [t.replace(plan.helper, plan.helper_name()) for t in every_beat_text(plan)]
            for text in every_beat_text(plan) + named:
                sentence = as_sentence(text)
                assert "{" not in sentence
                assert sentence_reason(sentence, set(), check) is None, sentence
            plan = next_episode(PARTS, plan)
    assert shapes == {shape.name for shape in PARTS.shapes}
    assert treasures == set(PARTS.treasures) and helpers == set(PARTS.helpers)


def test_a_journey_sets_off_for_where_the_goal_is() -> None:
    """A plot whose setting-off step heads somewhere heads for its goal's place ({far}), by the
    places where the troubles happen on the way. Heading "towards {place}" sent a lost duckling,
    whose mother lived at the Tall Pines, off to the Foxglove Meadow."""
    heading = re.compile(
        r"\b(?:toward|towards|(?:set|sets|setting|start|started|head|heads|headed|heading|make"
        r"|made|making|go|went|hurried|ran|walked|marched)(?: off| out| on)? (?:for|to|towards))"
        r"\s+(\{\w+\})(?! to )"  # "went to {place} to gather berries" is an errand, not a journey
    )
    journeys = 0
    for shape in PARTS.shapes:
        for step in (step for step in shape.steps if step.kind == "go"):
            for place in heading.findall(step.text):
                journeys += 1
                assert place == "{far}", (shape.name, step.text)
    assert journeys >= 4


def test_a_helper_once_met_is_called_by_name() -> None:
    plan = make_plan(PARTS, 4)
    named = plan.helper_name()
    assert named == "Digby" and plan.helper == "a mole named Digby with a lantern"
    # The helper's step: the first time in full, after that by name.
    meet = next(i for i, s in enumerate(plan.steps) if plan.helper in (s.text + s.ease))
    first = plan.model_copy(update={"cursor": meet, "last_was_moment": True})
    beat = choose_beat(first, "sad", EPISODE)
    assert plan.helper in beat.text
    met = after(first, beat)
    assert met.helper_met
    assert after(met, choose_beat(met, "neutral", EPISODE)).helper_met  # and stays met
    later = met.model_copy(update={"cursor": meet, "last_was_moment": True})
    again = choose_beat(later, "sad", EPISODE)
    assert plan.helper not in again.text and named in again.text
    # A new episode meets its helper afresh.
    assert not next_episode(PARTS, met).helper_met


def test_a_helper_with_no_name_is_called_the_helper() -> None:
    plan = make_plan(PARTS, 4).model_copy(update={"helper": "a family of glow-worms"})
    assert plan.helper_name() == "the family of glow-worms"
    called = plan.model_copy(update={"helper": "an owl called Orla"})
    assert called.helper_name() == "Orla"


def test_the_treasure_is_not_found_before_the_climax() -> None:
    plan = next(p for seed in range(40) if (p := make_plan(PARTS, seed)).shape == "lost and found")
    thing = key_words(plan.treasure).split()[-1]
    found = f"They dug down and discovered the {thing} under a leaf."
    assert plan.found_too_soon(found)
    assert not plan.found_too_soon(f"{plan.cast[1].name} missed the {thing} very much.")
    assert not plan.found_too_soon("They found a way around the log.")
    climax = next(i for i, s in enumerate(plan.steps) if s.kind == "climax")
    assert not plan.model_copy(update={"cursor": climax + 1}).found_too_soon(found)
    # What the climax finds is kept for it too: the duckling's mother.
    duck = next(p for s in range(40) if (p := make_plan(PARTS, s)).shape == "the missing way home")
    assert duck.found_too_soon('Pip said, "I found your mommy!"')
    assert not duck.found_too_soon('"Let\'s go and find Mommy!" said Pip.')  # not yet found
    # A plot not about its treasure: the treasure may turn up.
    moon = next(
        p for s in range(40) if (p := make_plan(PARTS, s)).shape == "the moon in the puddle"
    )
    assert not moon.found_too_soon(f"They found {moon.treasure}.")


def test_what_one_episode_used_is_not_used_by_the_next_across_a_reshuffle() -> None:
    items = list(range(6))
    for seed in range(50):
        for episode in range(1, 12):
            now, then = rotation(items, 2, seed, episode + 1), rotation(items, 2, seed, episode)
            assert not set(now) & set(then), (seed, episode, then, now)
