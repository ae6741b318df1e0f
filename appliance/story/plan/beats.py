"""What happens next: the reader's mood picks the beat, the plan supplies it.

- a frown (sad, angry, disgust): the trouble eases now (its eased form), or a warm moment;
- fear: safety now (the trouble's safe form), or a safe moment;
- a smile: the funny branch;
- surprise: the plan's reveal;
- boredom or looking away: a twist the plan allows;
- a calm reader: the plot simply goes on.

Moments beside the plan (funny, reveal, twist, comfort, safety) are told only while the
episode has turns to spare, so every episode still reaches its climax and its ending in
about ``episode_turns`` turns. Choosing is pure: the plan moves on only when the turn
is told (``after``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from appliance.story.plan.planner import StoryPlan

FROWN = frozenset({"sad", "angry", "disgust"})
TROUBLE = frozenset({"trouble", "worse"})
BeatKind = str
"""A plan step's kind (setup, go, trouble, meet, worse, climax, ending), or a moment:
funny, reveal, twist, comfort, safety."""


@dataclass(frozen=True, slots=True)
class Beat:
    kind: BeatKind
    text: str
    step: int | None
    """The plan step this beat tells (None: a moment beside the plan)."""
    way: str = "plain"
    """How it goes: plain, eased (a frown) or safe (fear)."""
    pool: str = ""
    """The moment's pool in the plan (funny, twists, ...), used up when told."""

    @property
    def ends_episode(self) -> bool:
        return self.kind == "ending"


def _next_step(plan: StoryPlan, left: int) -> int:
    """The next step worth its turn: a step that is not essential is skipped when the
    essential ones after it would not fit in the turns left."""
    for index in range(plan.cursor, len(plan.steps)):
        step = plan.steps[index]
        essential_after = sum(1 for s in plan.steps[index + 1 :] if s.essential)
        if step.essential or 1 + essential_after <= left:
            return index
    return len(plan.steps) - 1


def turns_left(plan: StoryPlan, episode_turns: int) -> int:
    return max(1, episode_turns - plan.turns_told)


def spare_turns(plan: StoryPlan, episode_turns: int) -> int:
    """Turns beyond what telling every remaining step takes."""
    return turns_left(plan, episode_turns) - (len(plan.steps) - plan.cursor)


def choose_beat(plan: StoryPlan, label: str, episode_turns: int) -> Beat:
    """The beat the next turn tells, for a reader whose mood reads ``label``; a helper met
    before is spoken of by name ("Stilts came along", not "a kind heron named Stilts")."""
    beat = _choose(plan, label, episode_turns)
    if plan.helper_met and plan.helper and plan.helper in beat.text:
        return replace(beat, text=beat.text.replace(plan.helper, plan.helper_name()))
    return beat


def _choose(plan: StoryPlan, label: str, episode_turns: int) -> Beat:
    index = _next_step(plan, turns_left(plan, episode_turns))
    step = plan.steps[index]
    # A moment beside the plan only with turns to spare, never before the setup, never
    # two in a row: the plot moves at least every other turn.
    spare = spare_turns(plan, episode_turns) > 0 and plan.cursor > 0 and not plan.last_was_moment
    if step.kind in TROUBLE and label in FROWN and step.ease:
        return Beat(step.kind, step.ease, index, way="eased")
    if step.kind in TROUBLE and label == "fear" and step.safe:
        return Beat(step.kind, step.safe, index, way="safe")
    moment = {
        "happy": "funny",
        "surprise": "reveal",
        "bored": "twists",
        "away": "twists",
        "fear": "safety",
        **dict.fromkeys(FROWN, "comfort"),
    }.get(label)
    if spare and moment is not None and step.kind not in ("climax", "ending"):
        texts = [plan.reveal] if moment == "reveal" and plan.reveal else []
        texts = texts if moment == "reveal" else list(getattr(plan, moment))
        if texts:
            kind = {"twists": "twist"}.get(moment, moment)
            return Beat(kind, texts[0], None, pool=moment)
    return Beat(step.kind, step.text, index)


def after(plan: StoryPlan, beat: Beat) -> StoryPlan:
    """The plan once ``beat`` has been told."""
    update: dict[str, object] = {
        "turns_told": plan.turns_told + 1,
        "last_was_moment": beat.step is None,
        "helper_met": plan.helper_met or bool(plan.helper and plan.helper in beat.text),
    }
    if beat.step is not None:
        update["cursor"] = beat.step + 1
    elif beat.pool == "reveal":
        update["reveal"] = ""
    elif beat.pool:
        update[beat.pool] = list(getattr(plan, beat.pool))[1:]
    return plan.model_copy(update=update)
