"""The storyteller: one turn at a time, each answering the reader's mood.

``next_turn`` builds the prompt (folding old turns when the window would overflow),
streams the model's reply through the guards, emits events as whole sentences pass,
and writes the finished turn in one transaction. Nothing of a turn that did not finish
is ever stored; after a restart the story resumes from its last finished turn.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field

from appliance.events import Emotions, Mood, StoryEvent
from appliance.story.context import ContextTurn, FoldCancelledError, RollingContext
from appliance.story.guards import CastCheck, TurnAssembler, opening, words
from appliance.story.llm import (
    BackendError,
    GenerationRequest,
    GenerationStats,
    NoBackendError,
    StoryLLM,
)
from appliance.story.plan.beats import after
from appliance.story.plan.parts import StoryParts, load_parts
from appliance.story.plan.planner import StoryPlan, make_plan, next_episode
from appliance.story.prompts import Instruction, instruction_for, story_rules
from appliance.story.settings import StorySettings
from appliance.story.store import StoryRecord, StoryStore, TurnRecord
from appliance.story.whole_story import RepeatCheck

log = logging.getLogger(__name__)

WORD_PIECE = re.compile(r"\S+\s*")
OPENING_TOKENS = 16
"""Generous room for a turn's opening words (they are a few)."""
NAMED = re.compile(r"\bnamed\s+([A-Z][a-z]+)")
GUARD_MEMORY_TURNS = 10
"""How far back the guards look for a sentence copied or a motif repeated."""
MIN_OWN_TOKENS = 8
"""After the beat told from the plan, the model writes at least this much of its own."""
SENTENCE_OPENING_TURNS = 3
"""How many of the last turns' sentence openings a new sentence may not repeat."""
STORY_MEMORY_TURNS = 200
"""How far back "not copied from earlier turns" looks (the guards and the constraint)."""

UNSAY_MEMORY_TURNS = 8
"""How many recent turns keep the state from before them, so a turn nobody heard can be
taken back whole (the narrator is never more than a turn or two behind)."""


class StoryPausedError(RuntimeError):
    """No story model can serve now; ``retry_after`` seconds until one may."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


@dataclass(slots=True)
class TurnControl:
    """Set ``cut`` to end the turn at the next sentence end; ``hurry`` to end it now, at
    the last sentence already released (or drop it if none was); ``abort`` to drop it."""

    cut: threading.Event = field(default_factory=threading.Event)
    hurry: threading.Event = field(default_factory=threading.Event)
    abort: threading.Event = field(default_factory=threading.Event)
    urgent: bool = False
    """Someone waits for this turn (it answers a shift): its first try is less free to
    copy the story, since a try caught by the guards costs a second."""

    def dropping(self, accepted: bool) -> bool:
        """Whether the turn is to be dropped (nothing of it kept)."""
        return self.abort.is_set() or (self.hurry.is_set() and not accepted)


@dataclass(frozen=True, slots=True)
class _StateBefore:
    """What a turn changed, as it was before it: to take the turn back."""

    plan: StoryPlan
    summary: str
    folded_upto: int
    cast_check: CastCheck | None
    calm_turns: int


@dataclass(frozen=True, slots=True)
class PreparedAnswer:
    """A first sentence written ahead for a mood shift that may come; valid only for the
    story state and instruction it was written for."""

    key: tuple[object, ...]
    sentence: str


@dataclass(frozen=True, slots=True)
class FinishedTurn:
    record: TurnRecord
    ttft_s: float
    first_sentence_s: float
    tokens_per_s: float
    cached_prompt_tokens: int
    prompt_tokens: int


def without_prefill(stream: Iterator[str], prefill: str) -> Iterator[str]:
    """The stream without the prefill a local backend sends back first."""
    for first in stream:
        if rest := first.removeprefix(prefill):
            yield rest
        break
    yield from stream


def with_given(stream: Iterator[str], given: str) -> Iterator[tuple[str, str]]:
    """(given text, the model's text) for each piece: a backend that writes ``given``
    into its reply sends it back first; one that cannot (Azure) writes its own."""
    for piece in stream:
        if given and piece.startswith(given):
            yield given, piece.removeprefix(given)
        else:
            yield "", piece
        given = ""


def shift_to(label: str) -> Mood:
    """A clear reading of ``label`` that has just taken over: what a shift looks like."""
    emotions = Emotions.from_mapping({label: 1.0})
    return Mood(
        emotions=emotions,
        dominant=label,
        confidence=1.0,
        faces=1,
        engaged=True,
        shift=True,
        t=time.monotonic(),
    )


def new_plan(settings: StorySettings, parts: StoryParts) -> StoryPlan:
    seed = settings.plan_seed
    return make_plan(parts, None if seed < 0 else seed)


def begin_story(store: StoryStore, settings: StorySettings, parts: StoryParts) -> StoryRecord:
    """A new story with a plan of its own; the one in progress ends."""
    plan = new_plan(settings, parts)
    return store.new_story(
        settings.premise or plan.goal,
        settings.genre,
        settings.audience,
        plan=plan.model_dump_json(),
    )


def cast_check(plan: StoryPlan, parts: StoryParts) -> CastCheck:
    kinds = {w for kind in (*parts.kinds, *parts.other_kinds) for w in kind.lower().split()}
    kinds |= {w for c in plan.cast for w in c.kind.lower().split()}
    others = {name for text in (*parts.helpers, plan.helper) for name in NAMED.findall(text)}
    others |= {w for place in (*plan.places, plan.home, plan.world) for w in place.split()}
    return CastCheck(
        members=tuple((c.name, c.kind) for c in plan.cast),
        kinds=frozenset(kinds),
        others=frozenset(others),
    )


def mood_dict(mood: Mood | None) -> dict[str, object]:
    if mood is None:
        return {}
    data = asdict(mood)
    data["emotions"] = mood.emotions.as_dict()
    return data


def with_plurals(texts: Sequence[str]) -> frozenset[str]:
    """The words of ``texts``, and their plurals ("acorn", "acorns", "acornes")."""
    found = {w for text in texts for w in words(text)}
    return frozenset(found | {f"{w}s" for w in found} | {f"{w}es" for w in found})


def heard_and_not(text: str, unheard: Sequence[str]) -> list[dict[str, object]]:
    """A turn's text in pieces, in order, each heard or not: each unheard sentence is found
    in the text as the narrator had it (its whitespace aside), the last occurrence first, so
    a sentence whose quotes the guards tidied is found whatever a new split would make of
    it. What lies between is heard."""
    told = " ".join(text.split())
    spans: list[tuple[int, int]] = []
    for sentence in unheard:
        wanted = " ".join(sentence.split())
        end = len(told)
        while wanted and (start := told.rfind(wanted, 0, end)) >= 0:
            if not any(start < b and a < start + len(wanted) for a, b in spans):
                spans.append((start, start + len(wanted)))
                break
            end = start + len(wanted) - 1
    pieces: list[dict[str, object]] = []
    at = 0
    for start, stop in sorted(spans):
        if told[at:start].strip():
            pieces.append({"text": told[at:start].strip(), "heard": True})
        pieces.append({"text": told[start:stop], "heard": False})
        at = stop
    if told[at:].strip():
        pieces.append({"text": told[at:].strip(), "heard": True})
    return pieces


class Storyteller:
    def __init__(
        self,
        settings: StorySettings,
        llm: StoryLLM,
        store: StoryStore,
        *,
        n_ctx: int,
        emit: Callable[[StoryEvent], None] = lambda event: None,
    ) -> None:
        self.settings = settings
        self.llm = llm
        self.store = store
        self.emit = emit
        self.n_ctx = n_ctx
        self.guard_counts: Counter[str] = Counter()
        self._tries_idx = -1
        self._tries_spent = 0
        self.calm_turns = 0
        self.resuming = False
        self.prepared: dict[str, PreparedAnswer] = {}
        self.prepared_used = 0
        self.parts = load_parts(settings.parts_file)
        self._before_turn: dict[int, _StateBefore] = {}
        self.skip_unheard: Callable[[], None] | None = None
        """Called as a turn that answers a shift begins, before anything of it is decided:
        the daemon has the narrator skip what is not yet heard and calls ``unsay``, so the
        turn is told from what the listener heard (a turn nobody heard is told again)."""
        self._cold = True
        """The story's prompt is not in the model's cache (a start, a new episode)."""
        story = store.current_story()
        self.story: StoryRecord = story or self._begin_story()
        self.plan = self._plan_of(self.story)
        self.context = self._load_context(self.story)
        self.resuming = bool(self.context.turns)

    def _new_plan(self) -> StoryPlan:
        return new_plan(self.settings, self.parts)

    def _begin_story(self) -> StoryRecord:
        return begin_story(self.store, self.settings, self.parts)

    def _plan_of(self, story: StoryRecord) -> StoryPlan:
        """The story's saved plan; a story from before plans (or with a plan that no longer
        reads) gets a new one, kept from now on."""
        if story.plan:
            try:
                return StoryPlan.model_validate_json(story.plan)
            except ValueError as exc:
                log.warning(
                    "story %d: its plan is unreadable (%s); drawing a new one", story.id, exc
                )
        plan = self._new_plan()
        self.store.save_plan(story.id, plan.model_dump_json())
        return plan

    def _load_context(self, story: StoryRecord) -> RollingContext:
        turns = [ContextTurn(t.instruction, t.text) for t in self.store.turns(story.id)]
        return RollingContext(
            self.settings,
            self.n_ctx,
            self.plan,
            summary=story.summary,
            turns=turns,
            folded_upto=story.folded_upto,
            cast_check=cast_check(self.plan, self.parts),
        )

    @property
    def turn_count(self) -> int:
        return len(self.context.turns)

    def new_story(self) -> StoryRecord:
        self.story = self._begin_story()
        self.plan = self._plan_of(self.story)
        self._cold = True
        self.context = self._load_context(self.story)
        self._before_turn.clear()
        self.calm_turns = 0
        self.resuming = False
        self._tries_idx, self._tries_spent = -1, 0
        self._status("new story", story=str(self.story.id))
        return self.story

    def unsay(self, unheard: Sequence[tuple[int | None, str]]) -> list[dict[str, object]]:
        """Take out of the story the sentences nobody heard (or read): the narrator
        skipped them for a shift. The stored turn, the model's context and the guards'
        memory keep only what was heard; a turn nobody heard at all is taken back whole,
        with the plan, summary and episode as they were before it, so its beat is told
        later. Returns, for the page, each turn changed: its sentences, each heard or not,
        and its text now ("" when taken back). Call in the story thread, between turns."""
        gone: dict[int, list[str]] = {}
        for turn, text in unheard:
            if turn is not None:
                gone.setdefault(turn, []).append(" ".join(text.split()))
        changes: list[dict[str, object]] = []
        for idx in sorted(gone, reverse=True):  # the latest first: a whole turn is the last
            if not 0 <= idx < len(self.context.turns):
                continue
            told = self.context.turns[idx]
            sentences = heard_and_not(told.text, gone[idx])
            if all(s["heard"] for s in sentences):
                continue
            text = " ".join(str(s["text"]) for s in sentences if s["heard"])
            if text:
                self.store.rewrite_turn(self.story.id, idx, text)
                self.context.turns[idx] = ContextTurn(told.instruction, text)
            elif idx == len(self.context.turns) - 1 and idx in self._before_turn:
                self._take_back_last_turn()
            else:
                continue  # not the last turn, or too old to take back: kept as told
            skipped = sum(1 for s in sentences if not s["heard"])
            log.info("turn %d: %d sentence(s) nobody heard taken out", idx, skipped)
            changes.append({"turn": idx, "sentences": sentences, "text": text})
        return changes

    def _take_back_last_turn(self) -> None:
        idx = len(self.context.turns) - 1
        before = self._before_turn.pop(idx)
        self.store.untell_turn(
            self.story.id,
            idx,
            plan=before.plan.model_dump_json(),
            summary=(before.summary, before.folded_upto),
        )
        self.context.turns.pop()
        self.plan = self.context.plan = before.plan
        self.context.summary, self.context.folded_upto = before.summary, before.folded_upto
        self.context.cast_check = before.cast_check
        self.calm_turns = before.calm_turns

    def reader_returned(self) -> None:
        """The reader came back after looking away: the next turn opens with a recap."""
        if self.context.turns:
            self.resuming = True

    def _status(self, message: str, **extra: str) -> None:
        self.emit(
            StoryEvent(
                kind="status",
                t=time.monotonic(),
                status={"message": message, "backend": self.llm.name, **extra},
            )
        )

    def fold_ahead(self, turns_ahead: int = 2, cancel: threading.Event | None = None) -> bool:
        """Fold old turns now if the next ``turns_ahead`` turns would need it, then read
        the new prompt into the model's cache. True when anything was folded.

        A fold costs seconds (the model writes the summary, and the changed system prompt
        is read afresh), which is better spent while the story waits for its narrator or
        its reader than when a frown wants an answer. Setting ``cancel`` (a shift) calls
        it off at once: the fold is left for later, the prompt read so far stays cached.
        """
        if not self.context.turns:
            return False
        room = (self.settings.llama.max_tokens + OPENING_TOKENS) * turns_ahead
        instruction = self._instruction(None).text
        try:
            folded = self.context.make_room(self.llm, instruction, room, self._save_summary, cancel)
        except FoldCancelledError:
            log.info("fold put off: the reader's mood wants an answer first")
            return False
        except BackendError as exc:
            log.info("could not fold ahead: %s", exc)
            return False
        if folded:
            self._status("older turns folded into the summary")
        if folded or self._cold:
            cancel = cancel or threading.Event()
            self._warm(instruction, cancel)
            self._cold = cancel.is_set()
        return folded

    def _warm(self, instruction: str, cancel: threading.Event) -> None:
        """Read the story's prompt into the model's cache ahead of the next turn."""
        request = GenerationRequest(
            messages=self.context.messages(instruction),
            max_tokens=1,
            temperature=0.0,
            purpose="warm",
        )
        try:
            for _ in self.llm.stream(request, cancel, GenerationStats()):
                pass
        except BackendError as exc:
            log.info("could not warm the story model: %s", exc)

    def _instruction(self, mood: Mood | None) -> Instruction:
        return instruction_for(
            mood, self.settings, self.plan, calm_turns=self.calm_turns, resuming=self.resuming
        )

    def _prepared_key(self, instruction: Instruction) -> tuple[object, ...]:
        return (
            self.story.id,
            len(self.context.turns),
            self.context.folded_upto,
            instruction.text,
        )

    def prepare(self, labels: list[str], cancel: threading.Event) -> int:
        """Write ahead the first sentence of the turn that would answer a shift to each
        of ``labels`` (each tried at most twice, as the guards judge it); the next turn
        answering one of them shows it at once. Nothing is emitted or stored here.
        Returns how many answers are ready; stops as soon as ``cancel`` is set."""
        if not self.context.turns or self.llm.kind != "local":
            return 0
        if self.settings.lead_with_beat == "sentence":
            return 0  # every turn begins with its beat, told at once: nothing to write ahead
        for label in labels:
            instruction = self._instruction(shift_to(label))
            key = self._prepared_key(instruction)
            ready = self.prepared.get(label)
            if ready is not None and ready.key == key:
                continue
            self.prepared.pop(label, None)
            for attempt in range(2):
                if cancel.is_set():
                    return len(self.prepared)
                control = TurnControl(urgent=True)
                control.cut.set()  # the first sentence is all that is wanted
                control.abort = cancel
                assembler, _stats, _first, error = self._attempt(
                    len(self.context.turns),
                    instruction,
                    attempt,
                    control,
                    time.monotonic(),
                    release=lambda idx, sentences: None,
                )
                # Spent like a try at this turn: a real try never replays its seed.
                if self._tries_idx != len(self.context.turns):
                    self._tries_idx, self._tries_spent = len(self.context.turns), 0
                self._tries_spent += 1
                if error is not None or cancel.is_set():
                    return len(self.prepared)
                if assembler.accepted:
                    self.prepared[label] = PreparedAnswer(key, assembler.accepted[0])
                    log.info("prepared the answer to %s: %r", label, assembler.accepted[0])
                    break
        return len(self.prepared)

    def _take_prepared(self, instruction: Instruction) -> str | None:
        ready = self.prepared.pop(instruction.label, None)
        self.prepared.clear()  # every other one was written for a story about to move on
        if ready is None or ready.key != self._prepared_key(instruction):
            return None
        return ready.sentence

    def _save_summary(self, summary: str, folded_upto: int) -> None:
        self.store.save_summary(self.story.id, summary, folded_upto)

    def next_turn(
        self, mood: Mood | None, control: TurnControl | None = None
    ) -> FinishedTurn | None:
        """Generate, guard, emit and store one turn; None when it was aborted or failed.

        Raises ``StoryPausedError`` when no story model can serve.
        """
        control = control or TurnControl()
        if mood is not None and mood.shift and self.skip_unheard is not None:
            self.skip_unheard()
        instruction = self._instruction(mood)
        # Room for the reply, and for the opening written into it.
        reply_tokens = self.settings.llama.max_tokens + (
            OPENING_TOKENS + len(instruction.given) // 2
            if instruction.opening or instruction.given
            else 0
        )
        idx = len(self.context.turns)
        try:
            if self.context.make_room(self.llm, instruction.text, reply_tokens, self._save_summary):
                self._status("older turns folded into the summary")
        except BackendError as exc:
            raise StoryPausedError(str(exc), exc.retry_after) from exc
        head_start = self._take_prepared(instruction) if mood is not None and mood.shift else None
        self.prepared_used += head_start is not None
        started = time.monotonic()
        self.emit(StoryEvent(kind="turn_started", t=started, turn_id=idx, mood=mood))
        result = self._generate(idx, instruction, control, started, head_start)
        if result is None:
            return None
        assembler, stats, attempts, first_sentence_s = result
        beat = instruction.beat
        record = TurnRecord(
            idx=idx,
            text=assembler.text,
            instruction=instruction.text,
            mood_label=instruction.label,
            mood=mood_dict(mood),
            backend=self.llm.name,
            ttft_ms=stats.ttft_s * 1000,
            duration_ms=(time.monotonic() - started) * 1000,
            tokens=stats.completion_tokens,
            attempts=attempts,
            beat={
                "kind": beat.kind,
                "text": beat.text,
                "way": beat.way,
                "step": beat.step,
                "episode": self.plan.episode,
                "treasure": self.plan.treasure,
                "goal": self.plan.goal,
            },
        )
        self._before_turn[idx] = _StateBefore(
            plan=self.plan,
            summary=self.context.summary,
            folded_upto=self.context.folded_upto,
            cast_check=self.context.cast_check,
            calm_turns=self.calm_turns,
        )
        for old in [i for i in self._before_turn if i < idx - UNSAY_MEMORY_TURNS]:
            del self._before_turn[old]
        plan = after(self.plan, beat)
        fold = None
        if beat.ends_episode:
            # The episode is over: the next keeps the cast and the world, and begins with
            # a context of its own (how this one ended is in the plan's "earlier").
            plan = next_episode(self.parts, plan)
            fold = ("", idx + 1)
        self.store.append_turn(self.story.id, record, plan=plan.model_dump_json(), summary=fold)
        self.context.add(ContextTurn(instruction.text, assembler.text))
        self.plan = self.context.plan = plan
        if fold is not None:
            self.context.summary, self.context.folded_upto = fold
            self.context.cast_check = cast_check(plan, self.parts)
            self._cold = True
            self._status(f"episode {plan.episode - 1} ended", episode=str(plan.episode - 1))
        self.resuming = False
        self.calm_turns = self.calm_turns + 1 if instruction.label == "neutral" else 0
        self.emit(
            StoryEvent(
                kind="turn_finished",
                t=time.monotonic(),
                turn_id=idx,
                text=record.text,
                mood=mood,
                status={"beat": beat.kind, "episode": str(record.beat["episode"])},
            )
        )
        return FinishedTurn(
            record=record,
            ttft_s=stats.ttft_s,
            first_sentence_s=first_sentence_s,
            tokens_per_s=stats.tokens_per_s,
            cached_prompt_tokens=int(stats.extra.get("cached_prompt_tokens", 0)),
            prompt_tokens=stats.prompt_tokens,
        )

    def request_for(
        self, instruction: Instruction, attempt: int = 0, *, urgent: bool = False
    ) -> GenerationRequest:
        """The request for one try. Each retry pushes harder away from what was rejected
        (most often: copying earlier turns): another seed, a little more temperature, and
        a shorter run of tokens that may not be copied."""
        llama = self.settings.llama
        # Every try at a turn gets its own seed, across calls too: a turn dropped or given
        # up and told again must not replay the same rejected text (with a fixed seed it
        # would, forever).
        spent = self._tries_spent if self._tries_idx == len(self.context.turns) else 0
        seed = None if llama.seed < 0 else llama.seed + spent * 7919
        temperature = llama.temperature + 0.1 * attempt
        if attempt > 0 and temperature < 0.5:
            # A greedy retry would write the same rejected text again.
            temperature = 0.7
        no_repeat = llama.no_repeat_ngram
        if no_repeat and attempt:
            no_repeat = max(3, no_repeat - 2 * attempt)
        elif no_repeat and urgent:
            # Someone waits: a first try a little less free to copy the story is less
            # often caught by the guards (a caught try costs a second).
            no_repeat = max(3, no_repeat - 1)
        story = self.story_so_far()
        given = instruction.given if attempt == 0 else ""
        return GenerationRequest(
            messages=self.context.messages(instruction.text),
            max_tokens=llama.max_tokens,
            temperature=min(temperature, 1.5),
            seed=seed,
            avoid_repeating=(self.context.summary, *story),
            # Small models parrot their tone words into the story ("make it funny"). The
            # beat is not banned: its names and places are meant to be used.
            avoid_echo=(instruction.direction,) if instruction.direction else (),
            # Not the same first two words as any turn before (the whole story).
            avoid_openings=tuple(opening(text, 2) for text in story),
            # Nor any sentence as one of the last turns' sentences began.
            avoid_sentence_openings=tuple(story[-SENTENCE_OPENING_TURNS:]),
            free_words=self.plan.proper_names(),
            no_repeat_ngram=no_repeat,
            # No trailing space: the model writes the next word with its own leading
            # space, as it would anywhere. The beat told from the plan leads the first try;
            # a retry (the beat itself was caught by the guards) is led by its words.
            prefill=given if given else instruction.opening,
            # Led by the beat, the reply looks whole already: a small model would end it there.
            min_tokens=MIN_OWN_TOKENS if given else 0,
        )

    def _repeat_exclusions(self) -> frozenset[str]:
        """Words a story rightly says again and again: the cast's names and kinds, the
        places, the treasure, the helper, and the episode's goal."""
        plan = self.plan
        return self._cast_and_places() | with_plurals(
            [*plan.proper_names(), plan.goal, plan.treasure, plan.helper]
        )

    def _cast_and_places(self) -> frozenset[str]:
        """The fewer words left out when a turn's own sentences are matched: the cast's
        names and kinds and the places (not the goal's things: said twice in a turn, they
        are the beat said again)."""
        plan = self.plan
        return with_plurals([*plan.names(), *plan.places, plan.home, *(c.kind for c in plan.cast)])

    def story_so_far(self) -> list[str]:
        """The turns a new one must not copy from: the whole story, up to a limit."""
        return [turn.text for turn in self.context.turns[-STORY_MEMORY_TURNS:]]

    def _generate(
        self,
        idx: int,
        instruction: Instruction,
        control: TurnControl,
        started: float,
        head_start: str | None = None,
    ) -> tuple[TurnAssembler, GenerationStats, int, float] | None:
        """The attempt loop: a turn with no good first sentence is tried again. A
        prepared first sentence (``head_start``) is released at once, and the first try
        goes on from it."""
        reasons: Counter[str] = Counter()
        backend_error: BackendError | None = None
        for attempt in range(self.settings.attempts):
            if control.dropping(accepted=False):
                break
            assembler, stats, first_sentence_s, backend_error = self._attempt(
                idx,
                instruction,
                attempt,
                control,
                started,
                head_start=head_start if attempt == 0 else None,
            )
            if self._tries_idx != idx:
                self._tries_idx, self._tries_spent = idx, 0
            self._tries_spent += 1
            self.guard_counts.update(assembler.reasons)
            reasons.update(assembler.reasons)
            if control.dropping(bool(assembler.accepted)):
                break
            if assembler.accepted and backend_error is not None:
                if len(assembler.accepted) > assembler.given:
                    # The stream broke after some of the model's sentences went out: the
                    # turn is dropped whole, never kept in part (the page replaces it with
                    # the next turn).
                    log.warning("turn %d dropped: the story model failed mid-turn", idx)
                    self._status("turn abandoned")
                    return None
                # Only the beat told from the plan went out: a whole sentence, shown and
                # heard, that a retry would tell again in other words. The turn is that.
                log.warning("turn %d is its beat alone: the story model failed", idx)
            if assembler.accepted:
                return assembler, stats, attempt + 1, first_sentence_s
            if isinstance(backend_error, NoBackendError):
                break
            log.info(
                "turn %d attempt %d rejected (%s): %r",
                idx,
                attempt + 1,
                assembler.rejected,
                assembler.last_rejected_sentence,
            )
        if control.abort.is_set() or control.hurry.is_set():
            self._status("turn abandoned")
            return None
        if backend_error is not None and not reasons:
            raise StoryPausedError(str(backend_error), backend_error.retry_after)
        why = ", ".join(f"{reason} x{count}" for reason, count in reasons.most_common())
        self._status(f"turn given up after {self.settings.attempts} tries ({why or 'no text'})")
        return None

    def _attempt(
        self,
        idx: int,
        instruction: Instruction,
        attempt: int,
        control: TurnControl,
        started: float,
        *,
        head_start: str | None = None,
        release: Callable[[int, list[str]], None] | None = None,
    ) -> tuple[TurnAssembler, GenerationStats, float, BackendError | None]:
        """One try at the turn: stream, guard and hand on sentences as they pass (to
        ``release``; by default they are emitted)."""
        release = release or self._emit_sentences
        request = self.request_for(instruction, attempt, urgent=control.urgent)
        if head_start:
            request = dataclasses.replace(request, prefill=head_start)
        # What the model must not parrot: its rules and tone words (not the beat, the
        # plan or the summary, which it is meant to tell).
        # The last turns of the story, across episodes too: a new episode must not copy
        # how the last one went either.
        recent = self.story_so_far()[-GUARD_MEMORY_TURNS:]
        assembler = TurnAssembler(
            prompt_texts=(story_rules(self.settings), instruction.direction),
            target_sentences=self.settings.sentences_per_turn,
            story_texts=tuple(recent),
            cast=self.context.cast_check,
            ahead=self.plan.found_too_soon,
            repeats=RepeatCheck(recent, self._repeat_exclusions(), self._cast_and_places()),
        )
        # The beat told from the plan comes back first from a backend that writes it into
        # the reply (the local model): it is given, not judged as the model's own words.
        given = request.prefill if request.prefill == instruction.given and not head_start else ""
        stats = GenerationStats()
        cancel = threading.Event()
        first_sentence_s = 0.0
        if head_start:
            # Judged again (it passes: the same guards, the same story), and shown now.
            released = assembler.feed(head_start + " ")
            if released:
                first_sentence_s = time.monotonic() - started
            release(idx, released)
        try:
            stream = self.llm.stream(request, cancel, stats)
            if head_start:
                stream = without_prefill(stream, head_start)
            finished = True
            for told, piece in with_given(stream, given):
                released = assembler.give(told) if told else []
                released += assembler.feed(piece)
                if released and not first_sentence_s:
                    first_sentence_s = time.monotonic() - started
                release(idx, released)
                if control.abort.is_set() or assembler.done:
                    finished = False
                    break
                if control.hurry.is_set() or (control.cut.is_set() and assembler.accepted):
                    finished = False
                    break
            if finished:
                released = assembler.finish()
                if released and not first_sentence_s:
                    first_sentence_s = time.monotonic() - started
                release(idx, released)
        except BackendError as exc:
            self._status(f"story model failed: {exc.problem}")
            log.warning("%s", exc)
            return assembler, stats, first_sentence_s, exc
        finally:
            cancel.set()
        return assembler, stats, first_sentence_s, None

    def _emit_sentences(self, idx: int, sentences: list[str]) -> None:
        for sentence in sentences:
            # Word by word, so a page can show the turn appearing as it is written; the
            # sentence itself follows for the narrator.
            # Every piece carries its trailing space: joined, the pieces are the turn's text.
            for piece in WORD_PIECE.findall(sentence + " "):
                self.emit(StoryEvent(kind="token", t=time.monotonic(), turn_id=idx, text=piece))
            self.emit(StoryEvent(kind="sentence", t=time.monotonic(), turn_id=idx, text=sentence))
