from __future__ import annotations

import pytest

from appliance.commands.story import mood_for
from appliance.events import Emotions, Mood
from appliance.story.prompts import MOOD_INSTRUCTIONS, instruction_for, system_prompt
from appliance.story.settings import StorySettings

SETTINGS = StorySettings()


@pytest.mark.parametrize(
    ("label", "words"),
    [
        ("happy", "joy"),
        ("sad", "comfort or hope"),
        ("fear", "soften the tension"),
        ("angry", "ease the conflict"),
        ("surprise", "reveal"),
        ("neutral", "next step"),
        ("away", "twist"),
    ],
)
def test_each_mood_steers_the_story(label: str, words: str) -> None:
    instruction = instruction_for(mood_for(label, None), SETTINGS, first_turn=False)
    assert instruction.label == label
    assert words in instruction.text


def test_a_shift_is_said() -> None:
    steady = instruction_for(mood_for("sad", "sad"), SETTINGS, first_turn=False)
    shifted = instruction_for(mood_for("sad", "happy"), SETTINGS, first_turn=False)
    assert steady.text == MOOD_INSTRUCTIONS["sad"]
    assert shifted.text.startswith("Their mood just changed.")
    assert steady.text != shifted.text


def test_an_unsure_reading_counts_as_calm() -> None:
    emotions = Emotions(happy=0.4, sad=0.35, neutral=0.25)
    unsure = Mood(emotions, "happy", 0.4, 1, True, False, 0.0)
    assert instruction_for(unsure, SETTINGS, first_turn=False).label == "neutral"


def test_long_calm_becomes_boredom() -> None:
    calm = mood_for("neutral", None)
    assert instruction_for(calm, SETTINGS, first_turn=False, calm_turns=1).label == "neutral"
    bored = instruction_for(calm, SETTINGS, first_turn=False, calm_turns=SETTINGS.bored_after_turns)
    assert bored.label == "bored"
    assert "twist" in bored.text


def test_first_turn_begins_and_a_return_recaps() -> None:
    assert instruction_for(None, SETTINGS, first_turn=True).text.startswith("Begin the story.")
    back = instruction_for(mood_for("happy", None), SETTINGS, first_turn=False, resuming=True)
    assert "recall in one line" in back.text


def test_the_system_prompt_carries_premise_rules_and_summary() -> None:
    custom = StorySettings(premise="A robot learns to paint sunsets.", audience="children")
    text = system_prompt(custom, "The robot found a brush.")
    assert "A robot learns to paint sunsets." in text
    assert "for children" in text
    assert "safe for a child" in text
    assert text.endswith("The story so far: The robot found a brush.")
    assert "story so far" not in system_prompt(custom, "")
