"""What the story model is told: the plan in the system prompt, and each turn's beat.

The system prompt holds what stays for a whole episode (the cast, the world, the goal,
the rules), so the model's cache of it stays valid turn after turn. Each turn's
instruction is the plan's next beat, chosen by the reader's mood, and a few words of
tone. Short on purpose: the instruction is the only new text the model reads before its
first token, so its length is latency.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from appliance.events import Mood
from appliance.story.plan.beats import Beat, choose_beat
from appliance.story.plan.planner import StoryPlan
from appliance.story.settings import StorySettings

# How the story feels for each mood (the fleet's venue story uses these alone). Directions
# about the story, never about the reader: small models echo what they are told ("the
# reader is smiling" comes back as story text).
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
# Beside a planned beat, the tone only: the beat itself already answers the mood.
TONES = {
    "happy": "Make it funny.",
    "sad": "Make it warm and gentle.",
    "fear": "Make it calm and safe.",
    "angry": "Make it gentle.",
    "surprise": "Make it amazing.",
    "disgust": "Make it fresh and pleasant.",
    "neutral": "",
    "bored": "Make it exciting.",
    "away": "Make it exciting.",
}
# A returning reader, when the model writes the turn's first sentence: the turn is asked to
# say first where the story had got to, and is led in by its beat like any other. Asked
# for "one line on where we were", the models wrote "We were in the Garden Pond" (1.5B) and
# "One line on what happened next" (0.5B, 67 tries in 60 turns); led in by "By now, Dotty"
# instead, the 0.5B skipped the beat ("By now, Dotty had got home ... and sat there like a
# hat"). With the beat told from the plan, the goal is told before it instead.
RESUME_INSTRUCTION = "First say where they had got to."
SHIFT_PREFIX = "Change the tone now. "
OPENING_WORDS = 3
LOW_CONFIDENCE = 0.45
"""Below this the reading is too unsure to steer by: treat it as calm."""


@dataclass(frozen=True, slots=True)
class Instruction:
    """The mood label the turn answers (``away``/``bored`` included), the beat it tells,
    and the text sent; ``direction`` is the part that is not the beat (tone, recap), which
    the model must not parrot."""

    label: str
    text: str
    beat: Beat
    direction: str = ""
    opening: str = ""
    """The reply's first words, written for the model (empty: the model chooses)."""
    given: str = ""
    """Whole sentences the turn begins with, told from the plan itself (the beat, and for a
    returning reader the goal before it): released at once, and the model goes on from
    them. Empty unless ``story.lead_with_beat`` is "sentence"."""


def mood_label(mood: Mood | None, calm_turns: int, bored_after: int) -> str:
    if mood is None:
        return "neutral"
    if not mood.engaged:
        return "away"
    label = mood.dominant if mood.confidence >= LOW_CONFIDENCE else "neutral"
    if label == "neutral" and calm_turns >= bored_after:
        return "bored"
    return label


def beat_text(beat: Beat, plan: StoryPlan) -> str:
    if beat.kind == "setup":
        head = "Begin the story" if plan.episode == 1 else "Begin a new adventure"
        return f"{head}: {beat.text}."
    if beat.kind == "ending":
        return f"End the episode: {beat.text}."
    return f"Next: {beat.text}."


def instruction_for(
    mood: Mood | None,
    settings: StorySettings,
    plan: StoryPlan,
    *,
    calm_turns: int = 0,
    resuming: bool = False,
) -> Instruction:
    """This turn's instruction: the beat the mood picks, and how it should feel."""
    label = mood_label(mood, calm_turns, settings.bored_after_turns)
    beat = choose_beat(plan, label, settings.episode_turns)
    tone = TONES[label]
    if mood is not None and mood.shift and plan.turns_told and tone:
        tone = SHIFT_PREFIX + tone
    lead = settings.lead_with_beat
    given = ""
    if lead == "sentence":
        # The plan tells the beat itself, and the goal reminds a returning reader.
        given = " ".join(as_sentence(t) for t in ((plan.goal,) if resuming else ()) + (beat.text,))
    recap = RESUME_INSTRUCTION if resuming and not given else ""
    direction = " ".join(part for part in (recap, tone) if part)
    text = " ".join(part for part in (recap, beat_text(beat, plan), tone) if part)
    opening = beat_opening(beat.text) if lead != "off" else ""
    if given and resuming:
        # A retry (the given beat was caught by the guards) still reminds the reader.
        opening = f"{as_sentence(plan.goal)} {opening}"
    return Instruction(
        label=label, text=text, beat=beat, direction=direction, opening=opening, given=given
    )


def as_sentence(text: str) -> str:
    """A plan text as the sentence a turn tells ("a frog hopped onto Pip's head" -> "A frog
    hopped onto Pip's head."); one that already ends a sentence keeps its own end."""
    text = " ".join(text.split())
    if not re.search(r"[.!?…][\"'”’)]*$", text):
        text += "."
    return text[:1].upper() + text[1:]


def beat_opening(text: str) -> str:
    """The beat's first words, as a turn would begin with them ("at the den, Pip told"
    -> "At the den,"): a small model led in by them tells the beat, instead of going on
    from the shape of its last reply."""
    first = " ".join(text.split()[:OPENING_WORDS])
    return first[:1].upper() + first[1:]


def story_rules(settings: StorySettings) -> str:
    most = settings.sentences_per_turn
    count = f"{most - 1} or {most}" if most > 1 else "one"
    return (
        f"Rules: write in {settings.language}. Each reply is {count} short sentences: tell "
        "what happened next, with one thing to see or hear, and a few words someone said, "
        "in quotation marks. Past tense, third person, the characters' names, simple words a "
        "small child knows. Never retell what was told, no title, no list, no questions, "
        "no lessons or morals. Keep it kind and safe: nothing cruel or scary."
    )


def system_prompt(settings: StorySettings, plan: StoryPlan, summary: str) -> str:
    """The story's plan, audience, style and rules; then the summary of what was folded.

    It changes only at a fold or a new episode (rarely, in one large step), so the KV
    cache of everything after it stays valid turn after turn.
    """
    lines = [
        f"You are the narrator of a {settings.genre} story for {settings.audience}, "
        "read aloud to a child.",
        f"The characters: {plan.cast_line()}",
        plan.world_line(),
        f"The goal of this episode: {plan.goal}.",
    ]
    if settings.premise:
        lines.append(f"Premise: {settings.premise}")
    if plan.previously:
        lines.append("Told before: " + " ".join(plan.previously))
    lines.append(story_rules(settings))
    if summary:
        lines.append(f"The story so far: {summary}")
    return "\n".join(lines)


def summary_request(
    summary: str, passages: list[str], max_words: int, names: str = ""
) -> tuple[str, str]:
    """System and user text asking the model to fold old turns into a short summary."""
    story = "\n".join(([summary] if summary else []) + passages)
    keep = f" Keep every name exactly as written ({names})." if names else ""
    return (
        "You summarize stories briefly and faithfully.",
        f"Story:\n{story}\n\nSummarize this story in at most {max_words} words: who is in "
        f"it, where they are, and what has happened so far. Plain sentences, no title.{keep}",
    )
