"""What the story model is told: the system prompt, and the reader's mood as an instruction."""

from __future__ import annotations

from dataclasses import dataclass

from appliance.events import Mood
from appliance.story.settings import StorySettings

# How the story answers each mood. Short on purpose: the instruction is the only new
# text the model reads before its first token, so its length is latency.
MOOD_INSTRUCTIONS = {
    "happy": "The reader is smiling: keep the joy going.",
    "sad": "The reader looks sad: bring comfort or hope.",
    "fear": "The reader looks afraid: soften the tension, show that all is safe.",
    "angry": "The reader looks cross: ease the conflict, let someone make peace.",
    "surprise": "The reader looks surprised: reveal something hidden.",
    "disgust": "The reader looks put off: move on to something pleasant.",
    "neutral": "The reader is calm: take the next step of the journey.",
    "bored": "The reader seems bored: add a twist.",
    "away": "The reader looked away: add a twist to win them back.",
}
START_INSTRUCTION = "Begin the story."
RESUME_INSTRUCTION = "The reader is back: recall in one line where we were, then go on."
SHIFT_PREFIX = "Their mood just changed. "
LOW_CONFIDENCE = 0.45
"""Below this the reading is too unsure to steer by: treat it as calm."""


@dataclass(frozen=True, slots=True)
class Instruction:
    """The mood label the turn answers (``away``/``bored`` included) and the text sent."""

    label: str
    text: str


def mood_label(mood: Mood | None, calm_turns: int, bored_after: int) -> str:
    if mood is None:
        return "neutral"
    if not mood.engaged or mood.faces == 0:
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
) -> Instruction:
    """The narrative instruction for this turn: the mood mapped to where the story goes."""
    label = mood_label(mood, calm_turns, settings.bored_after_turns)
    parts = []
    if first_turn:
        parts.append(START_INSTRUCTION)
    elif resuming:
        parts.append(RESUME_INSTRUCTION)
    mood_text = MOOD_INSTRUCTIONS[label]
    if mood is not None and mood.shift and not first_turn:
        mood_text = SHIFT_PREFIX + mood_text
    parts.append(mood_text)
    return Instruction(label=label, text=" ".join(parts))


def story_rules(settings: StorySettings) -> str:
    most = settings.sentences_per_turn
    count = f"{most - 1} or {most}" if most > 1 else "one"
    return (
        f"Rules: write in {settings.language}, in the past tense, in the third person, about "
        f"the characters. Each reply adds {count} new sentences that continue the story, "
        "and nothing else: no title, no list, no questions, never mention the reader. "
        "Never repeat what was already told: always move the story forward. "
        "Keep it kind and safe for a child: no violence, nothing cruel or scary."
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
