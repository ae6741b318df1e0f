"""Choosing a voice and a speaker from the settings and from what this machine has.

Missing hardware is never an error here: a device without a sound card, or without
espeak-ng, still tells its story on the page, and its status says why it is silent.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from pathlib import Path

from appliance.speech.aplay_output import AplayOutput
from appliance.speech.engine import SilentEngine, SpeechEngine
from appliance.speech.espeak_command import EspeakCommandEngine
from appliance.speech.narrator import AudioDoneHook, Narrator
from appliance.speech.output import AudioOutput, NoOutput
from appliance.speech.piper_fallback import PiperWithFallback
from appliance.speech.piper_process import PiperEngine
from appliance.speech.pyttsx3_engine import Pyttsx3Engine
from appliance.speech.settings import SpeechSettings
from appliance.speech.wav_files import WavFileOutput

log = logging.getLogger(__name__)

ASOUND_CARDS = Path("/proc/asound/cards")


def sound_device_present(cards: Path = ASOUND_CARDS) -> bool:
    """True when ALSA lists a sound card and aplay is installed to play on it."""
    try:
        listing = cards.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    has_card = any(line.strip()[:1].isdigit() for line in listing.splitlines())
    return has_card and shutil.which("aplay") is not None


def pick_output(
    settings: SpeechSettings, sound_device: Callable[[], bool] = sound_device_present
) -> tuple[AudioOutput, str]:
    """The output the settings ask for, or none with the reason why not."""
    if settings.output == "none":
        return NoOutput(), ""
    if settings.output == "wav":
        assert settings.wav_dir is not None  # the settings refuse wav without a directory
        try:
            settings.wav_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            return NoOutput(), f"cannot write to {settings.wav_dir} ({exc}): text only"
        return WavFileOutput(settings.wav_dir), ""
    if settings.output == "auto" and not sound_device():
        return NoOutput(), "no sound device: text only"
    aplay = shutil.which("aplay")
    if aplay is None:
        return NoOutput(), "aplay not found (apt install alsa-utils): text only"
    return AplayOutput(aplay, settings.aplay_device), ""


def engine_candidates(settings: SpeechSettings) -> list[SpeechEngine]:
    """The engines to try, best first. Auto (and piper) is Piper, with espeak-ng speaking
    any sentence Piper cannot; without Piper, espeak-ng, then pyttsx3 (see espeak_command.py
    for what testing pyttsx3 showed)."""
    espeak: list[SpeechEngine] = [EspeakCommandEngine(settings.voice), Pyttsx3Engine()]
    if settings.engine == "espeak":
        return [EspeakCommandEngine(settings.voice)]
    if settings.engine == "pyttsx3":
        return [Pyttsx3Engine(), EspeakCommandEngine(settings.voice)]
    piper = PiperWithFallback(
        PiperEngine(settings.piper_voice, threads=settings.piper_threads),
        EspeakCommandEngine(settings.voice),
    )
    return [piper, *espeak]


def pick_engine(
    settings: SpeechSettings, candidates: list[SpeechEngine] | None = None
) -> tuple[SpeechEngine, str]:
    """The first engine that can speak here, and what was given up on the way (if anything).

    A named engine that cannot speak falls back to the next one, and the reason is kept, so
    the page says "piper is not installed (...): using espeak-ng" rather than going quiet.
    """
    if settings.engine == "silent":
        return SilentEngine(), ""
    engines = candidates if candidates is not None else engine_candidates(settings)
    reasons: list[str] = []
    for engine in engines:
        reason = engine.unavailable()
        if reason is None:
            if reasons:
                return engine, f"{reasons[0]}: using {engine.name}"
            return engine, ""
        log.debug("speech engine %s unavailable: %s", engine.name, reason)
        reasons.append(reason)
    return SilentEngine(), f"{reasons[0] if reasons else 'no speech engine'}: text only"


def build_narrator(
    settings: SpeechSettings,
    *,
    on_audio: AudioDoneHook | None = None,
    sound_device: Callable[[], bool] = sound_device_present,
    engines: list[SpeechEngine] | None = None,
    page: AudioOutput | None = None,
    to_page: Callable[[AudioOutput], AudioOutput] | None = None,
) -> Narrator:
    """A started Narrator for these settings; never raises for missing hardware.

    ``page`` is the speaker of a device with none (``output = "auto"``): the pages that
    listen; ``to_page`` wraps a real output so that they hear it too. ``sound_device`` and
    ``engines`` are the seams tests use to swap hardware.
    """
    output, output_problem = pick_output(settings, sound_device)
    if isinstance(output, NoOutput) and page is not None and settings.output == "auto":
        output, output_problem = page, ""
    elif not isinstance(output, NoOutput) and to_page is not None:
        output = to_page(output)
    if isinstance(output, NoOutput):
        # Nobody will hear it: do not spend the CPU (shared with the LLM) on synthesis.
        engine: SpeechEngine = SilentEngine()
        problem = output_problem
    else:
        engine, problem = pick_engine(settings, engines)
        if isinstance(engine, SilentEngine):
            output.close()
            output = NoOutput()
    narrator = Narrator(engine, output, settings, on_audio=on_audio, problem=problem)
    status = narrator.status()
    log.info(
        "speech: %s voice, %s output%s",
        status["engine"],
        status["output"],
        f" ({status['problem']})" if "problem" in status else "",
    )
    return narrator.start()
