"""Output guards: a turn is released sentence by sentence, and only whole, clean sentences.

Small models drift: they echo their instructions, open a new chat turn, loop on a
phrase, or slide into another language or into code. Every sentence is checked as it
completes, before anyone sees or hears it. A bad first sentence means the turn is tried
again (another seed); a bad later sentence ends the turn at the sentence before it. The
fragment after the last sentence end is never shown.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field

CHAT_MARKERS = (
    "<|im_start|>",
    "<|im_end|>",
    "<|endoftext|>",
    "<|eot_id|>",
    "<|start_header_id|>",
    "<|assistant|>",
    "<|user|>",
    "<|system|>",
    "</s>",
    "<s>",
    "[INST]",
    "[/INST]",
)
ROLE_LINE = re.compile(
    r"(?:^|\n)\s*(?:user|assistant|system|human|ai|instruction|response|### ?\w+)\s*:",
    re.IGNORECASE,
)
ECHO_OPENINGS = (
    "the reader",
    "reader",
    "begin the story",
    "continue the story",
    "next part",
    "premise:",
    "rules:",
    "instruction",
    "as an ai",
    "here is",
    "here's",
    "certainly",
    "sure,",
    "sure!",
    "sure.",
    "of course,",
    "let's add",
    "let me",
    "i will ",
    "i'll ",
    "in this story",
    "the story so far",
)
COMMON_WORDS = frozenset(
    (
        "the a an and to of in on at is was were be been he she it they his her their its "
        "with for from as that this but not no so then there had has have by up out into "
        "all one when what who"
    ).split()
)
ABBREVIATIONS = frozenset({"mr", "mrs", "ms", "dr", "st", "mt", "jr", "sr", "prof"})
SENTENCE_END = re.compile(r"[.!?…]+[\"'”’)\]]*(?=\s)")
WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
PROSE_PUNCTUATION = frozenset(".,;:!?'\"“”‘’-–—…()")
GLUED_DIGITS = re.compile(r"\b\d+[a-zA-Z]{2,}|[a-zA-Z]{2,}\d+\b")
LIST_ITEM = re.compile(r"(?:^|[\s:])(?:\d+|[a-z])[.)]$|^\s*(?:[-*•]|\d+[.)])\s")


def words(text: str) -> list[str]:
    return WORD.findall(text.lower())


def ngrams(tokens: list[str], n: int = 4) -> list[tuple[str, ...]]:
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


def normalize(text: str) -> str:
    return " ".join(text.split())


def cut_at_marker(text: str) -> tuple[str, bool]:
    """The text before the first chat marker or role line, and whether one was found."""
    cut = len(text)
    for marker in CHAT_MARKERS:
        index = text.find(marker)
        if index != -1:
            cut = min(cut, index)
    role = ROLE_LINE.search(text)
    if role is not None:
        cut = min(cut, role.start())
    return text[:cut], cut < len(text)


def held_back(text: str) -> int:
    """How many characters at the end of ``text`` could be the start of a chat marker or
    of a role line ("\nUser:"): they wait for the next piece."""
    hold = 0
    for marker in CHAT_MARKERS:
        for k in range(min(len(marker) - 1, len(text)), 0, -1):
            if text.endswith(marker[:k]):
                hold = max(hold, k)
                break
    newline = text.rfind("\n")
    if newline != -1 and len(text) - newline <= 24:
        hold = max(hold, len(text) - newline)
    return hold


def inside_quotation(text: str) -> bool:
    """Whether ``text`` ends inside an open quotation."""
    return text.count('"') % 2 == 1 or text.count("“") > text.count("”")


class SentenceSplitter:
    """Turns a stream of text pieces into complete sentences.

    A sentence ends at . ! ? or … (with closing quotes) followed by white space, so the
    end of a sentence is known one piece after it is written; ``finish`` takes a last
    sentence that ends the text. Abbreviations such as "Mr." do not end a sentence.
    """

    def __init__(self) -> None:
        self._buffer = ""

    def push(self, piece: str) -> list[str]:
        self._buffer += piece
        sentences = []
        start = 0
        for match in SENTENCE_END.finditer(self._buffer):
            before = self._buffer[start : match.start()].rstrip()
            last_word = before.rsplit(maxsplit=1)[-1].lower() if before.split() else ""
            if match.group().startswith(".") and last_word.strip("\"'“‘(") in ABBREVIATIONS:
                continue
            if inside_quotation(self._buffer[start : match.end()]):
                continue  # "Hello! I am here," he said. -- one sentence, not two
            sentence = normalize(self._buffer[start : match.end()])
            if sentence:
                sentences.append(sentence)
            start = match.end()
        self._buffer = self._buffer[start:]
        return sentences

    def finish(self) -> tuple[str | None, str]:
        """(a final sentence if the text ended on one, the fragment left over)."""
        rest = normalize(self._buffer)
        self._buffer = ""
        if rest and re.search(r"[.!?…][\"'”’)\]]*$", rest):
            return rest, ""
        return None, rest


def close_quotes(sentence: str, before: str = "") -> str:
    """A sentence that leaves a quotation open (counting the turn's sentences ``before``
    it) and ends gets the closing mark: small models often drop it."""
    text = before + " " + sentence
    if text.count('"') % 2 == 1:
        return sentence + '"'
    if text.count("“") > text.count("”"):
        return sentence + "”"
    return sentence


def garbage_reason(sentence: str) -> str | None:
    """Why a sentence is not English story prose, or None."""
    visible = [c for c in sentence if not c.isspace() and c not in PROSE_PUNCTUATION]
    letters = [c for c in visible if c.isalpha()]
    tokens = words(sentence)
    checks = (
        ("empty", not any(c.isalnum() for c in sentence)),
        ("list", bool(LIST_ITEM.search(sentence))),
        ("garbage", bool(GLUED_DIGITS.search(sentence)) or "%" in sentence),
        ("garbage", any(unicodedata.category(c) in {"Cc", "Co", "Cs", "Cn"} for c in sentence)),
        ("garbage", bool(visible) and len(letters) / max(len(visible), 1) < 0.7),
        ("language", sum(1 for c in letters if not c.isascii()) > max(2, len(letters) // 10)),
        ("garbage", sum(1 for c in sentence if c in "{}[]<>|\\=_#@$%^*~`") > 1),
        ("language", len(tokens) >= 6 and not COMMON_WORDS.intersection(tokens)),
    )
    return next((reason for reason, failed in checks if failed), None)


def loop_reason(sentence: str) -> str | None:
    tokens = words(sentence)
    if len(tokens) > 80:
        return "loop"
    for a, b, c, d in zip(tokens, tokens[1:], tokens[2:], tokens[3:], strict=False):
        if a == b == c == d:
            return "loop"
    counts = Counter(ngrams(tokens, 3))
    if counts and counts.most_common(1)[0][1] >= 3:
        return "loop"
    return None


def opening(text: str, n: int = 3) -> str:
    """The first ``n`` words as written: how a turn begins."""
    return " ".join(text.split()[:n])


def overlap(sentence: str, reference: set[tuple[str, ...]], n: int = 4) -> float:
    """Share of the sentence's word n-grams found in ``reference``."""
    grams = ngrams(words(sentence), n)
    if not grams:
        return 0.0
    return sum(1 for g in grams if g in reference) / len(grams)


def echo_reason(sentence: str, prompt_grams: set[tuple[str, ...]]) -> str | None:
    lowered = sentence.lower().lstrip("\"'“‘ ")
    if lowered.startswith(ECHO_OPENINGS) or " the reader" in lowered:
        return "echo"
    if overlap(sentence, prompt_grams) >= 0.5:
        return "echo"
    return None


@dataclass
class TurnAssembler:
    """Collects one turn from a token stream, releasing each sentence that passes.

    ``done`` tells the caller to stop generating: enough sentences, a bad sentence after
    good ones, or a chat marker. ``rejected`` (a reason) means the turn has no good
    first sentence and must be tried again.
    """

    prompt_texts: tuple[str, ...]
    target_sentences: int
    story_texts: tuple[str, ...] = ()
    """Earlier turns: a sentence mostly copied from them is stale."""
    stale_overlap: float = 0.3
    """A sentence sharing this much of its 4-word runs with earlier turns is stale."""
    opener: str = ""
    """The words the turn was given to start with. They come back by design, so runs
    lying wholly inside them are not counted (runs reaching past them are)."""
    accepted: list[str] = field(default_factory=list)
    reasons: Counter[str] = field(default_factory=Counter)
    rejected: str | None = None
    last_rejected_sentence: str = ""
    done: bool = False
    _splitter: SentenceSplitter = field(default_factory=SentenceSplitter)
    _raw: str = ""
    _pushed: int = 0
    _prompt_grams: set[tuple[str, ...]] = field(default_factory=set)
    _story_grams: set[tuple[str, ...]] = field(default_factory=set)

    def __post_init__(self) -> None:
        for text in self.prompt_texts:
            self._prompt_grams.update(ngrams(words(text)))
        for text in self.story_texts:
            self._story_grams.update(ngrams(words(text)))

    def feed(self, piece: str) -> list[str]:
        """Newly released sentences (possibly none)."""
        if self.done:
            return []
        # Markers are looked for in the whole reply (a marker can arrive split over
        # pieces), and text that may be the start of one is held back until it is not.
        self._raw += piece
        clean, marker = cut_at_marker(self._raw)
        safe = clean if marker else clean[: len(clean) - held_back(clean)]
        released = self._judge_all(self._splitter.push(safe[self._pushed :]))
        self._pushed = max(self._pushed, len(safe))
        if marker and not self.done:
            self.reasons["marker"] += 1
            released += self._finish_sentences()
            self.done = True
        return released

    def finish(self) -> list[str]:
        """The stream has ended: judge a last sentence; the fragment is dropped."""
        if self.done:
            return []
        clean, _marker = cut_at_marker(self._raw)
        released = self._judge_all(self._splitter.push(clean[self._pushed :]))
        self._pushed = len(clean)
        if not self.done:
            released += self._finish_sentences()
        self.done = True
        return released

    def _finish_sentences(self) -> list[str]:
        sentence, fragment = self._splitter.finish()
        if fragment:
            self.reasons["fragment"] += 1
        released = self._judge_all([sentence] if sentence else [])
        if not self.accepted and self.rejected is None:
            self.rejected = "fragment" if fragment else "empty"
        return released

    def _judge_all(self, sentences: list[str]) -> list[str]:
        released = []
        for sentence in sentences:
            if self.done:
                break
            reason = self.judge(sentence)
            if reason is None:
                whole = close_quotes(sentence, " ".join(self.accepted))
                self.accepted.append(whole)
                released.append(whole)
                if len(self.accepted) >= self.target_sentences:
                    self.done = True
                continue
            self.reasons[reason] += 1
            self.last_rejected_sentence = sentence
            if not self.accepted:
                self.rejected = reason
            self.done = True
        return released

    def judge(self, sentence: str) -> str | None:
        reason = (
            garbage_reason(sentence)
            or loop_reason(sentence)
            or echo_reason(sentence, self._prompt_grams)
        )
        if reason:
            return reason
        if self._repeats_this_turn(sentence):
            return "repeat"
        if self._is_stale(sentence):
            return "stale"
        return None

    def _repeats_this_turn(self, sentence: str) -> bool:
        earlier: set[tuple[str, ...]] = set()
        for previous in self.accepted:
            if normalize(previous).lower() == normalize(sentence).lower():
                return True
            earlier.update(ngrams(words(previous)))
        return overlap(sentence, earlier) >= 0.6

    def _is_stale(self, sentence: str) -> bool:
        grams = ngrams(words(sentence))
        if self.opener and not self.accepted and sentence.startswith(self.opener):
            # A long opener given twice would otherwise make a fresh sentence stale.
            grams = grams[max(0, len(words(self.opener)) - 3) :]
        if not grams:
            return False
        shared = sum(1 for gram in grams if gram in self._story_grams)
        return shared / len(grams) >= self.stale_overlap

    @property
    def text(self) -> str:
        return " ".join(self.accepted)
