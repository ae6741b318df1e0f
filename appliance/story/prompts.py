"""What the story model is told: the system prompt, and the reader's mood as an instruction."""

from __future__ import annotations

from dataclasses import dataclass

from appliance.events import Mood
from appliance.story.settings import StorySettings

# How the story answers each mood. Directions about the story, never about the reader:
# small models echo what they are told ("the reader is smiling" comes back as story
# text). Short on purpose: the instruction is the only new text the model reads before
# its first token, so its length is latency.
MOOD_INSTRUCTIONS = {
    "happy": "Make it joyful and playful.",
    "sad": "Bring comfort: a kind friend or a hopeful sign.",
    "fear": "Make it calm and cosy: everyone is safe.",
    "angry": "Let someone make peace or say sorry.",
    "surprise": "Reveal something hidden or unexpected.",
    "disgust": "Move on to something pleasant and fresh.",
    "neutral": "Take the next step of the journey.",
    "bored": "Add a surprising twist.",
    "away": "Add a surprising twist.",
}
# Somewhere new to go: one beat per turn, in turn, so that every turn moves the story
# on instead of retelling the last one. Generic on purpose: they fit any premise. Moods
# that ask for comfort get only kind beats; the others may also get a small trouble.
KIND_BEATS = (
    "someone new and kind appears",
    "they find something lovely",
    "a friend helps",
    "they reach a new place",
    "they share a treat",
    "they learn something",
    "they laugh together",
    "they see something beautiful",
    "they make a plan",
    "they remember home",
)
OPEN_BEATS = (
    "someone new appears",
    "they find something unexpected",
    "a small problem gets in the way",
    "a friend helps",
    "they reach a new place",
    "the weather changes",
    "they hear a strange sound",
    "they make a plan",
    "night falls",
    "they learn something",
)
COMFORTING = frozenset({"happy", "sad", "fear", "angry", "disgust"})
# The first words of a turn, written for the model: they set the turn's tone from its
# first word and stop small models from opening every turn the same way. Several per
# mood, used in turn.
OPENERS = {
    "happy": ("With a happy skip,", "Laughing,", "All of a sudden, a warm", "Full of joy,"),
    "sad": ("Then a kind", "Softly,", "Just when things felt gloomy,", "A warm light"),
    "fear": ("Soon everyone felt safe:", "Calmly,", "A friendly voice", "Snug and safe,"),
    "angry": ("After a deep breath,", "Gently,", "With a kind smile,", "To make peace,"),
    "surprise": ("To everyone's surprise,", "Hidden behind", "Suddenly,", "Right there,"),
    "disgust": ("Leaving that behind,", "A fresh breeze", "Soon,", "Happily,"),
    "neutral": ("Then", "Next,", "After a while,", "Along the way,"),
    "bored": ("But then,", "Out of nowhere,", "Just then,", "Without warning,"),
    "away": ("But then,", "Out of nowhere,", "Just then,", "Without warning,"),
}
ALL_OPENERS = tuple(sorted({o for pool in OPENERS.values() for o in pool}, key=len, reverse=True))
START_INSTRUCTION = "Begin the story."
RESUME_INSTRUCTION = "Recall in one line where we were, then go on."
SHIFT_PREFIX = "Change the tone now. "
LOW_CONFIDENCE = 0.45
"""Below this the reading is too unsure to steer by: treat it as calm."""


@dataclass(frozen=True, slots=True)
class Instruction:
    """The mood label the turn answers (``away``/``bored`` included), the text sent, and
    the first words of the reply (empty: the model chooses)."""

    label: str
    text: str
    opener: str = ""


def mood_label(mood: Mood | None, calm_turns: int, bored_after: int) -> str:
    if mood is None:
        return "neutral"
    if not mood.engaged:
        return "away"
    label = mood.dominant if mood.confidence >= LOW_CONFIDENCE else "neutral"
    if label == "neutral" and calm_turns >= bored_after:
        return "bored"
    return label


def instruction_for(
    mood: Mood | None,
    settings: StorySettings,
    *,
    first_turn: bool,
    calm_turns: int = 0,
    resuming: bool = False,
    turn: int = 0,
) -> Instruction:
    """The narrative instruction for this turn: where the story goes next (a beat) and
    how it should feel (the mood mapped to a direction)."""
    label = mood_label(mood, calm_turns, settings.bored_after_turns)
    parts = []
    if first_turn:
        parts.append(START_INSTRUCTION)
    elif resuming:
        parts.append(RESUME_INSTRUCTION)
    elif settings.beats:
        beats = KIND_BEATS if label in COMFORTING else OPEN_BEATS
        parts.append(f"Next: {beats[turn % len(beats)]}.")
    mood_text = MOOD_INSTRUCTIONS[label]
    if mood is not None and mood.shift and not first_turn:
        mood_text = SHIFT_PREFIX + mood_text
    parts.append(mood_text)
    opener = ""
    if settings.openers and not first_turn and not resuming:
        choices = OPENERS[label]
        opener = choices[turn % len(choices)]
    return Instruction(label=label, text=" ".join(parts), opener=opener)


def without_opener(text: str) -> str:
    """The turn without the opener it was given (if any)."""
    for opener in ALL_OPENERS:
        if text.startswith(opener):
            return text[len(opener) :].lstrip()
    return text


def story_rules(settings: StorySettings) -> str:
    most = settings.sentences_per_turn
    count = f"{most - 1} or {most}" if most > 1 else "one"
    return (
        f"Rules: write in {settings.language}, in the past tense, in the third person. "
        f"Each reply adds {count} new sentences that move the story forward, and nothing "
        "else: no title, no list, no questions. Never retell what was already told, and "
        "start each reply in a new way. Use simple, vivid words. Keep it kind and safe for "
        "a child: no violence, nothing cruel or scary."
    )


def system_prompt(settings: StorySettings, summary: str) -> str:
    """Premise, audience, style and safety rules; then the summary of what was folded away.

    It changes only when the summary does (rarely, in one large step), so the KV cache
    of everything after it stays valid turn after turn.
    """
    text = (
        f"You are the narrator of a {settings.genre} story for {settings.audience}. "
        f"Premise: {settings.premise}\n{story_rules(settings)}"
    )
    if summary:
        text += f"\nThe story so far: {summary}"
    return text


def summary_request(summary: str, passages: list[str], max_words: int) -> tuple[str, str]:
    """System and user text asking the model to fold old turns into a short summary."""
    story = "\n".join(([summary] if summary else []) + passages)
    return (
        "You summarize stories briefly and faithfully.",
        f"Story:\n{story}\n\nSummarize this story in at most {max_words} words: who is in "
        "it, where they are, and what has happened so far. Plain sentences, no title.",
    )
