"""The story is what was heard: sentences a mood shift skipped before anyone heard them
(with speech off: before the reader began them) leave the stored story, the page and the
model's context alike."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from appliance.daemon import Appliance
from appliance.speech import Narrator, SpeechSettings
from tests.appliance_run.conftest import HAPPY, SAD, appliance_settings, replay_dir
from tests.speech.fake_speech import SlowEngine
from tests.speech.test_flow import ClockSpeaker
from tests.sse_client import SSEClient
from tests.story.conftest import smol_story

WATCH_S = 120.0


def run_until_unsaid(appliance: Appliance) -> tuple[list[dict[str, object]], dict[str, object]]:
    """Run until a shift has taken sentences out; the page's events and the stored story."""
    appliance.start()
    try:
        base = f"http://127.0.0.1:{appliance.port}"
        client = SSEClient(base + "/api/events")
        client.start()
        try:
            client.connected.wait(10)
            events = client.wait_for(
                lambda seen: any(e.kind == "unsaid" for e in seen), timeout=WATCH_S
            )
            # The next turn (the answer) is told with the context as it is now.
            told = appliance.teller.turn_count
            deadline = time.monotonic() + 30
            while appliance.teller.turn_count <= told and time.monotonic() < deadline:
                time.sleep(0.1)
            story = httpx.get(base + "/api/story", timeout=10).json()
        finally:
            client.close()
    finally:
        appliance.shutdown()
    return [e.data for e in events if e.kind == "unsaid"], story


def assert_what_was_heard(
    appliance: Appliance, unsaid: list[dict[str, object]], story: dict[str, object]
) -> None:
    assert unsaid, "a shift skipped sentences"
    turns = story["turns"]
    assert isinstance(turns, list)
    stored = {int(t["idx"]): str(t["text"]) for t in turns}
    context = [turn.text for turn in appliance.teller.context.turns]
    for change in unsaid:
        turn = int(str(change["turn"]))
        sentences = change["sentences"]
        assert isinstance(sentences, list)
        gone = [str(s["text"]) for s in sentences if not s["heard"]]
        kept = " ".join(str(s["text"]) for s in sentences if s["heard"])
        assert gone and change["text"] == kept
        if kept:
            # On disk, on the page (the page reads /api/story) and in the model: the same.
            assert stored[turn] == kept == context[turn]
        for sentence in gone:
            assert all(sentence not in text for text in stored.values())
            assert all(sentence not in text for text in context)
    # Every stored turn is what the model's context holds.
    assert [stored[i] for i in sorted(stored)] == context[: len(stored)]


def test_a_text_only_reader_keeps_what_they_began_to_read(tmp_path: Path) -> None:
    frames = replay_dir(tmp_path, HAPPY, SAD)
    settings = appliance_settings(
        tmp_path,
        frames,
        seconds_per_image=4.0,
        # A slow reader (40 words a minute) is still reading the last turn at each shift.
        story=smol_story(reading_wpm=40, sentences_per_turn=3),
        speech={"output": "none", "max_ahead_s": 20.0},
    )
    appliance = Appliance(settings)
    unsaid, story = run_until_unsaid(appliance)
    assert_what_was_heard(appliance, unsaid, story)


def test_a_listener_keeps_what_the_narrator_spoke(tmp_path: Path) -> None:
    frames = replay_dir(tmp_path, HAPPY, SAD)
    speech = SpeechSettings(max_ahead_s=20.0)
    # A speaker that plays in real time, and a voice whose sentences last 3 s each: at a
    # shift, the rest of the last turn is still waiting to be spoken.
    narrator = Narrator(SlowEngine(0.05, audio_s=3.0), ClockSpeaker(), speech).start()
    settings = appliance_settings(
        tmp_path,
        frames,
        seconds_per_image=4.0,
        story=smol_story(reading_wpm=0, sentences_per_turn=3),
        speech=speech.model_dump(),
    )
    appliance = Appliance(settings, narrator=narrator)
    unsaid, story = run_until_unsaid(appliance)
    assert_what_was_heard(appliance, unsaid, story)
