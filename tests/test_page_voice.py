"""The narration for the pages that listen: only they get it, and beside a real speaker
the pages are told of each sentence as it plays."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from appliance.speech.output import SentenceAudio
from appliance.speech.wav_files import WavFileOutput
from appliance.web.event_hub import EventHub, LiveEvent
from appliance.web.page_voice import AudioClips, PageVoice, WithPage
from tests.speech.fake_speech import silent_wav
from tests.speech.test_flow import ClockSpeaker


def test_only_the_pages_that_listen_get_the_narration() -> None:
    async def run() -> tuple[list[str], list[str]]:
        hub = EventHub()
        hub.attach(asyncio.get_running_loop())
        seen: dict[bool, list[str]] = {True: [], False: []}

        async def read(listening: bool) -> None:
            async for event in hub.subscribe(listening=listening):
                assert isinstance(event, LiveEvent)
                seen[listening].append(event.kind)
                if event.kind == "token":
                    return

        readers = [asyncio.create_task(read(True)), asyncio.create_task(read(False))]
        while hub.client_count < 2:
            await asyncio.sleep(0.01)
        assert hub.listener_count == 1
        voice = PageVoice(hub, AudioClips(keep=2))
        assert voice.active()
        audio = SentenceAudio(7, 3, silent_wav(0.01), 0.01, "Hello.")
        await asyncio.to_thread(voice.play, audio, lambda path, t: None, threading.Event())
        hub.publish("token", {"text": "x"})
        await asyncio.wait_for(asyncio.gather(*readers), 10)
        assert voice.clips.get(7) == audio.wav
        return seen[True], seen[False]

    listening, quiet = asyncio.run(run())
    assert listening == ["audio", "token"]
    assert quiet == ["token"]


def test_clips_are_kept_for_a_while_only() -> None:
    clips = AudioClips(keep=2)
    for seq in (1, 2, 3):
        clips.add(seq, bytes([seq]))
    assert clips.get(1) is None and clips.get(2) == b"\x02" and clips.get(3) == b"\x03"


def test_beside_a_speaker_the_pages_follow_its_pace(tmp_path: Path) -> None:
    hub, clips = EventHub(), AudioClips()
    assert WithPage(ClockSpeaker(), hub, clips).realtime is True
    files = WithPage(WavFileOutput(tmp_path), hub, clips)
    assert files.realtime is False and files.name == "wav"
