"""The Narrator: speaks the story's sentences in order without ever holding up the story.

The storyteller hands over each sentence as it completes and goes straight back to
generating. Two threads do the rest: the synth thread turns text into audio a few
sentences ahead, so there is no gap between sentences, and the playback thread is the
one owner of the speaker. ``behind_s`` tells the storyteller how far the voice lags the
text, so it can wait (``wait_for_room``) instead of running minutes ahead of its own voice.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from appliance.speech.engine import SilentEngine, SpeechEngine, SpeechEngineError
from appliance.speech.output import AudioOutput, AudioOutputError, SentenceAudio
from appliance.speech.settings import SpeechSettings
from appliance.speech.style import SpeechStyle, estimated_duration_s, style_for_mood
from appliance.speech.wav_clip import NotAWavError, wav_duration_s
from appliance.speech.wav_shape import shaped

log = logging.getLogger(__name__)

SYNTH_AHEAD = 2
"""Sentences synthesized and waiting for the speaker: enough for no gap, few enough that
``clear()`` throws little work away."""

MAX_WAITING = 256
"""A caller that ignores ``behind_s`` still cannot grow the queue without bound: past this
the oldest waiting sentences are dropped (and counted)."""

POLL_S = 0.2
"""How often an idle thread looks at the stop event."""

SPLIT_WORDS = 14
"""A turn's first sentence longer than this is spoken in two parts, split at a comma, so
that its first part is synthesized, and heard, sooner."""

SPLIT_MIN_PART = 4
"""Words each part keeps at least."""

COMMA_PAUSE_S = 0.12
"""The silence after the first part of a split sentence: a comma's, not a full stop's."""


def split_at_comma(text: str) -> tuple[str, str] | None:
    """A long sentence as two parts at its first comma (or colon, or semicolon) that
    leaves each part at least ``SPLIT_MIN_PART`` words, or None when it is short or has no
    such mark."""
    words = text.split()
    if len(words) <= SPLIT_WORDS:
        return None
    for index, word in enumerate(words[SPLIT_MIN_PART - 1 : -SPLIT_MIN_PART], SPLIT_MIN_PART):
        if word.endswith((",", ":", ";")):
            return " ".join(words[:index]), " ".join(words[index:])
    return None


@dataclass(frozen=True, slots=True)
class AudioDone:
    """A sentence's audio has been written or has started playing."""

    turn_id: int | None
    seq: int
    path: Path | None
    """The WAV file, when the output keeps one (wav output); None for a speaker."""
    duration_s: float
    t_first_sample: float
    """time.monotonic() when the first sample was written to the file or the device."""
    text: str
    voice: str = ""
    """The engine that spoke it (``piper``, or ``espeak-ng`` while Piper is down)."""


AudioDoneHook = Callable[[AudioDone], None]


@dataclass(slots=True, eq=False)
class _Sentence:
    seq: int
    turn_id: int | None
    text: str
    style: SpeechStyle
    estimate_s: float
    wav: bytes | None = None
    duration_s: float | None = None
    synthesizing: bool = False
    dropped: bool = False
    pause_s: float | None = None
    """The silence after it; None: the style's sentence pause."""
    first_of_turn: bool = False
    voice: str = ""
    whole: str = ""
    """The sentence this is a part of (split at a comma), or the sentence itself."""
    rest_of: _Sentence | None = None
    """For a second part: the first part, which, once playing, keeps this one."""

    @property
    def seconds(self) -> float:
        return self.duration_s if self.duration_s is not None else self.estimate_s


class Narrator:
    """Owns the synth and playback threads; ``say`` is safe from any thread."""

    def __init__(
        self,
        engine: SpeechEngine,
        output: AudioOutput,
        settings: SpeechSettings | None = None,
        *,
        on_audio: AudioDoneHook | None = None,
        problem: str = "",
    ) -> None:
        self.engine = engine
        self.output = output
        self.settings = settings or SpeechSettings()
        self.on_audio = on_audio
        """Told as each sentence's audio is written or starts playing, from the playback
        thread: keep it quick (a benchmark takes the time to first audio from it)."""
        self._setup_problem = problem
        self._engine_error = ""
        self._output_error = ""
        self._text_only = isinstance(engine, SilentEngine)
        self._lock = threading.Condition()
        self._waiting: deque[_Sentence] = deque()
        self._playing: _Sentence | None = None
        self._playing_since = 0.0
        self._next_seq = 1
        self._last_said_turn: int | None = None
        self._last_end = 0.0
        """time.monotonic() when the last sentence played will have ended."""
        self._last_played_turn: int | None = None
        self._dropped = 0
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._closed = False

    # --- the caller's side -------------------------------------------------------------

    def start(self) -> Narrator:
        """Start the threads (once); returns self so ``Narrator(...).start()`` reads well."""
        with self._lock:
            if self._threads or self._closed:
                return self
            self._threads = [
                threading.Thread(target=self._synth_loop, name="narrator-synth", daemon=True),
                threading.Thread(target=self._playback_loop, name="narrator-playback", daemon=True),
            ]
        for thread in self._threads:
            thread.start()
        return self

    def say(self, text: str, turn_id: int | None = None, mood: str | None = None) -> None:
        """Queue one sentence and return at once, whatever the engine or speaker is doing."""
        text = " ".join(text.split())
        if not text or self._text_only or not self._output_active():
            return
        style = style_for_mood(self.settings, mood)
        with self._lock:
            if self._closed:
                return
            first = turn_id is None or turn_id != self._last_said_turn
            self._last_said_turn = turn_id
            parts = split_at_comma(text) if first else None
            pieces = [(parts[0], COMMA_PAUSE_S), (parts[1], None)] if parts else [(text, None)]
            before: _Sentence | None = None
            for number, (piece, pause) in enumerate(pieces):
                sentence = _Sentence(
                    seq=self._next_seq,
                    turn_id=turn_id,
                    text=piece,
                    style=style,
                    estimate_s=estimated_duration_s(piece, style.rate_wpm),
                    pause_s=pause,
                    first_of_turn=first and number == 0,
                    whole=text,
                    rest_of=before,
                )
                before = sentence
                self._next_seq += 1
                self._waiting.append(sentence)
            while len(self._waiting) > MAX_WAITING:
                oldest = self._waiting.popleft()
                oldest.dropped = True
                self._dropped += 1
            self._lock.notify_all()
        log.debug("queued sentence %d (turn %s, %s): %s", sentence.seq, turn_id, mood, text)

    @property
    def behind_s(self) -> float:
        """Seconds of speech queued but not yet heard: the rest of the sentence playing, the
        real length of those synthesized, an estimate from word count for the others."""
        with self._lock:
            return self._behind_s_locked()

    def _behind_s_locked(self) -> float:
        total = sum(sentence.seconds for sentence in self._waiting)
        if self._playing is not None:
            heard = time.monotonic() - self._playing_since
            total += max(0.0, self._playing.seconds - heard)
        return total

    def _output_active(self) -> bool:
        """False while an output that can be idle is (the page, with nobody listening)."""
        active = getattr(self.output, "active", None)
        return bool(active()) if callable(active) else True

    @property
    def speaking(self) -> bool:
        """True when sentences are turned into audio (a speaker, WAV files, a page that
        listens), so ``behind_s`` paces the story; False when the narrator is text only."""
        return not self._text_only and self.output.name != "none" and self._output_active()

    @property
    def max_ahead_s(self) -> float:
        return self.settings.max_ahead_s

    def wait_for_room(self, timeout: float | None = None) -> bool:
        """Block until ``behind_s`` is at most ``max_ahead_s`` (True), or until ``timeout``
        passes or the narrator closes (False). For the storyteller, between sentences."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            while self._behind_s_locked() > self.settings.max_ahead_s:
                if self._stop.is_set():
                    return False
                left = POLL_S if deadline is None else min(POLL_S, deadline - time.monotonic())
                if left <= 0:
                    return False
                # behind_s also shrinks as the playing sentence is heard: poll, not only notify.
                self._lock.wait(left)
            return True

    def clear(self) -> list[tuple[int | None, str]]:
        """Drop every sentence not yet playing (the reader's mood changed, a new story
        begins); the one playing finishes, and so does a sentence whose first part has
        begun. Returns what was dropped, as (turn, sentence), in order: never heard."""
        unheard: list[tuple[int | None, str]] = []
        with self._lock:
            kept: deque[_Sentence] = deque()
            for sentence in self._waiting:
                if sentence.rest_of is not None and sentence.rest_of not in self._waiting:
                    kept.append(sentence)  # its first part is playing, or was heard
                    continue
                sentence.dropped = True  # not counted: nothing was lost, the story moved on
                if sentence.rest_of is None:
                    unheard.append((sentence.turn_id, sentence.whole or sentence.text))
            self._waiting = kept
            self._lock.notify_all()
        return unheard

    def close(self, timeout: float = 2.0) -> None:
        """Stop promptly: pending sentences are dropped and the one playing is cut off.

        Returns within ``timeout`` even if the engine is stuck in a sentence; its thread is
        a daemon and lets go of the engine when the sentence returns.
        """
        deadline = time.monotonic() + timeout
        with self._lock:
            self._closed = True
            self._stop.set()
            for sentence in self._waiting:
                sentence.dropped = True
            self._waiting.clear()
            self._lock.notify_all()
            threads = list(self._threads)
        if not threads:
            self.engine.close()
            self.output.close()
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                log.warning("%s did not stop within %.1f s", thread.name, timeout)

    def __enter__(self) -> Narrator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def status(self) -> dict[str, str]:
        """What the page and ``/api/status`` show: engine, output, mode, a one-line summary,
        and ``problem`` (plain words) only when there is one."""
        with self._lock:
            engine_problem = str(getattr(self.engine, "problem", "") or "")
            problems = [
                p
                for p in (
                    self._setup_problem,
                    engine_problem,
                    self._engine_error,
                    self._output_error,
                )
                if p
            ]
            dropped = self._dropped
        if self.output.name == "page" and not self._text_only and not self.speaking:
            mode = "text only"
            summary = "text only (no sound device; tap Listen on the page to hear it)"
        elif not self.speaking:
            mode = "text only"
            reason = problems[0].removesuffix(": text only") if problems else ""
            summary = f"text only ({reason})" if reason else "text only"
        elif self.output.name == "wav":
            mode = "wav files"
            summary = f"{self.engine.name} voice, one WAV file per sentence"
        elif self.output.name == "page":
            mode = "on the page"
            summary = f"{self.engine.name} voice, on the pages that listen"
        else:
            mode = "spoken"
            summary = f"{self.engine.name} voice through {self.output.name}"
        status = {
            "engine": self.engine.name,
            "output": self.output.name,
            "mode": mode,
            "summary": summary,
        }
        if problems:
            status["problem"] = "; ".join(problems)
        if dropped:
            status["dropped"] = str(dropped)
        return status

    # --- the synth thread --------------------------------------------------------------

    def _next_to_synthesize(self) -> _Sentence | None:
        with self._lock:
            while not self._stop.is_set():
                ready = 0
                for sentence in self._waiting:
                    if sentence.wav is not None:
                        ready += 1
                    elif not sentence.synthesizing:
                        if ready < SYNTH_AHEAD:
                            sentence.synthesizing = True
                            return sentence
                        break
                self._lock.wait(POLL_S)
            return None

    def _synth_loop(self) -> None:
        try:
            warm = getattr(self.engine, "warm", None)
            if callable(warm):
                warm()  # a voice that loads slowly starts loading now, not at the first line
            while not self._stop.is_set():
                try:
                    sentence = self._next_to_synthesize()
                    if sentence is not None:
                        self._synthesize(sentence)
                except Exception:
                    # The boundary: one bad sentence (or a bug) must not end narration.
                    log.exception("speech synthesis failed")
                    self._stop.wait(POLL_S)
        finally:
            try:
                self.engine.close()
            except Exception:
                log.exception("closing the speech engine failed")

    def _synthesize(self, sentence: _Sentence) -> None:
        began = time.monotonic()
        wav: bytes | None = None
        duration = 0.0
        error = ""
        try:
            wav = self.engine.synthesize(sentence.text, sentence.style)
            sentence.voice = self.engine.name
            if wav is not None:
                pause = sentence.style.pause_s if sentence.pause_s is None else sentence.pause_s
                wav = shaped(wav, pause)
                duration = wav_duration_s(wav)
        except (SpeechEngineError, NotAWavError) as exc:
            error = f"{self.engine.name}: {exc}"
            wav = None
            log.warning("sentence %d not spoken: %s", sentence.seq, error)
        log.debug(
            "synthesized sentence %d in %.3f s (%.2f s of audio)",
            sentence.seq,
            time.monotonic() - began,
            duration,
        )
        with self._lock:
            self._engine_error = error
            if wav is None:
                if not sentence.dropped:
                    self._waiting.remove(sentence)
            elif not sentence.dropped:
                sentence.wav = wav
                sentence.duration_s = duration
            sentence.synthesizing = False
            self._lock.notify_all()

    # --- the playback thread -----------------------------------------------------------

    def _next_to_play(self) -> _Sentence | None:
        with self._lock:
            while not self._stop.is_set():
                if self._waiting and self._waiting[0].wav is not None:
                    sentence = self._waiting.popleft()
                    self._playing = sentence
                    self._playing_since = time.monotonic()
                    self._lock.notify_all()
                    return sentence
                self._lock.wait(POLL_S)
            return None

    def _playback_loop(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    sentence = self._next_to_play()
                    if sentence is not None:
                        self._play(sentence)
                except Exception:
                    log.exception("speech playback failed")
                    self._stop.wait(POLL_S)
        finally:
            try:
                self.output.close()
            except Exception:
                log.exception("closing the audio output failed")

    def _turn_pause(self, sentence: _Sentence) -> None:
        """On a speaker, a new turn starts at least ``turn_pause_s`` after the last one
        ended (its sentence pause counted): the listener hears where one turn ends."""
        if not getattr(self.output, "realtime", False) or not sentence.first_of_turn:
            return
        if self._last_played_turn is None or sentence.turn_id == self._last_played_turn:
            return
        wait = self._last_end + self.settings.turn_pause_s - self.settings.sentence_pause_s
        left = wait - time.monotonic()
        if left > 0:
            self._stop.wait(left)

    def _play(self, sentence: _Sentence) -> None:
        assert sentence.wav is not None and sentence.duration_s is not None
        audio = SentenceAudio(
            sentence.seq, sentence.turn_id, sentence.wav, sentence.duration_s, sentence.text
        )
        self._turn_pause(sentence)

        def started(path: Path | None, t_first_sample: float) -> None:
            with self._lock:
                self._playing_since = t_first_sample
                self._last_end = t_first_sample + audio.duration_s
                self._last_played_turn = sentence.turn_id
            if self.on_audio is None:
                return
            done = AudioDone(
                turn_id=sentence.turn_id,
                seq=sentence.seq,
                path=path,
                duration_s=audio.duration_s,
                t_first_sample=t_first_sample,
                text=sentence.text,
                voice=sentence.voice,
            )
            try:
                self.on_audio(done)
            except Exception:
                log.exception("on_audio hook failed")

        try:
            self.output.play(audio, started, self._stop)
            error = ""
        except AudioOutputError as exc:
            error = f"{self.output.name}: {exc}"
            log.warning("sentence %d not played: %s", sentence.seq, error)
        finally:
            with self._lock:
                self._playing = None
                self._lock.notify_all()
        with self._lock:
            self._output_error = error
