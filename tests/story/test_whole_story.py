"""The told story's figures, on crafted stories whose faults a reader would see."""

from __future__ import annotations

import pytest

from appliance.story.guards import CastCheck
from appliance.story.whole_story import (
    RepeatCheck,
    beat_followed,
    echo3,
    foreign_turns,
    lecture_share,
    motif_max,
    rehash_share,
    same_start,
    story_figures,
)

CAST = CastCheck(
    members=(("Pip", "fox"), ("Hazel", "mouse")),
    kinds=frozenset({"fox", "mouse", "fish"}),
)
NAMES = frozenset({"pip", "hazel", "fox", "mouse"})

# The same things in new words, turn after turn: a warm light, a friend, the pond.
RAMBLE = [
    "Then a kind friend approached and laughed with Pip by the pond.",
    "A warm light caught Pip's eye, and a kind friend approached the pond.",
    "Then a warm light glowed, and the kind friend laughed beside the pond.",
    "A kind friend approached again, and the warm light shone on the pond.",
]
# Something new happens every turn.
PLOT = [
    "Pip packed a snack and set off towards Willow Bridge.",
    "A fallen tree blocked the path, so Hazel squeezed underneath it.",
    '"Look!" cried Hazel, pointing at a silver acorn in the moss.',
    "They carried it home and ate supper by the fire.",
]


def test_echoes_of_the_last_turns_are_counted() -> None:
    assert echo3(RAMBLE, NAMES) > 0.6
    assert echo3(PLOT, NAMES) < 0.2


def test_an_echo_is_of_the_three_turns_before_only() -> None:
    far = [RAMBLE[0], *PLOT[:3], RAMBLE[0]]  # the ramble's words last stood four turns back
    near = [PLOT[0], PLOT[1], RAMBLE[0], PLOT[2], RAMBLE[0]]  # two turns back
    last_far, last_near = echo3(far, NAMES), echo3(near, NAMES)
    assert echo3(far[:-1], NAMES) * 3 / 4 == pytest.approx(last_far)  # the fifth adds 0
    assert last_near > last_far
    three = [RAMBLE[0], PLOT[0], PLOT[1], RAMBLE[0]]  # three turns back: still an echo
    assert echo3(three, NAMES) > echo3(three[:-1], NAMES) * 2 / 3


def test_a_motif_that_keeps_coming_back_is_counted() -> None:
    rate, pair = motif_max(RAMBLE, NAMES)
    assert rate == 10.0 and pair is not None  # in every turn: 10 per 10 turns
    assert motif_max(PLOT, NAMES)[0] == 2.5  # each pair once in 4 turns
    # Once a turn through one episode, never elsewhere: rare in 60 turns, but it fills ten.
    filler = "The next thing happened when the sun began to set."
    story = [f"Hazel met {chr(97 + n % 26)}{chr(97 + n // 26)}zy." for n in range(50)]
    story[20:30] = [f"{PLOT[n % 4]} {filler}" for n in range(10)]
    rate, pair = motif_max(story, NAMES)
    assert rate == 10.0 and pair is not None and set(pair) <= {"sun", "began", "set"}


def test_same_openings_are_counted() -> None:
    assert same_start(RAMBLE) == 1 / 3  # the third turn opens "Then a", as the first did
    assert same_start(PLOT) == 0.0


def test_lectures_are_counted_per_sentence() -> None:
    preachy = ["Pip ran home. He learned about the importance of sharing.", "Hazel waved."]
    assert lecture_share(preachy) == 1 / 3
    assert lecture_share(PLOT) == 0.0


def test_a_beat_is_followed_when_the_turn_tells_it() -> None:
    beat = "a fallen tree blocked the path at Willow Bridge"
    assert beat_followed(PLOT[1], beat, NAMES)
    assert not beat_followed(RAMBLE[0], beat, NAMES)
    assert not beat_followed("A big tree stood there.", beat, NAMES)  # one word: not enough
    assert beat_followed("A tree had fallen.", "a fallen tree", NAMES)
    assert beat_followed("The tree blocked the way.", beat, NAMES)  # two words are enough


def test_turns_with_foreign_letters_are_counted() -> None:
    assert foreign_turns([*PLOT, "Pip hugged his朋友.", "Such как this.", "Zoë waved."]) == 2
    assert foreign_turns(["Pip hugged his朋友 and said как."]) == 1  # turns, not words


def test_the_whole_story_figures() -> None:
    turns = [
        (PLOT[0], {"kind": "setup", "episode": 1, "text": "Pip set off towards Willow Bridge"}),
        (PLOT[1], {"kind": "trouble", "episode": 1, "text": "a fallen tree blocked the path"}),
        (PLOT[3], {"kind": "ending", "episode": 1, "text": "they carried it home for supper"}),
        (
            "Then the fish pip began hiking home.",
            {"kind": "setup", "episode": 2, "text": "a lantern glowed by the window"},
        ),
    ]
    figures = story_figures(turns, CAST, "Pip", NAMES)
    assert figures.episodes_begun == 2 and figures.episodes_ended == 1
    assert not figures.cast_kept
    assert figures.cast_problems == ["Then the fish pip began hiking home."]
    assert figures.foreign == 0 and figures.lecture == 0.0
    assert figures.beats_followed == 0.75
    kept = story_figures(turns[:3], CAST, "Pip", NAMES)
    assert kept.cast_kept and kept.episodes_ended == kept.episodes_begun == 1
    # A hero who never appears in an episode is not kept either.
    gone = story_figures([(PLOT[1], {"kind": "setup", "episode": 1})], CAST, "Pip", NAMES)
    assert not gone.cast_kept


def test_a_sentence_said_again_in_other_words_is_a_rehash() -> None:
    story = [
        '"Hey Moss! You look very cute, and you are super hungry!"',
        "Moss found a shiny pebble by the gate.",
    ]
    # Every content word of it stood in one sentence before (hey, moss, look, cute, hungry).
    again = '"Hey Moss! You look so cute, and you are hungry!"'
    assert rehash_share([*story, again], NAMES) == pytest.approx(1 / 3)
    assert rehash_share([*story, PLOT[1]], NAMES) == 0.0
    # Ten turns later it is new again; a short sentence is never a rehash.
    filler = [f"Hazel met {chr(97 + n)}zy." for n in range(10)]
    assert rehash_share([story[0], *filler, again], NAMES) == 0.0
    assert rehash_share(["Pip ate a cake.", "Pip ate a cake."], NAMES) == 0.0


def test_the_repeat_check_catches_a_motif_or_a_rehash_from_the_last_ten_turns() -> None:
    check = RepeatCheck(RAMBLE[:2], NAMES)
    assert check("Later a kind friend waved from the hill.") == "motif"  # in 2 of the turns
    assert check("A warm light shone.") is None  # "warm light" stood in only one
    assert check(PLOT[1]) is None
    rehash = RepeatCheck(["Pip saw that the silver river sparkled under the morning sun."], NAMES)
    assert rehash("The morning sun made the silver river sparkle for Pip.") == "rehash"
    assert rehash("The silver river was cold.") is None
    # The words a story rightly says again (here: the goal's) are no motif.
    goal = RepeatCheck(["The strange noise woke them.", "The strange noise came back."], NAMES)
    assert goal("The strange noise grew louder.") == "motif"
    excluded = RepeatCheck(
        ["The strange noise woke them.", "The strange noise came back."],
        NAMES | {"strange", "noise"},
    )
    assert excluded("The strange noise grew louder.") is None


def test_a_rehash_is_three_quarters_of_one_sentences_content_words() -> None:
    before = ["The silver river sparkled under the morning sun."]  # silver river sparkl morning
    check = RepeatCheck(before, NAMES)
    assert check("Pip saw the silver river sparkle at morning tea.") is None  # 4 of 6
    three_of_four = RepeatCheck(["The silver river sparkled."], NAMES)
    assert three_of_four("The silver river sparkled by the mill.") == "rehash"  # 3 of 4
    assert three_of_four("The silver cat sat by the mill.") is None  # 1 of 4
    assert RepeatCheck(["The silver river sparkled."], NAMES)("A silver river sparkled.") is None
    # Spread over two earlier sentences is no rehash of one.
    spread = RepeatCheck(["The silver river ran. The wind sparkled and howled."], NAMES)
    assert spread("The silver river sparkled and howled.") is None
    # Ten turns back and older is forgotten; excluded words are never counted.
    old = ["The silver river sparkled in the morning.", *[f"Pip met {c}zy." for c in "abcdefghij"]]
    assert RepeatCheck(old, NAMES)("The silver river sparkled in the morning light.") is None
    fox = RepeatCheck(["Pip the fox met Hazel the mouse."], NAMES)
    assert fox("Hazel the mouse met Pip the fox.") is None


def test_a_sentence_that_says_the_turns_own_beat_again_is_a_rehash() -> None:
    beat = "The mother duck swam over, and the duckling rushed to her at the pond."
    again = "The mother duck swam over, and the ducklings rushed to her."
    assert RepeatCheck([], NAMES)(again, [beat]) == "rehash"
    assert RepeatCheck([], NAMES)(again) is None  # nothing before it: new
    assert RepeatCheck([], NAMES)("Everyone cheered and splashed about.", [beat]) is None
    assert rehash_share([f"{beat} {again}"], NAMES) == 0.5
    assert rehash_share([f"{beat} Everyone cheered and splashed about."], NAMES) == 0.0
    # The goal's things are free across turns but not within one: an episode about finding
    # the duckling's mother rightly names her every turn, never twice in one breath.
    goal = NAMES | {"mother", "duck", "ducks", "duckling", "ducklings"}
    assert RepeatCheck([beat], goal)(again) is None  # another turn: free
    assert RepeatCheck([], goal, NAMES)(again, [beat]) == "rehash"
    assert rehash_share([beat, again], goal, NAMES) == 0.0
    assert rehash_share([f"{beat} {again}"], goal, NAMES) == 0.5
    assert rehash_share([f"{beat} {again}"], goal) == 0.0  # by default as wide as ``exclude``


def test_a_motif_ten_turns_back_is_forgotten() -> None:
    story = [*RAMBLE[:2], *[f"Pip met {c}zy." for c in "abcdefghij"]]
    assert RepeatCheck(story, NAMES)("Later a kind friend waved.") is None


def test_an_exact_tie_between_motifs_is_settled_the_same_way_every_run() -> None:
    story = ["Red apples and green pears.", "Red apples and green pears."]
    assert motif_max(story, NAMES) == (10.0, ("apples", "green"))


def test_the_whole_story_figures_count_rehashes() -> None:
    turns = [
        ("The silver river sparkled under the morning sun.", {"kind": "setup", "episode": 1}),
        ("The morning sun made the silver river sparkle.", {"kind": "go", "episode": 1}),
    ]
    assert story_figures(turns, CAST, "Pip", NAMES).rehash == 0.5
