"""The rolling context: system prompt + summary + recent turns + this turn's instruction.

It must fit the context window with room for the reply. When it would not, the oldest
turns are folded into the summary in one large step (all but the most recent few),
by the model itself. One large step rather than a little every turn: folding changes
the system prompt, which throws away the KV cache, so it should happen rarely.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from appliance.story.guards import CastCheck, SentenceSplitter, cut_at_marker, normalize
from appliance.story.llm import (
    BackendError,
    ChatMessage,
    GenerationRequest,
    GenerationStats,
    StoryLLM,
)
from appliance.story.plan.planner import StoryPlan
from appliance.story.prompts import summary_request, system_prompt
from appliance.story.settings import StorySettings

log = logging.getLogger(__name__)


class FoldCancelledError(Exception):
    """A fold was called off before it finished; the context is as it was."""


@dataclass(frozen=True, slots=True)
class ContextTurn:
    instruction: str
    text: str


def cap_words(text: str, max_words: int) -> str:
    """At most ``max_words`` words, cut at a sentence end when there is one in reach."""
    tokens = text.split()
    if len(tokens) <= max_words:
        return text
    clipped = " ".join(tokens[:max_words])
    end = max(clipped.rfind("."), clipped.rfind("!"), clipped.rfind("?"))
    if end > len(clipped) // 3:
        return clipped[: end + 1]
    return clipped.rstrip(",;:") + "."


def first_sentence(text: str) -> str:
    splitter = SentenceSplitter()
    sentences = splitter.push(text + " ")
    return sentences[0] if sentences else normalize(text)


class RollingContext:
    def __init__(
        self,
        settings: StorySettings,
        n_ctx: int,
        plan: StoryPlan,
        *,
        summary: str = "",
        turns: list[ContextTurn] | None = None,
        folded_upto: int = 0,
        cast_check: CastCheck | None = None,
    ) -> None:
        self.settings = settings
        self.n_ctx = n_ctx
        self.plan = plan
        """What the system prompt tells of the story: the cast, the world, the goal."""
        self.cast_check = cast_check
        """A summary that would rename the cast is not used."""
        self.summary = summary
        self.turns = list(turns or [])
        self.folded_upto = folded_upto

    @property
    def recent(self) -> list[ContextTurn]:
        return self.turns[self.folded_upto :]

    def messages(self, instruction: str) -> tuple[ChatMessage, ...]:
        messages = [ChatMessage("system", system_prompt(self.settings, self.plan, self.summary))]
        for turn in self.recent:
            messages.append(ChatMessage("user", turn.instruction))
            messages.append(ChatMessage("assistant", turn.text))
        messages.append(ChatMessage("user", instruction))
        return tuple(messages)

    def instructions(self) -> list[str]:
        """The instructions of the recent turns (they are in the prompt)."""
        return [turn.instruction for turn in self.recent]

    def fits(self, llm: StoryLLM, instruction: str, reply_tokens: int) -> bool:
        return llm.count_tokens(self.messages(instruction)) + reply_tokens <= self.n_ctx

    def add(self, turn: ContextTurn) -> None:
        self.turns.append(turn)

    def make_room(
        self,
        llm: StoryLLM,
        instruction: str,
        reply_tokens: int,
        on_fold: Callable[[str, int], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> bool:
        """Fold old turns until this turn fits; True when anything was folded.

        The first fold takes all but ``keep_recent_turns``; if that is not enough (very
        long turns, a tiny window) it keeps fewer, and as a last resort halves the summary.
        Setting ``cancel`` calls the fold off (``FoldCancelledError``): what was folded
        before stays folded, the fold in progress changes nothing.
        """
        folded = False
        keep = self.settings.keep_recent_turns
        while not self.fits(llm, instruction, reply_tokens):
            recent = self.recent
            if len(recent) > keep:
                count = len(recent) - keep
            elif recent:
                count = 1
            elif self.summary:
                self.summary = cap_words(self.summary, max(5, len(self.summary.split()) // 2))
                folded = True
                continue
            else:
                raise BackendError(
                    llm.name,
                    f"the system prompt and instruction alone do not fit n_ctx {self.n_ctx}",
                )
            passages = [turn.text for turn in recent[:count]]
            self.summary = self.summarize(llm, passages, cancel)
            self.folded_upto += count
            folded = True
            log.info(
                "folded %d turns into the summary (%d words); %d kept",
                count,
                len(self.summary.split()),
                len(self.recent),
            )
            if on_fold is not None:
                on_fold(self.summary, self.folded_upto)
        return folded

    def summarize(
        self, llm: StoryLLM, passages: list[str], cancel: threading.Event | None = None
    ) -> str:
        """The old summary and ``passages`` in at most ``summary_max_words`` words.

        Passages go to the model in as large chunks as its window takes. If the model
        fails, returns nothing usable, or renames or loses the hero, the first sentence of
        each passage stands in: the summary stays bounded either way.
        """
        max_words = self.settings.summary_max_words
        summary = self.summary
        remaining = list(passages)
        while remaining:
            take = len(remaining)
            while take > 1 and not self._summary_fits(llm, summary, remaining[:take], max_words):
                take -= 1
            chunk, remaining = remaining[:take], remaining[take:]
            written = self._model_summary(llm, summary, chunk, max_words, cancel)
            if not written:
                written = " ".join([summary] + [first_sentence(p) for p in chunk]).strip()
                # Keep the newest events when the stand-in is too long.
                tokens = written.split()
                written = " ".join(tokens[-max_words:]) if len(tokens) > max_words else written
            summary = cap_words(written, max_words)
        return summary

    def _summary_messages(
        self, summary: str, passages: list[str], max_words: int
    ) -> tuple[ChatMessage, ...]:
        names = ", ".join(f"{c.name} the {c.kind}" for c in self.plan.cast)
        system, user = summary_request(summary, passages, max_words, names)
        return (ChatMessage("system", system), ChatMessage("user", user))

    def _summary_fits(
        self, llm: StoryLLM, summary: str, passages: list[str], max_words: int
    ) -> bool:
        messages = self._summary_messages(summary, passages, max_words)
        return llm.count_tokens(messages) + max_words * 2 <= self.n_ctx

    def _model_summary(
        self,
        llm: StoryLLM,
        summary: str,
        passages: list[str],
        max_words: int,
        cancel: threading.Event | None = None,
    ) -> str:
        request = GenerationRequest(
            messages=self._summary_messages(summary, passages, max_words),
            max_tokens=max_words * 2,
            temperature=0.2,
            purpose="summary",
        )
        pieces: list[str] = []
        cancel = cancel or threading.Event()
        try:
            for piece in llm.stream(request, cancel, GenerationStats()):
                pieces.append(piece)
                if cancel.is_set():
                    break
        except BackendError as exc:
            if cancel.is_set():
                raise FoldCancelledError() from exc
            log.warning("summary by the model failed (%s): keeping first sentences", exc)
            return ""
        if cancel.is_set():
            raise FoldCancelledError()
        text, _ = cut_at_marker("".join(pieces))
        splitter = SentenceSplitter()
        sentences = splitter.push(text)
        last, _fragment = splitter.finish()
        if last:
            sentences.append(last)
        written = normalize(" ".join(sentences))
        if self.cast_check is not None and written:
            renamed = next((s for s in sentences if self.cast_check.reason(s)), None)
            if renamed is not None or self.plan.hero.name.lower() not in written.lower():
                # The summary stays in the prompt for many turns: a renamed hero there
                # would spread into every one of them.
                log.warning(
                    "the model's summary loses the cast (%r); keeping first sentences",
                    renamed or written[:80],
                )
                return ""
        return written
