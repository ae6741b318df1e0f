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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from difflib import SequenceMatcher

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
    "make it",
    "change the",  # "Change the temperature to funny.": the shift's words, bent
    "recall",
    "open with",
    "one line",
    "end the episode",
    "begin episode",
    "next:",
    "close with",
    "in episode",
    "in this episode",
    "last time",
)
COMMON_WORDS = frozenset(
    (
        "the a an and to of in on at is was were be been he she it they his her their its "
        "with for from as that this but not no so then there had has have by up out into "
        "all one when what who said we you i me my your could would can will go now than "
        "like very just over off about after did do are him them"
    ).split()
)
CAST_LINE_ECHO = re.compile(r"\((?:he|she|they|it)\)")
ABBREVIATIONS = frozenset({"mr", "mrs", "ms", "dr", "st", "mt", "jr", "sr", "prof"})
SENTENCE_END = re.compile(r"[.!?…]+[\"'”’)\]]*(?=\s)")
WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
PROSE_PUNCTUATION = frozenset(".,;:!?'\"“”‘’-–—…()")
GLUED_DIGITS = re.compile(r"\b\d+[a-zA-Z]{2,}|[a-zA-Z]{2,}\d+\b|[a-zA-Z][_/][a-zA-Z]")
LIST_ITEM = re.compile(r"(?:^|[\s:])(?:\d+|[a-z])[.)]$|^\s*(?:[-*•]|\d+[.)])\s")
# A sentence that preaches instead of telling: small models end every turn with what
# everyone "learned about the importance of friendship".
_VIRTUES = (
    r"(?:friendship|friends|kindness|being kind|compassion|teamwork|patience|honesty|courage|"
    r"sharing|love|helping others)"
)
LECTURE = re.compile(
    r"\blearn(?:ed|t|s|ing)? (?:about (?:the )?(?:importance|value|friendship|kindness|sharing|"
    rf"being|how|what|why)|that (?:true |real )?{_VIRTUES}|what (?:true |real )?{_VIRTUES}|"
    r"what it (?:means|meant)|the value|the importance|a lesson)"
    r"|\b(?:the )?(?:importance|value|power|meaning) of\b"
    r"|\b(?:is|was|are|were|be) (?:so |very |truly )?important (?:to|for|in)\b"
    r"|\bmost important thing"
    r"|\blessons?\b|\bmorals?\b"
    r"|\btaught (?:them|him|her|us|everyone|me) (?:that|about|the|a lesson|how important)\b"
    r"|\bremember(?:ed)? to always\b|\balways remember\b"
    # A virtue said to be the answer ("Friendship is what matters", "Love was the greatest
    # gift of all"), not "Love was all around" nor "Courage was what Pip needed".
    rf"|\b(?:true |real )?{_VIRTUES},?(?: \w+ \w+,)? "
    r"(?:is|was|are|were|means|meant|matters|mattered)"
    r" (?:always |truly |really )?(?:the (?:greatest|best|most|real|true|key|secret|answer)|what "
    r"(?:matters|mattered|counts|really|truly|made)|more important|everything|all (?:you|we|that)|"
    r"a (?:gift|treasure))"
    r"|\b(?:real|true) (?:friendship|friends are|kindness|courage)\b"
    r"|\b(?:greatest|best|most precious) (?:treasure|gift) of all\b"
    r"|\bmental health\b|\bwell-?being\b|\bcompassion|\bempathy\b|\bvalues\b"
    r"|\bin life\b|\bwhat (?:is|was|really|truly) (?:matters|mattered|important)\b"
    # Commentary on the story instead of the story: "This was a funny revelation in the
    # episode", "how much they had learned from their discovery".
    r"|\bepisodes?\b|\brevelation\b|\bthis was a (?:\w+ )?(?:moment|discovery|reminder|lesson)"
    r"|\blearn(?:ed|t) (?:so much|a lot|many things)\b"
    r"|\bhow much they had (?:learned|grown)\b",
    re.IGNORECASE,
)
# Dialogue written as a script ("Bramble: Let's go!", "Pip (excited): Look!") rather than in
# quotation marks; "Inside: a tiny door", "Suddenly: a crash", "Dear Pip: come home" are not.
SCRIPT_LINE = re.compile(
    r"(?:^|\n)\s*(?!(?:Dear|Dearest|Inside|Outside|Above|Below|Behind|Beneath|Then|Later|Now|"
    r"There|Here|First|Next|Finally|Meanwhile|Soon|Once|Today|Tonight)\b)(?![A-Z][a-z]+ly\b)"
    r"[A-Z][\w'’-]*(?: [A-Z][\w'’-]*)?(?:\s*\([^)]*\))?\s*:\s*\S"
)
# Narration in the present tense, in a story told in the past ("Pip is", "they go").
PRESENT_NARRATION = re.compile(
    r"\b(?:he|she|they|it|there|[A-Z][a-z]+)\s+(?:is|are|has|says|goes|sees|looks|walks|"
    r"runs|finds|wants|takes|comes|gets|feels|knows|thinks|decides|smiles|laughs|starts|"
    r"begins|holds|gives|tells|asks|hears|jumps|hops)\b"
    r"|\b(?:[Tt]hey|[Ww]e)\s+(?:go|walk|run|look|see|find|want|take|come|get|feel|know|"
    r"think|say|decide|start|begin|hear|jump|laugh|smile)\b"
)
CAPITALISED = re.compile(r"\b[A-Z][a-z]+\b")
# The narrator talking about the story instead of telling it ("The story ends with...",
# "It's like when you...", "changing their tone").
COMMENTARY = re.compile(
    r"\bthe story\b|\bthis story\b|\bit'?s (?:just )?like (?:when|being|having|finding|"
    r"saying|someone|you)\b|\bthe listener\b|\bthe reader\b"
    # the instruction's "change the tone" echoed; "a grumpy tone", "her tone" are story
    r"|\b(?:chang|shift|switch|lighten|brighten|set)\w*\s+(?:(?:the|their|its|his|her|a|this)\s+)?"
    r"tone\b|\btone\s+(?:shift|chang|switch|turn|became|grew|lighten|brighten)\w*"
    r"|\bthe tone\b(?!\s+of\s+(?:\w+\s+){0,2}voice)",
    re.IGNORECASE,
)
# First person in the narration ("We were at the beach"): the narrator is not in the story.
FIRST_PERSON = re.compile(r"\b(?:we|We|we're|We're|our|Our)\b")
# Narration inside the quotation marks, or a quote in a quote: a new sentence in the quote
# with a speech tag ('"Dotty saw him. He called out," Thistle said.'), a tag opening a quote
# ('"Sorrel said, \'Thistle is brave,\' ..."'), or the tag itself ('"Run, said Pip."').
# Reported speech ("She called me a scaredy-cat!", "Did you hear what he said?") is speech.
_TAG = r"(?:said|asked|added|replied|cried|called|shouted|whispered)"
TAG_IN_QUOTE = re.compile(
    rf"[.!?]\s+(?:[Hh]e|[Ss]he|[Tt]hey|(?!(?:Who|What|Why|Where|When|How|You|Someone|"
    rf"Somebody|Nobody|Everyone|Mom|Mum|Dad|Mama|Papa|Grandma|Grandpa)\b)[A-Z][a-z]+) {_TAG}\b"
    rf"|\b{_TAG},?\s*['‘\"“]\s*[A-Z]"
    rf"|[,.!?]\s+{_TAG} (?:he|she|they|[A-Z][a-z]+)\b"
    # a quotation opened inside another, after narration ('"The rabbit said hello. \'Hey!\'"')
    r"|[.!?]\s+['‘][A-Z]"
)
QUOTE_COMMA = re.compile(r"([!?…])([\"”]),")  # '"Yes?", asked Pip' -> '"Yes?" asked Pip'
QUOTED = re.compile(
    r"\"[^\"]*(?:\"|$)|“[^”]*(?:”|$)|(?<!\w)'.*?(?:'(?!\w)|$)|(?<!\w)‘.*?(?:’(?!\w)|$)"
)


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


def tidy_quotes(sentence: str, before: str = "") -> str:
    """Quotation marks where a reader expects them: no space inside them ('" Hello! "' ->
    '"Hello!"'), and no comma after a '!' or '?' that ends a quote ('"Oh no!", she said'
    -> '"Oh no!" she said'). Small models space them as their tokens fall. ``before``: the
    turn's sentences before this one (a quotation may have opened there)."""
    inside = before.count('"') % 2 == 1
    out: list[str] = []
    for index, char in enumerate(sentence):
        if char == '"':
            if inside and out and out[-1] == " ":
                out.pop()
            inside = not inside
            out.append(char)
            continue
        if char == " " and out and out[-1] in '"“' and (out[-1] == "“" or inside):
            continue  # the space right after an opening mark
        if char == " " and sentence[index + 1 : index + 2] == "”":
            continue
        out.append(char)
    return QUOTE_COMMA.sub(r"\1\2", "".join(out))


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
        ("empty", not any(len(w) >= 2 for w in tokens)),
        ("list", bool(LIST_ITEM.search(sentence))),
        ("garbage", bool(GLUED_DIGITS.search(sentence)) or "%" in sentence),
        ("garbage", any(unicodedata.category(c) in {"Cc", "Co", "Cs", "Cn"} for c in sentence)),
        ("garbage", bool(visible) and len(letters) / max(len(visible), 1) < 0.7),
        ("language", foreign_letters(sentence)),
        # Latin letters with accents: a "café" is English, a sentence full of them is not.
        ("language", sum(1 for c in letters if not c.isascii()) > max(2, len(letters) // 10)),
        ("garbage", sum(1 for c in sentence if c in "{}[]<>|\\=_#@$%^*~`&") > 1),
        ("language", len(tokens) >= 7 and not COMMON_WORDS.intersection(tokens)),
    )
    return next((reason for reason, failed in checks if failed), None)


def foreign_letters(text: str) -> bool:
    """Whether ``text`` has letters outside the story's script (Latin, for English):
    one Chinese or Cyrillic word in an English story is enough to break it for a child."""
    return any(c.isalpha() and not unicodedata.name(c, "").startswith("LATIN") for c in text)


def outside_quotes(sentence: str) -> str:
    return QUOTED.sub(" ", sentence)


def lecture_reason(sentence: str) -> str | None:
    return "lecture" if LECTURE.search(sentence) else None


def form_reason(sentence: str) -> str | None:
    """Script-form dialogue, commentary on the story, the narrator saying "we", speech tags
    inside the quotation marks, or narration slipping into the present tense."""
    if SCRIPT_LINE.search(sentence):
        return "script"
    narration = outside_quotes(sentence)
    if COMMENTARY.search(narration):
        return "commentary"
    if FIRST_PERSON.search(narration):
        return "person"
    if any(TAG_IN_QUOTE.search(quote) for quote in QUOTED.findall(sentence)):
        return "dialogue"
    if PRESENT_NARRATION.search(narration):
        return "tense"
    return None


@dataclass(frozen=True, slots=True)
class CastCheck:
    """Cheap checks that the cast stays itself: no one turns into another animal ("the
    fish Pip", "Pip the owl"), the hero's kind is not given a new name ("a fox named
    Rusty"), and no name is misspelt ("Brumble" for Bramble). ``members`` are (name,
    kind); ``kinds`` every creature word known; ``others`` names and words that may
    appear beside the cast (helpers, places)."""

    members: tuple[tuple[str, str], ...]
    kinds: frozenset[str]
    others: frozenset[str] = frozenset()

    def reason(self, sentence: str) -> str | None:
        lowered = sentence.lower()
        names = {name.lower() for name, _kind in self.members} | {n.lower() for n in self.others}
        if self._kind_changed(lowered) or self._misspelt(sentence, names):
            return "cast"
        if self._renamed(lowered, names):
            return "cast"
        return None

    def _kind_changed(self, lowered: str) -> bool:
        kinds = "|".join(sorted(self.kinds))
        for name, kind in self.members:
            own = set(kind.lower().split())
            n = re.escape(name.lower())
            if re.search(rf"\b{n}['’]s\s+(?:[a-z]+\s+)?(?:{kinds})\b", lowered):
                return True  # "Puddle's quick otter", when Puddle is the otter
            said = re.search(rf"\b{n}\s+(?:was|is)\s+an?\s+(?:[a-z]+\s+)?([a-z]+)\b", lowered)
            if said and said.group(1) in self.kinds and said.group(1) not in own:
                return True  # "Pip was a tiny child", when Pip is a fox
            for pattern in (
                rf"\b{n}\s+the\s+([a-z]+)(?:\s+([a-z]+))?",
                rf"\bthe\s+([a-z]+)(?:\s+([a-z]+))?\s+{n}\b(?!['’]s)",
            ):
                for match in re.finditer(pattern, lowered):
                    if _DOING.search(lowered[: match.start()]):
                        # "gave Maple the fish", "ate the fish Hazel caught": a thing, not
                        # the character's kind
                        continue
                    found = {w for w in match.groups() if w}
                    if found & self.kinds and not found & own:
                        return True  # "the fish Pip", "Pip the owl"
        return False

    def _misspelt(self, sentence: str, names: set[str]) -> bool:
        """A name nearly but not quite a cast member's: "Brumble" for Bramble. A word that
        only opens the sentence ("Ferns grew", "Barely awake") is a name only when a verb
        in the past or a comma follows it; a name with an ending ("Ferns" for Fern) is a word."""
        for match in CAPITALISED.finditer(sentence):
            word = match.group().lower()
            if word in names or len(word) < 4:
                continue
            if _opens(sentence, match.start()) and not _PAST_VERB.match(sentence, match.end()):
                continue
            for member, _kind in self.members:
                name = member.lower()
                if _with_ending(word, name) or _with_ending(name, word):
                    continue
                if SequenceMatcher(None, word, name).ratio() >= 0.8:
                    return True
        return False

    def _renamed(self, lowered: str, names: set[str]) -> bool:
        """A cast member's kind given a name that is not theirs: "a fox named Rusty"."""
        kind_owner: dict[str, str | None] = {}
        for name, kind in self.members:
            word = kind.lower().split()[-1]
            kind_owner[word] = None if word in kind_owner else name.lower()
        for match in re.finditer(r"\b([a-z]+)\s+(?:named|called)\s+([a-z]+)", lowered):
            kind, name = match.groups()
            if kind_owner.get(kind) and name not in names:
                return True
        return False


_PAST = r"[a-z]+ed|gave|told|found|made|left|got|saw|held|had|took|dug"
# A verb just before a name: what follows the name is a thing done with, not its kind.
_DOING = re.compile(
    rf"\b(?:{_PAST}|give|gives|showed|show|brought|bring|threw|sent|lent|sold|fed|read|"
    r"bought|caught|ate|eat|chose|kept|drew|built|won|lost|fetch|cook|bake|pick|catch|chase|"
    r"find|see)\s+$"
)
# After a word that opens a sentence: a name when a verb in the past (or a comma) follows.
_PAST_VERB = re.compile(
    rf"\s*[,!?]|\s+(?:\w+ly\s+)?(?:{_PAST}|was|said|ran|felt|went|came|knew|thought|sat|"
    r"stood|heard|flew|swam|hid|woke|spoke|grinned|smiled|laughed|cried|shouted|whispered|"
    r"stomped|began|and|could|would|did)\b"
)
_ENDINGS = ("s", "es", "y", "ies", "ed", "ing", "ly", "er")


def _opens(sentence: str, at: int) -> bool:
    """Whether the word at ``at`` opens the sentence or a quotation in it."""
    before = sentence[:at].rstrip()
    return not before.strip("\"'“‘(") or before[-1] in '"“‘'


def _with_ending(word: str, stem: str) -> bool:
    return any(word == stem + end or word == stem[:-1] + end for end in _ENDINGS)


LONG_SENTENCE_WORDS = 45
"""Longer is a ramble (most often a speech that never ends), not a sentence a child follows."""


def loop_reason(sentence: str) -> str | None:
    tokens = words(sentence)
    if len(tokens) > LONG_SENTENCE_WORDS:
        return "long"
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
    if lowered.startswith(ECHO_OPENINGS) or " the reader" in lowered or "the listener" in lowered:
        return "echo"
    if CAST_LINE_ECHO.search(lowered):
        return "echo"  # "The rabbit (she) said hello": the cast line's form, copied
    if overlap(sentence, prompt_grams) >= 0.5:
        return "echo"
    return None


def sentence_reason(
    sentence: str, prompt_grams: set[tuple[str, ...]], cast: CastCheck | None = None
) -> str | None:
    """Why a sentence on its own is not fit to be heard (None: it is): every check that
    needs no other sentence of the story. The guards and the quality figures share it."""
    return (
        garbage_reason(sentence)
        or loop_reason(sentence)
        or echo_reason(sentence, prompt_grams)
        or lecture_reason(sentence)
        or form_reason(sentence)
        or (cast.reason(sentence) if cast is not None else None)
    )


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
    cast: CastCheck | None = None
    ahead: Callable[[str], bool] | None = None
    """Whether a sentence tells what the plan keeps for later (the treasure found before
    the climax): "ahead"."""
    repeats: Callable[[str, Sequence[str]], str | None] | None = None
    """Why a sentence is heard as a repeat of the last turns, or of the turn's sentences
    before it (passed as the second argument), though its words differ (a motif, a
    rehash), if it is."""
    accepted: list[str] = field(default_factory=list)
    given: int = 0
    """How many of the accepted sentences were given (``give``), not the model's."""
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

    def give(self, text: str) -> list[str]:
        """Whole sentences the turn begins with that the model did not write (the beat,
        told from the plan): judged only as sentences on their own (not as copies of the
        story: a plan rightly says its things again), then released like the model's."""
        splitter = SentenceSplitter()
        sentences = splitter.push(text + " ")
        released: list[str] = []
        for sentence in sentences:
            reason = sentence_reason(sentence, self._prompt_grams, self.cast)
            if reason is not None:
                self.reasons[reason] += 1
                self.last_rejected_sentence = sentence
                self.rejected, self.done = reason, True
                return released
            self.accepted.append(sentence)
            self.given += 1
            released.append(sentence)
        if len(self.accepted) >= self.target_sentences:
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
                before = " ".join(self.accepted)
                whole = close_quotes(tidy_quotes(sentence, before), before)
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
        reason = sentence_reason(sentence, self._prompt_grams, self.cast)
        if reason:
            return reason
        if self._repeats_this_turn(sentence):
            return "repeat"
        if self._is_stale(sentence):
            return "stale"
        if self.ahead is not None and self.ahead(sentence):
            return "ahead"
        if self.repeats is not None:
            return self.repeats(sentence, self.accepted)
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
        if not grams:
            return False
        shared = sum(1 for gram in grams if gram in self._story_grams)
        return shared / len(grams) >= self.stale_overlap

    @property
    def text(self) -> str:
        return " ".join(self.accepted)
