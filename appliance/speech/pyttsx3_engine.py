"""espeak-ng through the pyttsx3 library, kept to one thread and made to wait its turn.

pyttsx3 is known to hang after the first utterance, or to raise "run loop already started",
when its engine is used from more than one thread. Underneath, libespeak-ng keeps one
synthesizer and one callback per process, and ``pyttsx3.init`` hands every caller the same
cached engine. So: the engine is created lazily by the first ``synthesize`` call (in the
narrator's synth thread), any other thread is refused, and one engine per process claims
the library at a time.

Testing pyttsx3 2.99 here showed more: libespeak-ng synthesizes in a thread of its own,
pyttsx3's run loop can return before that thread is done (a long first sentence came back
with no file, which appeared during the next call), and the loop's opening espeak_Cancel
throws away settings still queued (a sad sentence came out at the happy rate, at random).
This engine waits for both (see ``synthesize``); with that, sentences come out right and in
order. One more, seen once in CI under load: a fresh pyttsx3 engine queues the first
sentence's settings until its loop runs, the loop hands them to libespeak-ng and at once asks
whether it is busy; if it is, pyttsx3 leaves a "stop" flag set that cancels a later sentence,
whose file is then written with no audio at all. So a fresh engine's loop is run once, empty,
before the first sentence, and a file with no audio counts as not written, to be tried again.
pyttsx3 still prints "Audio saved to ..." on stdout for each sentence, and silently keeps the
default voice when the one asked for does not exist. The command-line engine
(espeak_command.py) has none of this, is faster, and is the default.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import tempfile
import threading
from itertools import count
from pathlib import Path
from typing import Any

from appliance.speech.engine import SpeechEngineError
from appliance.speech.style import SpeechStyle
from appliance.speech.wav_clip import NotAWavError, wav_duration_s

log = logging.getLogger(__name__)

IDLE_TIMEOUT_S = 30.0

LIBESPEAK_CLAIM = threading.Lock()
"""Held by the one Pyttsx3Engine that is using libespeak-ng in this process."""


class Pyttsx3Engine:
    name = "pyttsx3"

    def __init__(self) -> None:
        self._engine: Any = None
        self._owner: int | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._numbers = count(1)
        self._progress = threading.Condition()
        self._started = 0
        self._finished = 0
        self._subscription: Any = None
        self._espeak: Any = None

    def unavailable(self) -> str | None:
        if importlib.util.find_spec("pyttsx3") is None:
            return "pyttsx3 is not installed (pip install pyttsx3)"
        try:
            # Loads libespeak-ng without initializing it, so it is safe from any thread.
            importlib.import_module("pyttsx3.drivers._espeak")
        except (OSError, ImportError, AttributeError) as exc:
            return f"libespeak-ng not found (apt install espeak-ng): {exc}"
        if LIBESPEAK_CLAIM.locked() and self._owner is None:
            return "pyttsx3 is already speaking for another narrator in this process"
        return None

    def _engine_for_this_thread(self) -> Any:
        me = threading.get_ident()
        if self._owner is not None and self._owner != me:
            raise SpeechEngineError("pyttsx3 is owned by another thread; it must stay in one")
        if self._engine is not None:
            return self._engine
        if not LIBESPEAK_CLAIM.acquire(blocking=False):
            raise SpeechEngineError(
                "pyttsx3 is already speaking for another narrator in this process"
            )
        try:
            import pyttsx3

            engine = pyttsx3.init("espeak")
            self._espeak = importlib.import_module("pyttsx3.drivers._espeak")
            if engine.proxy.isBusy():
                # A fresh engine holds settings back until its loop first runs, and the loop
                # asks whether libespeak-ng is busy right after handing them over. Run it
                # once now, with nothing queued and the library idle, so that from here on
                # settings reach libespeak-ng at once and Synchronize (in synthesize) can
                # wait for them. Only a fresh one: an engine pyttsx3 hands back because
                # something still holds it (it is not busy) keeps its last sentence and that
                # sentence's deleted path, and its loop would speak it again and never end.
                self._espeak.Synchronize()
                engine.runAndWait()
            self._subscription = engine.connect("finished-utterance", self._on_finished)
        except Exception as exc:
            LIBESPEAK_CLAIM.release()
            raise SpeechEngineError(f"pyttsx3 could not start espeak-ng: {exc}") from exc
        self._engine = engine
        self._owner = me
        self._tmp = tempfile.TemporaryDirectory(prefix="moodtale-pyttsx3-")
        return self._engine

    def synthesize(self, text: str, style: SpeechStyle) -> bytes | None:
        engine = self._engine_for_this_thread()
        assert self._tmp is not None
        engine.setProperty("voice", style.voice)
        engine.setProperty("rate", style.rate_wpm)
        engine.setProperty("pitch", style.pitch)
        engine.setProperty("volume", style.amplitude / 100)
        # libespeak-ng queues these settings for its own thread, and pyttsx3's run loop
        # begins with espeak_Cancel whenever that thread looks busy, which throws queued
        # settings away (a sad sentence came out at the happy rate). Let them land first.
        self._espeak.Synchronize()
        for attempt in (1, 2):
            # A fresh name each time: a late write from an earlier call lands in its own file.
            path = Path(self._tmp.name) / f"{next(self._numbers):06d}.wav"
            try:
                engine.save_to_file(text, str(path))
                engine.runAndWait()
                self._wait_until_finished()
                if path.is_file():
                    data = path.read_bytes()
                    if wav_duration_s(data) > 0:
                        return data
            except NotAWavError as exc:
                raise SpeechEngineError(f"pyttsx3 wrote a broken file: {exc}") from exc
            except RuntimeError as exc:
                raise SpeechEngineError(f"pyttsx3 failed: {exc}") from exc
            finally:
                path.unlink(missing_ok=True)
            log.info("pyttsx3 gave back no audio for a sentence (try %d of 2)", attempt)
        raise SpeechEngineError("pyttsx3 gave back no audio for the sentence, twice")

    def _on_finished(self, **_event: Any) -> None:
        with self._progress:
            self._finished += 1
            self._progress.notify_all()

    def _wait_until_finished(self) -> None:
        """libespeak-ng synthesizes in a thread of its own, and pyttsx3's loop can return
        before that thread is done (always possible on the first call); what pyttsx3 is
        told next then interleaves with the unfinished sentence. So each call waits for
        its own "finished-utterance" notice, which comes after the file is written."""
        self._started += 1
        with self._progress:
            if not self._progress.wait_for(lambda: self._finished >= self._started, IDLE_TIMEOUT_S):
                raise SpeechEngineError(f"pyttsx3 did not finish within {IDLE_TIMEOUT_S:.0f} s")

    def close(self) -> None:
        if self._engine is not None:
            # No engine.stop(): every sentence has finished, and stop() leaves a flag in the
            # cached pyttsx3 engine that cancels the next narrator's first sentence.
            self._engine.disconnect(self._subscription)
            self._engine = None
            self._owner = None
            LIBESPEAK_CLAIM.release()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
