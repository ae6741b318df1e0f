"""The turn policy: when the storyteller tells, cuts, pauses and waits.

The story keeps going while the reader is there, turn after turn, each answering the
mood of the moment. A shift makes the very next turn answer it; a strong shift cuts the
turn being written at its next sentence end. The reader leaving finishes the sentence and
pauses the story; the reader coming back resumes it with a one-line recap. The story
never runs ahead of the narrator (or of a reader's eyes, with speech off).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from appliance.events import Mood
from appliance.story.settings import StorySettings
from appliance.story.storyteller import StoryPausedError, Storyteller, TurnControl

log = logging.getLogger(__name__)

WAIT_STEP_S = 0.5
"""The longest the loop sleeps without looking at the stop event."""
PAUSED_RETRY_S = (2.0, 30.0)
"""Bounds on the wait before trying again when no story model can serve."""

GIVEN_UP_PAUSE_S = (0.5, 30.0)
"""After a turn given up, wait 0.5 s; after each further one in a row, twice as long, up to
30 s: a model that keeps failing the guards is not asked again and again (Azure costs)."""
RECENT_LABELS = 8
PAUSED_FROM_PAGE = "paused from the page"

StoryState = str
"""In plain words, for the page: "telling", "waiting for a reader", "paused", ..."""


@dataclass(slots=True)
class ReadingPace:
    """How far a reader reading at ``wpm`` is behind the text released so far, and which
    sentences they have not begun to read."""

    wpm: int
    clock: Callable[[], float] = time.monotonic
    _caught_up_at: float = 0.0
    _sentences: deque[tuple[float, int | None, str]] = field(default_factory=deque)
    """(when the reader begins it, turn, sentence), for those not yet begun."""

    def add(self, text: str, turn_id: int | None = None) -> None:
        if self.wpm <= 0:
            return
        now = self.clock()
        seconds = len(text.split()) * 60.0 / self.wpm
        begins = max(self._caught_up_at, now)
        self._caught_up_at = begins + seconds
        self._sentences.append((begins, turn_id, " ".join(text.split())))
        while self._sentences and self._sentences[0][0] <= now:
            self._sentences.popleft()

    def behind_s(self) -> float:
        return max(0.0, self._caught_up_at - self.clock())

    def reset(self) -> list[tuple[int | None, str]]:
        """The reader goes to the newest text: returns the sentences they never began to
        read (a sentence begun is read to its end), as (turn, sentence), in order."""
        now = self.clock()
        unread = [(turn, text) for begins, turn, text in self._sentences if begins > now]
        self._sentences.clear()
        self._caught_up_at = 0.0
        return unread


class StoryLoop:
    """The story thread's body. ``on_mood`` and the controls may be called from any thread."""

    def __init__(
        self,
        teller: Storyteller,
        settings: StorySettings,
        behind_s: Callable[[], float],
        max_ahead_s: float,
        on_state: Callable[[StoryState, str | None], None] = lambda state, reason: None,
    ) -> None:
        self.teller = teller
        self.settings = settings
        self.behind_s = behind_s
        self.max_ahead_s = max_ahead_s
        self.on_state = on_state
        self.state: StoryState = "starting"
        self.reason: str | None = None
        self.turns_told = 0
        self.cuts = 0
        self.given_up = 0
        self._given_up_wait = GIVEN_UP_PAUSE_S[0]
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._mood: Mood | None = None
        self._engaged = False
        self._reader_left = False
        self._left_at = 0.0
        """time.monotonic() when the reader left: a glance away is not recapped."""
        self._user_paused = False
        self._held: str | None = None
        self._new_story = False
        self._control: TurnControl | None = None
        self._turn_label: str | None = None
        self._shift_pending = False
        self._paused_wait = PAUSED_RETRY_S[0]
        self._folded_while_idle = False
        self._idle_cancel = threading.Event()
        """Set by a shift (or a pause, a new story, a stop): work done while idle (a fold,
        answers written ahead) is called off at once."""
        self._prepared_while_idle = False
        self._recent_labels: list[str] = []
        """Moods the reader showed, the latest first: the likely next shifts."""

    # -- from other threads ------------------------------------------------------------

    def on_mood(self, mood: Mood) -> None:
        with self._lock:
            self._mood = mood
            control = self._control
            if self._engaged and not mood.engaged:
                self._reader_left = True
                self._left_at = time.monotonic()
                if control is not None:
                    control.cut.set()  # finish the sentence, then pause
            elif mood.engaged and not self._engaged:
                self._wake.set()
            elif (
                mood.shift
                and control is not None
                and mood.dominant != self._turn_label
                and mood.confidence >= self.settings.cut_on_shift
            ):
                # End the turn now, at the last sentence already released (none: drop
                # it): the next turn answers the new mood.
                self.cuts += 1
                control.hurry.set()
            if mood.shift:
                self._shift_pending = True
                self._idle_cancel.set()
                self._wake.set()
            if mood.engaged and self._recent_labels[:1] != [mood.dominant]:
                labels = [mood.dominant, *self._recent_labels]
                self._recent_labels = list(dict.fromkeys(labels))[:RECENT_LABELS]
            self._engaged = mood.engaged

    def pause(self) -> None:
        with self._lock:
            self._idle_cancel.set()
            self._user_paused = True
            if self._control is not None:
                self._control.cut.set()
        self._wake.set()

    def hold(self, reason: str | None) -> None:
        """Pause the story for a reason of the device's own (the camera is lost), or
        lift that pause with None. The sentence being written is finished first."""
        with self._lock:
            if reason == self._held:
                return
            self._held = reason
            if reason is not None:
                self._idle_cancel.set()
                if self._control is not None:
                    self._control.cut.set()
        self._wake.set()

    def resume(self) -> None:
        with self._lock:
            self._user_paused = False
        self._wake.set()

    def request_new_story(self) -> None:
        """End the current story and begin another; the turn in progress is dropped."""
        with self._lock:
            self._idle_cancel.set()
            self._new_story = True
            if self._control is not None:
                self._control.abort.set()
        self._wake.set()

    def stop_turn(self) -> None:
        """Shutting down: drop the turn in progress (it is never stored half done)."""
        with self._lock:
            self._idle_cancel.set()
            if self._control is not None:
                self._control.abort.set()
        self._wake.set()

    # -- the thread ---------------------------------------------------------------------

    def _set_state(self, state: StoryState, reason: str | None = None) -> None:
        if (state, reason) != (self.state, self.reason):
            self.state, self.reason = state, reason
            log.info("story: %s%s", state, f" ({reason})" if reason else "")
            self.on_state(state, reason)

    def _wait(self, seconds: float) -> None:
        self._wake.wait(min(seconds, WAIT_STEP_S))
        self._wake.clear()

    def _fold_ahead(self) -> bool:
        """Fold the story's old turns if the next turns would need it, unless a shift
        calls it off; True when that question is settled until the next turn."""
        with self._lock:
            if self._shift_pending:
                return False
            self._idle_cancel.clear()
        self.teller.fold_ahead(cancel=self._idle_cancel)
        self._folded_while_idle = not self._idle_cancel.is_set()
        return self._folded_while_idle

    def _idle(self, seconds: float, reader: Mood | None = None) -> None:
        """Wait; the first time in each idle spell, fold the story's old turns if the next
        turns would need it, so that cost never lands on a turn someone is waiting for;
        then, with a ``reader`` there, write ahead the answers to their likely shifts."""
        if not self._folded_while_idle:
            self._fold_ahead()
        if reader is not None and self._folded_while_idle and not self._prepared_while_idle:
            self._prepare_answers(reader)
        self._wait(seconds)

    def likely_shifts(self, mood: Mood) -> list[str]:
        """Moods the reader showed lately (latest first), then the runner-ups of the
        reading now: up to ``story.prepared_answers`` labels other than the current."""
        with self._lock:
            recent = list(self._recent_labels)
        by_share = sorted(mood.emotions.as_dict().items(), key=lambda kv: kv[1], reverse=True)
        labels = [*recent, *(label for label, _share in by_share)]
        others = [label for label in dict.fromkeys(labels) if label != mood.dominant]
        return others[: self.settings.prepared_answers]

    def _prepare_answers(self, mood: Mood) -> None:
        labels = self.likely_shifts(mood)
        with self._lock:
            if self._shift_pending or not labels:
                return
            self._idle_cancel.clear()
        self.teller.prepare(labels, self._idle_cancel)
        self._prepared_while_idle = not self._idle_cancel.is_set()

    def run(self, stop: threading.Event, beat: Callable[[], None] = lambda: None) -> None:
        self._paused_wait = PAUSED_RETRY_S[0]
        while not stop.is_set():
            beat()
            with self._lock:
                new_story, self._new_story = self._new_story, False
                user_paused = self._user_paused
                held = self._held
                mood = self._mood if self._engaged else None
                shift_pending = self._shift_pending
            if new_story:
                self.teller.new_story()
            elif user_paused:
                self._set_state("paused", PAUSED_FROM_PAGE)
                self._idle(WAIT_STEP_S)
            elif held is not None:
                self._set_state("paused", held)
                self._wait(WAIT_STEP_S)
            elif mood is None:
                self._set_state("waiting for a reader")
                self._idle(WAIT_STEP_S)
            elif self.behind_s() > self.max_ahead_s and not shift_pending:
                # Waiting for the narrator. A shift is answered at once, even a little
                # ahead of it: the story should answer a frown within a second or two.
                self._set_state("telling")
                self._idle(self.behind_s() - self.max_ahead_s, reader=mood)
            else:
                self._tell_one(mood, stop, answers_shift=shift_pending)

    def _tell_one(self, mood: Mood, stop: threading.Event, *, answers_shift: bool) -> None:
        if not answers_shift and not self._folded_while_idle and not self._fold_ahead():
            # Nobody waited for this turn, but a shift came while folding: answer it.
            return
        if answers_shift and not mood.shift:
            # The Mood that carried the shift has passed; this turn still answers it.
            mood = dataclasses.replace(mood, shift=True)
        with self._lock:
            if (
                not self._engaged
                or self._user_paused
                or self._held is not None
                or self._new_story
                or (self._shift_pending and not answers_shift)
            ):
                return  # changed since the loop looked (a shift, the reader left): look again
            if self._reader_left:
                self._reader_left = False
                if time.monotonic() - self._left_at >= self.settings.recap_after_s:
                    self.teller.reader_returned()
            control = TurnControl(urgent=answers_shift)
            self._control = control
            self._shift_pending = False
            self._folded_while_idle = False
            self._prepared_while_idle = False
            self._turn_label = mood.dominant
        self._set_state("telling")
        try:
            finished = self.teller.next_turn(mood, control)
            self._paused_wait = PAUSED_RETRY_S[0]
            if finished is not None:
                self.turns_told += 1
                self._given_up_wait = GIVEN_UP_PAUSE_S[0]
            elif not (control.hurry.is_set() or control.abort.is_set()):
                # Given up (every try caught by the guards): breathe before the next one.
                self.given_up += 1
                deadline = time.monotonic() + self._given_up_wait
                self._given_up_wait = min(self._given_up_wait * 2, GIVEN_UP_PAUSE_S[1])
                while not stop.is_set() and time.monotonic() < deadline:
                    with self._lock:
                        if self._shift_pending or self._new_story:
                            break  # the reader changed: try at once
                    self._wait(deadline - time.monotonic())
        except StoryPausedError as exc:
            wait = exc.retry_after or self._paused_wait
            wait = min(max(wait, PAUSED_RETRY_S[0]), PAUSED_RETRY_S[1])
            self._paused_wait = min(self._paused_wait * 2, PAUSED_RETRY_S[1])
            self._set_state("paused", f"no story model can serve: {exc}")
            deadline = time.monotonic() + wait
            while not stop.is_set() and time.monotonic() < deadline:
                self._wait(deadline - time.monotonic())
        finally:
            with self._lock:
                self._control = None
                self._turn_label = None
