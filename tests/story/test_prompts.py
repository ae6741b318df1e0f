from __future__ import annotations

from appliance.commands.story import mood_for
from appliance.events import Emotions, Mood
from appliance.story.plan.beats import after
from appliance.story.plan.parts import load_parts
from appliance.story.plan.planner import StoryPlan, make_plan
from appliance.story.prompts import (
    RESUME_INSTRUCTION,
    SHIFT_PREFIX,
    TONES,
    as_sentence,
    beat_opening,
    instruction_for,
    system_prompt,
)
from appliance.story.settings import StorySettings

SETTINGS = StorySettings()


def plan_under_way(seed: int = 3, steps: int = 1) -> StoryPlan:
    """A plan whose setup (and ``steps`` steps in all) has been told."""
    plan = make_plan(load_parts(), seed)
    for _ in range(steps):
        plan = after(plan, instruction_for(mood_for("neutral", None), SETTINGS, plan).beat)
    return plan


def test_each_turn_tells_the_next_beat_and_a_tone() -> None:
    plan = plan_under_way()
    instruction = instruction_for(mood_for("neutral", None), SETTINGS, plan)
    step = plan.steps[plan.cursor]
    assert instruction.text.startswith(f"Next: {step.text}.")
    assert instruction.beat.step == plan.cursor
    assert "reader" not in instruction.text.lower()  # small models echo it into the story
    happy = instruction_for(mood_for("happy", None), SETTINGS, plan)
    assert happy.direction == TONES["happy"] and happy.text.endswith(TONES["happy"])


def test_the_first_turn_begins_the_story_and_leads_with_the_beat() -> None:
    plan = make_plan(load_parts(), 3)
    first = instruction_for(None, SETTINGS, plan)
    assert first.text.startswith("Begin the story: ")
    assert first.beat.kind == "setup"
    # By default the beat is told from the plan, as a whole sentence.
    assert first.given == as_sentence(first.beat.text)
    assert first.given[0].isupper() and first.given.endswith(".")
    words = instruction_for(None, SETTINGS.model_copy(update={"lead_with_beat": "words"}), plan)
    opening = first.beat.text.split()[:3]
    assert words.opening.lower() == " ".join(opening).lower() and words.given == ""
    plain = instruction_for(None, SETTINGS.model_copy(update={"lead_with_beat": "off"}), plan)
    assert plain.opening == "" and plain.given == ""


def test_lead_with_beat_was_a_yes_or_no() -> None:
    assert StorySettings(lead_with_beat=True).lead_with_beat == "sentence"  # type: ignore[arg-type]
    assert StorySettings(lead_with_beat=False).lead_with_beat == "off"  # type: ignore[arg-type]


def test_a_plan_text_becomes_a_sentence() -> None:
    assert as_sentence("a frog hopped onto Pip's head") == "A frog hopped onto Pip's head."
    shout = 'Moss arrived, and everyone jumped out shouting "Surprise!"'
    assert as_sentence(shout) == shout
    assert as_sentence("where  was it?") == "Where was it?"


def test_a_shift_is_said() -> None:
    plan = plan_under_way()
    steady = instruction_for(mood_for("sad", "sad"), SETTINGS, plan)
    shifted = instruction_for(mood_for("sad", "happy"), SETTINGS, plan)
    assert SHIFT_PREFIX.strip() in shifted.text
    assert SHIFT_PREFIX.strip() not in steady.text


def test_an_unsure_reading_counts_as_calm() -> None:
    emotions = Emotions(happy=0.4, sad=0.35, neutral=0.25)
    unsure = Mood(emotions, "happy", 0.4, 1, True, False, 0.0)
    assert instruction_for(unsure, SETTINGS, plan_under_way()).label == "neutral"


def test_long_calm_becomes_boredom_and_brings_a_twist() -> None:
    calm = mood_for("neutral", None)
    plan = plan_under_way()
    assert instruction_for(calm, SETTINGS, plan, calm_turns=1).label == "neutral"
    bored = instruction_for(calm, SETTINGS, plan, calm_turns=SETTINGS.bored_after_turns)
    assert bored.label == "bored"
    assert bored.beat.kind == "twist" and bored.beat.text == plan.twists[0]


def test_a_return_tells_the_goal_before_the_beat() -> None:
    plan = plan_under_way()
    back = instruction_for(mood_for("happy", None), SETTINGS, plan, resuming=True)
    assert back.given == f"{as_sentence(plan.goal)} {as_sentence(back.beat.text)}"
    assert RESUME_INSTRUCTION not in back.text
    # With the model writing the first sentence, it is asked for the recap instead.
    words = SETTINGS.model_copy(update={"lead_with_beat": "words"})
    asked = instruction_for(mood_for("happy", None), words, plan, resuming=True)
    assert RESUME_INSTRUCTION in asked.text and asked.given == ""
    assert asked.opening == beat_opening(asked.beat.text)
    unled = SETTINGS.model_copy(update={"lead_with_beat": "off"})
    assert instruction_for(mood_for("happy", None), unled, plan, resuming=True).opening == ""


def test_the_system_prompt_carries_the_plan_premise_rules_and_summary() -> None:
    custom = StorySettings(premise="A robot learns to paint sunsets.", audience="children")
    plan = plan_under_way()
    text = system_prompt(custom, plan, "The robot found a brush.")
    assert "A robot learns to paint sunsets." in text
    assert "for children" in text
    assert "safe" in text and "no lessons or morals" in text
    for character in plan.cast:
        assert f"{character.name} is a {character.kind}" in text
    assert plan.goal in text and plan.places[0] in text
    assert text.endswith("The story so far: The robot found a brush.")
    assert "story so far" not in system_prompt(custom, plan, "")
