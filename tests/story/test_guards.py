from __future__ import annotations

import pytest

from appliance.story.guards import (
    SentenceSplitter,
    TurnAssembler,
    close_quotes,
    cut_at_marker,
    echo_reason,
    garbage_reason,
    loop_reason,
    ngrams,
    words,
)

INSTRUCTION = "The reader looks sad: bring comfort or hope."
RULES = "Rules: write in English, in the past tense. Never repeat what was already told."


def assemble(text: str, target: int = 3, story: tuple[str, ...] = (), by: int = 3) -> TurnAssembler:
    """Feed ``text`` in small pieces, as a model would stream it."""
    assembler = TurnAssembler(
        prompt_texts=(RULES, INSTRUCTION), target_sentences=target, story_texts=story
    )
    for start in range(0, len(text), by):
        assembler.feed(text[start : start + by])
        if assembler.done:
            break
    assembler.finish()
    return assembler


def test_sentences_are_released_whole() -> None:
    splitter = SentenceSplitter()
    out = []
    for piece in ["Pip r", "an. He", " smiled! Mr. Owl", ' said "hi." Then', " he"]:
        out += splitter.push(piece)
    assert out == ["Pip ran.", "He smiled!", 'Mr. Owl said "hi."']
    assert splitter.finish() == (None, "Then he")


def test_a_last_sentence_at_the_very_end_counts() -> None:
    splitter = SentenceSplitter()
    assert splitter.push("The end.") == []
    assert splitter.finish() == ("The end.", "")


def test_chat_markers_and_role_lines_cut_the_text() -> None:
    assert cut_at_marker("Pip ran.<|im_end|>\n<|im_start|>user") == ("Pip ran.", True)
    assert cut_at_marker("Pip ran.\nUser: what next?") == ("Pip ran.", True)
    assert cut_at_marker("Pip ran home.") == ("Pip ran home.", False)


@pytest.mark.parametrize(
    ("sentence", "reason"),
    [
        ("def main(): return {'x': 1} # code", "garbage"),
        ("Der kleine Fuchs lief schnell durch den dunklen Wald.", "language"),
        ("Le petit renard a trouvé une rivière très élégante et très célèbre là-bas.", "language"),
        ("!!!! ???? .... ;;;;", "empty"),
        ("The fox ran home to his mother.", None),
        ("Zoë waved at the fox from the bridge.", None),
    ],
)
def test_garbage_and_other_languages(sentence: str, reason: str | None) -> None:
    assert garbage_reason(sentence) == reason


@pytest.mark.parametrize(
    ("sentence", "looping"),
    [
        ("The fox ran and ran and ran and ran and ran and ran.", True),
        ("Pip Pip Pip Pip went the bird.", True),
        ("Pip ran, and the river ran beside him, and the wind ran ahead.", False),
    ],
)
def test_loops_within_a_sentence(sentence: str, looping: bool) -> None:
    assert (loop_reason(sentence) == "loop") is looping


@pytest.mark.parametrize(
    "sentence",
    [
        "The reader looks sad, so the story brings comfort.",
        "Sure, here is the next part of the story.",
        "Bring comfort or hope to the reader now.",
        "Write in English, in the past tense, and never repeat.",
    ],
)
def test_instruction_echo(sentence: str) -> None:
    grams = set(ngrams(words(INSTRUCTION + " " + RULES)))
    assert echo_reason(sentence, grams) == "echo"


def test_story_text_is_not_echo() -> None:
    grams = set(ngrams(words(INSTRUCTION + " " + RULES)))
    assert echo_reason("A warm light shone from the window of the mill.", grams) is None


def test_a_good_turn_passes_and_stops_at_the_target() -> None:
    text = "Pip found a lantern. It glowed softly. He smiled at it. Then he slept. And more"
    assembler = assemble(text, target=3)
    assert assembler.accepted == ["Pip found a lantern.", "It glowed softly.", "He smiled at it."]
    assert assembler.rejected is None
    assert assembler.done


def test_a_bad_first_sentence_rejects_the_turn() -> None:
    assembler = assemble("Sure, here is the story. Pip ran home.")
    assert assembler.accepted == []
    assert assembler.rejected == "echo"


def test_a_bad_later_sentence_ends_the_turn_before_it() -> None:
    assembler = assemble("Pip found a lantern. <|im_start|>user\nwrite more")
    assert assembler.accepted == ["Pip found a lantern."]
    assert assembler.reasons["marker"] == 1


def test_a_repeated_sentence_ends_the_turn() -> None:
    assembler = assemble("Pip found a lantern by the river. Pip found a lantern by the river.")
    assert assembler.accepted == ["Pip found a lantern by the river."]
    assert assembler.reasons["repeat"] == 1


def test_a_sentence_copied_from_earlier_turns_is_stale() -> None:
    story = ("The old owl told Pip that the river began beyond the silver hills.",)
    assembler = assemble(
        "The old owl told Pip that the river began beyond the silver hills.", story=story
    )
    assert assembler.rejected == "stale"


def test_the_trailing_fragment_is_never_released() -> None:
    assembler = assemble("Pip found a lantern. It glowed and")
    assert assembler.accepted == ["Pip found a lantern."]
    assert assembler.reasons["fragment"] == 1


def test_a_turn_that_is_only_a_fragment_is_rejected() -> None:
    assembler = assemble("Pip found a lantern that")
    assert assembler.accepted == []
    assert assembler.rejected == "fragment"


def test_an_unclosed_quotation_is_closed() -> None:
    assert close_quotes('He said, "I am a little fox.') == 'He said, "I am a little fox."'
    assert close_quotes('He said, "Hi." Then left.') == 'He said, "Hi." Then left.'
    assert close_quotes("She said, “Look.") == "She said, “Look.”"


def test_a_quotation_is_not_split_into_sentences() -> None:
    splitter = SentenceSplitter()
    out = splitter.push('"Hello, Pip! I am here to help," he said. Then he left. ')
    assert out == ['"Hello, Pip! I am here to help," he said.', "Then he left."]
    out = SentenceSplitter().push("“Look! A boat,” she said. Pip ran. ")
    assert out == ["“Look! A boat,” she said.", "Pip ran."]


@pytest.mark.parametrize(
    ("sentence", "reason"),
    [
        ("Pip made a list of things: 1.", "list"),
        ("- Pip ran home.", "list"),
        ("Then 10feet of snow fell.", "garbage"),
        ("Hidden behind 100% of the trees was a pond.", "garbage"),
        ('"That\'s me."', None),
    ],
)
def test_lists_glued_numbers_and_short_quotes(sentence: str, reason: str | None) -> None:
    assert garbage_reason(sentence) == reason


def test_runs_wholly_inside_the_given_opener_do_not_make_a_sentence_stale() -> None:
    opener = "All of a sudden, a warm"
    earlier = f"{opener} breeze carried the smell of pine over the hill."
    fresh = f"{opener} lantern glowed beside the sleepy river bend."
    given = TurnAssembler(
        prompt_texts=(), target_sentences=3, story_texts=(earlier,), opener=opener
    )
    assert given.feed(fresh + " Then ") == [fresh]
    # The same sentence, when nobody gave it those words, is mostly a copy.
    not_given = TurnAssembler(prompt_texts=(), target_sentences=3, story_texts=(earlier,))
    assert not_given.feed(fresh + " Then ") == []
    assert not_given.rejected == "stale"


def test_runs_reaching_past_the_opener_still_count() -> None:
    opener = "Then a kind"
    earlier = f"{opener} friend arrived at the edge of the forest."
    copied = f"{opener} friend arrived at the edge of the lake."
    assembler = TurnAssembler(
        prompt_texts=(), target_sentences=3, story_texts=(earlier,), opener=opener
    )
    assert assembler.feed(copied + " Then ") == []
    assert assembler.rejected == "stale"
