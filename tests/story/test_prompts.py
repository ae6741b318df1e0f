from __future__ import annotations

import pytest

from appliance.commands.story import mood_for
from appliance.events import Emotions, Mood
from appliance.story.prompts import (
    KIND_BEATS,
    MOOD_INSTRUCTIONS,
    OPEN_BEATS,
    OPENERS,
    instruction_for,
    system_prompt,
    without_opener,
)
from appliance.story.settings import StorySettings

SETTINGS = StorySettings()


@pytest.mark.parametrize(
    ("label", "words"),
    [
        ("happy", "joyful"),
        ("sad", "comfort"),
        ("fear", "everyone is safe"),
        ("angry", "make peace"),
        ("surprise", "Reveal"),
        ("disgust", "something pleasant"),
        ("neutral", "next step"),
        ("away", "twist"),
    ],
)
def test_each_mood_steers_the_story(label: str, words: str) -> None:
    instruction = instruction_for(mood_for(label, None), SETTINGS, first_turn=False)
    assert instruction.label == label
    assert words in instruction.text
    assert instruction.opener in OPENERS[label]
    assert "reader" not in instruction.text.lower()  # small models echo it into the story


def test_a_shift_is_said() -> None:
    steady = instruction_for(mood_for("sad", "sad"), SETTINGS, first_turn=False)
    shifted = instruction_for(mood_for("sad", "happy"), SETTINGS, first_turn=False)
    assert steady.text.endswith(MOOD_INSTRUCTIONS["sad"])
    assert "Change the tone now." in shifted.text
    assert "Change the tone now." not in steady.text


def test_every_turn_gets_somewhere_new_to_go() -> None:
    mood = mood_for("neutral", None)
    beats = {
        instruction_for(mood, SETTINGS, first_turn=False, turn=n).text.split(".")[0]
        for n in range(len(OPEN_BEATS))
    }
    assert len(beats) == len(OPEN_BEATS)
    comforting = instruction_for(mood_for("sad", None), SETTINGS, first_turn=False, turn=2)
    assert any(beat in comforting.text for beat in KIND_BEATS)
    plain = instruction_for(
        mood, SETTINGS.model_copy(update={"beats": False, "openers": False}), first_turn=False
    )
    assert plain.text == MOOD_INSTRUCTIONS["neutral"] and plain.opener == ""


def test_openers_are_taken_off_for_the_copy_check() -> None:
    assert without_opener("With a happy skip, Pip ran home.") == "Pip ran home."
    assert without_opener("Pip ran home.") == "Pip ran home."


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
    first = instruction_for(None, SETTINGS, first_turn=True)
    assert first.text.startswith("Begin the story.") and first.opener == ""
    back = instruction_for(mood_for("happy", None), SETTINGS, first_turn=False, resuming=True)
    assert back.text.startswith("Recall in one line where we were")
    assert back.opener == ""


def test_the_system_prompt_carries_premise_rules_and_summary() -> None:
    custom = StorySettings(premise="A robot learns to paint sunsets.", audience="children")
    text = system_prompt(custom, "The robot found a brush.")
    assert "A robot learns to paint sunsets." in text
    assert "for children" in text
    assert "safe for a child" in text
    assert text.endswith("The story so far: The robot found a brush.")
    assert "story so far" not in system_prompt(custom, "")
