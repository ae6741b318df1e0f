"""Listening on the page: the phones that tapped Listen hear the narration.

Each sentence's audio is kept for a little while (the last ``KEEP`` sentences, in memory)
and announced to the listening pages as it starts, through the event hub's bounded
per-client queues, so a slow phone never slows the story; the page fetches it from
``/api/audio/{seq}.wav``. WAV, not Ogg/Opus: every phone browser plays it, it needs no
encoder, and at 44 kB a second it costs a LAN nothing (README: Listen on the page).

On a device with no sound device, ``PageVoice`` is the speaker: it plays each sentence in
real time (silently, on the device), so the story keeps to the listeners' pace, and it
is idle (the narrator synthesizes nothing) while nobody listens. Beside a real speaker,
``WithPage`` announces each sentence to the pages as the speaker starts it.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

from appliance.speech.output import AudioOutput, PlaybackStarted, SentenceAudio
from appliance.web.event_hub import EventHub

KEEP = 32
"""Sentences kept for pages to fetch: about two minutes of speech."""


class AudioClips:
    """The last ``KEEP`` sentences' WAVs by sequence number; thread-safe."""

    def __init__(self, keep: int = KEEP) -> None:
        self.keep = keep
        self._clips: OrderedDict[int, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, seq: int, wav: bytes) -> None:
        with self._lock:
            self._clips[seq] = wav
            while len(self._clips) > self.keep:
                self._clips.popitem(last=False)

    def get(self, seq: int) -> bytes | None:
        with self._lock:
            return self._clips.get(seq)


def announce(hub: EventHub, clips: AudioClips, audio: SentenceAudio) -> None:
    clips.add(audio.seq, audio.wav)
    hub.publish(
        "audio",
        {
            "seq": audio.seq,
            "turn": audio.turn_id,
            "text": audio.text,
            "url": f"/api/audio/{audio.seq}.wav",
            "duration_s": round(audio.duration_s, 3),
        },
        listeners_only=True,
    )


class PageVoice:
    """The speaker of a device that has none: the listening pages."""

    name = "page"
    realtime = True

    def __init__(self, hub: EventHub, clips: AudioClips) -> None:
        self.hub = hub
        self.clips = clips

    def active(self) -> bool:
        """Whether anyone listens (else the narrator does not synthesize at all)."""
        return self.hub.listener_count > 0

    def play(self, audio: SentenceAudio, started: PlaybackStarted, stop: threading.Event) -> None:
        announce(self.hub, self.clips, audio)
        started(None, time.monotonic())
        stop.wait(audio.duration_s)  # as long as the phones take to play it

    def close(self) -> None:
        return None


class WithPage:
    """A speaker, and the listening pages told of each sentence as it starts."""

    def __init__(self, speaker: AudioOutput, hub: EventHub, clips: AudioClips) -> None:
        self.speaker = speaker
        self.hub = hub
        self.clips = clips
        self.realtime = bool(getattr(speaker, "realtime", False))

    @property
    def name(self) -> str:
        return self.speaker.name

    def play(self, audio: SentenceAudio, started: PlaybackStarted, stop: threading.Event) -> None:
        if self.hub.listener_count:
            announce(self.hub, self.clips, audio)
        self.speaker.play(audio, started, stop)

    def close(self) -> None:
        self.speaker.close()
