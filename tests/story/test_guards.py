from __future__ import annotations

import pytest

from appliance.story.guards import (
    CastCheck,
    SentenceSplitter,
    TurnAssembler,
    close_quotes,
    cut_at_marker,
    echo_reason,
    foreign_letters,
    form_reason,
    garbage_reason,
    lecture_reason,
    loop_reason,
    ngrams,
    tidy_quotes,
    words,
)
from appliance.story.whole_story import RepeatCheck

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
        ("Conker's tummy rumbled louder than thunder!", None),  # short, and English
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


@pytest.mark.parametrize(
    ("sentence", "lecture"),
    [
        ("They learned about the importance of compassion.", True),
        ("Pip learned that friendship is the greatest treasure of all.", True),
        ("It was important for being kind to others in a world of meaning.", True),
        ("Kindness is what matters most in life.", True),
        ("And the lesson of the day was to always share.", True),
        ("It was good for their mental health and wellbeing.", True),
        ("This was a funny revelation in the episode.", True),
        ("Pip learned to whistle by copying the blackbird.", False),
        ('"Look, a door!" said Hazel, pointing at the roots.', False),
        ("Pip remembered the way home by the red stones.", False),
        ("They learned that the bridge was broken.", False),
        ("He remembered that he had left his hat by the gate.", False),
        ("Pip wanted to learn how to swim.", False),
        ("Love was all around them.", False),
        ("Hazel learned that everyone was asleep.", False),
        ("Courage was what Pip needed now.", False),
        ("Patience was not Pip's strong point.", False),
        ("Hazel taught him how to whistle.", False),
        ("In the end, friendship was the greatest treasure of all.", True),
        ("Love was the greatest gift of all.", True),
        ("After all, friendship is what matters.", True),
        ("Real friendship means sticking together.", True),
        ("Pip learned what friendship means.", True),
        ("Friendship, Pip realised, is the greatest gift.", True),
        ("Being kind is the most important thing.", True),
    ],
)
def test_lectures_are_caught(sentence: str, lecture: bool) -> None:
    assert (lecture_reason(sentence) == "lecture") is lecture


@pytest.mark.parametrize(
    ("sentence", "reason"),
    [
        ("Bramble: Let's go to the hill!", "script"),
        ('Hazel Mouse: "Wait for me!"', "script"),
        ('"Wait for me!" called Hazel.', None),
        ('Pip said: "Follow me."', None),
        ("Inside: a tiny door with a golden knob.", None),
        ("Dear Pip: Come home soon.", None),
        ("Suddenly: A loud crash shook the den.", None),
        ("Bramble: let's go!", "script"),
        ("Pip (excited): Look!", "script"),
        ("Pip is walking to the river.", "tense"),
        ("They go to the pond and look for frogs.", "tense"),
        ("There is a door in the tree.", "tense"),
        ('"The river is over there," said Pip.', None),  # present tense inside a quote
        ("Pip walked to the river and looked for frogs.", None),
    ],
)
def test_script_dialogue_and_tense_flips_are_caught(sentence: str, reason: str | None) -> None:
    assert form_reason(sentence) == reason


@pytest.mark.parametrize(
    ("sentence", "foreign"),
    [
        ("Pip hugged his朋友 tightly.", True),
        ("They looked at such как the importance.", True),
        ("Zoë waved from the café.", False),
        ("Pip waved from the bridge.", False),
    ],
)
def test_one_letter_outside_the_script_is_enough(sentence: str, foreign: bool) -> None:
    assert foreign_letters(sentence) is foreign
    assert (garbage_reason(sentence) == "language") is foreign


CAST = CastCheck(
    members=(("Pip", "fox"), ("Hazel", "mouse"), ("Bramble", "badger"), ("Fern", "hedgehog")),
    kinds=frozenset({"fox", "mouse", "badger", "fish", "owl", "rabbit", "child", "hedgehog"}),
    others=frozenset({"Sage", "Willow", "Bridge"}),
)


@pytest.mark.parametrize(
    ("sentence", "kept"),
    [
        ("Then the fish pip began hiking back home.", False),  # the fox became a fish
        ("Pip the owl flew over the hill.", False),
        ("A fox named Rusty ran to the river.", False),  # the hero renamed
        ("Brumble stomped across the bridge.", False),  # a name misspelt
        ("Hazel's quick mouse ran ahead.", False),
        ("Pip the fox waved at Hazel the mouse.", True),
        ("The little fox Pip smiled at the old tortoise named Sage.", True),
        ("Bramble gave the mouse Pip's scarf.", True),
        ("Bramble gave Hazel the fish.", True),  # two objects, not "Hazel the fish"
        ("Hazel the fish swam off.", False),
        ("Pip hid among the Ferns.", True),  # a name with an ending is a word
        ("Bramley apples hung from the tree.", True),  # opens the sentence, no verb after
        ('"Bramley apples for supper," said Hazel.', True),  # opens a quotation
        ("Brumble began to dig a hole.", False),
        ("Brumble and Pip ran home.", False),
        ("Pip chased the fish Hazel had caught.", True),
        ("Bramble cooked Hazel the fish for supper.", True),
        ("Hazel waved to Pip the owl.", False),
        ('"Brumble," Hazel whispered.', False),
        ("Then Pip followed Hazle home.", False),
        ("They crossed Willow Bridge in the rain.", True),
    ],
)
def test_the_cast_stays_itself(sentence: str, kept: bool) -> None:
    assert (CAST.reason(sentence) is None) is kept


def test_a_turn_with_a_drifting_cast_or_a_lecture_ends_before_it() -> None:
    assembler = TurnAssembler(prompt_texts=(RULES,), target_sentences=3, cast=CAST)
    good = "Pip ran to the river."
    assembler.feed(good + " Then the fish pip swam away. More")
    assert assembler.accepted == [good] and assembler.reasons["cast"] == 1 and assembler.done
    lecturing = assemble("They learned about the importance of sharing. Pip smiled. ")
    assert lecturing.rejected == "lecture" and lecturing.accepted == []


@pytest.mark.parametrize(
    ("sentence", "reason"),
    [
        ("They walked to the Vegetable_patch.", "garbage"),
        ("Pip found the silver/acorn.", "garbage"),
        ("Bramble && Nutmeg went to the pond.", "garbage"),
        ("A.", "empty"),
        (
            "Pip ran past the mill, over the bridge, along the wall, under the oak, around "
            "the pond, through the gate, across the field, beside the hedge, into the wood, "
            "up the hill, down the lane, past the barn, over the stile, by the stream and "
            "home again at last.",
            "long",
        ),
    ],
)
def test_code_habits_stray_letters_and_rambles(sentence: str, reason: str) -> None:
    assert (garbage_reason(sentence) or loop_reason(sentence)) == reason


@pytest.mark.parametrize(
    ("sentence", "reason"),
    [
        ("The story ends with Clover whispering goodbye.", "commentary"),
        ("It's like when you can't find your treasure.", "commentary"),
        ("They set off, changing their tone to fresh and enjoyable.", "commentary"),
        ('"It\'s like a dream!" said Hazel.', None),  # a character may say it
        ("Hazel spoke in a soft tone.", None),
        ("Pip heard the tone of his small voice.", None),
        ("Hazel's tone was sharp.", None),
        ("The tone of the day changed.", "commentary"),
        ("Pip told the story of the old mill.", "commentary"),
    ],
)
def test_commentary_on_the_story_is_caught(sentence: str, reason: str | None) -> None:
    assert form_reason(sentence) == reason


def test_a_character_said_to_be_another_kind_is_caught() -> None:
    assert CAST.reason("Pip was a tiny child, and he did not know what to do.") == "cast"
    assert CAST.reason("Pip was a clever fox.") is None
    assert CAST.reason("Pip was a little tired.") is None


@pytest.mark.parametrize(
    ("sentence", "reason"),
    [
        ("We were at the beach, and a deer offered to bake a cake.", "person"),
        ('"We are lost!" cried Hazel.', None),  # a character may say "we"
        ('"Dotty saw the duckling. He called out to her," Thistle said.', "dialogue"),
        ("\"Sorrel said, 'Thistle is so brave,' Thistle said.\"", "dialogue"),
        ('"Look at the stars!" Dotty said, and Thistle laughed.', None),
        ('"Who called me?" asked Clover.', None),  # a question, not a tag in the quote
        ('"She called me a scaredy-cat!" cried Pip.', None),  # reported speech is speech
        ('"Bramble said you were lost," Hazel whispered.', None),
        ('"Run home, said Pip, run!"', "dialogue"),
        ('"Pip ran. she called to him," Hazel said.', "dialogue"),
        ("‘We are lost,’ said Pip.", None),  # curly single quotes are quotes
        ("‘Pip’s hat is gone, we must find it,’ said Hazel.", None),
        ("We walked home, and ‘our’ was the word.", "person"),
    ],
)
def test_first_person_narration_and_broken_dialogue_are_caught(
    sentence: str, reason: str | None
) -> None:
    assert form_reason(sentence) == reason


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ("Hazel: Let's go to the hill!", "script"),
        ("Pip is walking to the river.", "tense"),
        ("We were at the beach with Hazel.", "person"),
        ("The story ends with Hazel asleep.", "commentary"),
        ('"Pip ran home. He called to Hazel," Bramble said.', "dialogue"),
    ],
)
def test_a_turn_stops_before_a_sentence_in_the_wrong_form(bad: str, reason: str) -> None:
    good = "Pip ran to the river."
    later = assemble(f"{good} {bad} Hazel waved. ")
    assert later.accepted == [good] and later.reasons[reason] == 1 and later.done
    first = assemble(f"{bad} {good} ")
    assert first.rejected == reason and first.accepted == []


@pytest.mark.parametrize(
    ("sentence", "echo"),
    [
        ("One line on what they all had, then Moss joined them.", True),
        ("Change the temperature to funny.", True),
        ("When it was time, Conker's eyes lit up.", False),
        ("The sun was warm, and Hazel was gentle with the bird.", False),
    ],
)
def test_tone_words_and_instructions_echoed_are_caught(sentence: str, echo: bool) -> None:
    assert (echo_reason(sentence, set()) == "echo") is echo


def test_the_beat_given_from_the_plan_is_judged_as_a_sentence_not_as_a_copy() -> None:
    beat = "A fallen tree blocked the path at Willow Bridge."
    story = (f"{beat} They climbed over it.",)  # told before: a copy, were it the model's
    assembler = TurnAssembler(
        prompt_texts=(RULES,), target_sentences=3, story_texts=story, repeats=lambda s, turn: None
    )
    assert assembler.give(beat) == [beat]
    assert assembler.feed(f" {beat} Pip ") == []  # the model saying it again is a repeat
    assert assembler.reasons["repeat"] == 1 and assembler.text == beat and assembler.done
    # A given sentence is still no lecture, script line or foreign text.
    preachy = TurnAssembler(prompt_texts=(RULES,), target_sentences=3)
    assert preachy.give("Pip learned the importance of friendship.") == []
    assert preachy.rejected == "lecture" and preachy.done


def test_the_model_saying_its_beat_again_in_other_words_is_a_rehash() -> None:
    # The 0.5B, verbatim: the beat, then the beat again with one word changed (half its
    # 4-word runs: not "repeat"). The real repeat check hears it; the turn is the beat.
    beat = (
        "A loud quack rang out at the Compost Heap: the mother duck swam over, "
        "and the duckling rushed to her."
    )
    assembler = TurnAssembler(
        prompt_texts=(RULES,),
        target_sentences=3,
        repeats=RepeatCheck([], frozenset({"compost", "heap"})),
    )
    assert assembler.give(beat) == [beat]
    assert assembler.feed(" The mother duck swam over, and the ducklings rushed to her. ") == []
    assert assembler.reasons["rehash"] == 1 and assembler.text == beat and assembler.done
    # What follows the beat in new words passes.
    fresh = TurnAssembler(prompt_texts=(RULES,), target_sentences=3, repeats=RepeatCheck([]))
    fresh.give(beat)
    assert fresh.feed(" Everyone cheered and splashed in the water. ") == [
        "Everyone cheered and splashed in the water."
    ]


def test_a_sentence_heard_again_in_other_words_ends_the_turn() -> None:
    assembler = TurnAssembler(
        prompt_texts=(RULES,),
        target_sentences=3,
        repeats=lambda s, turn: "rehash" if "amazing" in s else None,
    )
    released = assembler.feed("Pip ran to the gate. You look amazing. Then ")
    assert released == ["Pip ran to the gate."] and assembler.reasons["rehash"] == 1


@pytest.mark.parametrize(
    ("sentence", "tidy"),
    [
        (
            '"Let\'s try something new, Poppy! " Conker said.',
            '"Let\'s try something new, Poppy!" Conker said.',
        ),
        ('"Oh no! ", she said.', '"Oh no!" she said.'),
        ('" Hello, " said Pip.', '"Hello," said Pip.'),
        ("“ Look! ” cried Hazel.", "“Look!” cried Hazel."),
        ('Pip said "Hi!" and waved.', 'Pip said "Hi!" and waved.'),
        ("It's Pip's hat.", "It's Pip's hat."),
    ],
)
def test_quotation_marks_sit_where_a_reader_expects(sentence: str, tidy: str) -> None:
    assert tidy_quotes(sentence) == tidy


def test_a_quote_that_opened_in_an_earlier_sentence_is_closed_tidily() -> None:
    assert tidy_quotes('we go! " said Pip.', before='"Come on,') == 'we go!" said Pip.'


@pytest.mark.parametrize(
    ("sentence", "reason"),
    [
        ("\"The rabbit said hello to Conker. 'Hey, Conker! I'm here!'\"", "dialogue"),
        ('"Wait for me," said Pip. "We\'ll go together."', None),
        ("\"Follow the sign: 'Blue stones'\", said Pip.", None),
    ],
)
def test_a_quotation_inside_a_quotation_after_narration_is_caught(
    sentence: str, reason: str | None
) -> None:
    assert form_reason(sentence) == reason


def test_the_cast_line_copied_into_the_story_is_echo() -> None:
    assert echo_reason("The rabbit (she) said hello to Conker.", set()) == "echo"
    assert echo_reason("The rabbit (a shy one) said hello.", set()) is None


@pytest.mark.parametrize(
    ("sentence", "lecture"),
    [
        ("We learned so much about duck parenting.", True),
        ("They learned a lot that day.", True),
        ("Pip learned to whistle.", False),
    ],
)
def test_what_was_learned_is_a_lecture(sentence: str, lecture: bool) -> None:
    assert (lecture_reason(sentence) is not None) is lecture


def test_a_given_beat_is_never_judged_a_repeat_and_counts_toward_the_turn() -> None:
    beat = "A fallen tree blocked the path."
    assembler = TurnAssembler(
        prompt_texts=(RULES,), target_sentences=2, repeats=lambda s, turn: "motif"
    )
    assert assembler.give(f"Pip wanted the acorn. {beat}") == ["Pip wanted the acorn.", beat]
    assert assembler.given == 2 and assembler.done  # the cap of two is reached


def test_the_assembler_tidies_the_quotation_marks_it_releases() -> None:
    assembler = TurnAssembler(prompt_texts=(RULES,), target_sentences=3)
    assert assembler.feed('"Oh no! ", she said. "Yes? ", asked Pip. Then ') == [
        '"Oh no!" she said.',
        '"Yes?" asked Pip.',
    ]


def test_a_sentence_that_tells_what_the_plan_keeps_for_later_ends_the_turn() -> None:
    assembler = TurnAssembler(
        prompt_texts=(RULES,), target_sentences=3, ahead=lambda s: "acorn" in s
    )
    assert assembler.feed("Pip ran on. They found the acorn. Then ") == ["Pip ran on."]
    assert assembler.reasons["ahead"] == 1 and assembler.done
