"""espeak-ng run as a command, one process per sentence: the default voice.

pyttsx3 drives the same synthesizer through its shared library, and was tested here first:
its 2.99 release returned before a long first sentence was written, dropped rate and pitch
changes at random, swallowed write errors, ignored unknown voices and printed to stdout for
every sentence (pyttsx3_engine.py works around the first two). A separate process has none
of that: it can be timed out and killed, it holds no state between sentences, its exit
status and stderr say what went wrong, and it is faster (about 8 ms for a 6 s sentence
here, against about 30 ms through pyttsx3).
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import tempfile
from itertools import count
from pathlib import Path

from appliance.speech.engine import SpeechEngineError
from appliance.speech.style import SpeechStyle
from appliance.speech.wav_clip import NotAWavError, wav_duration_s

log = logging.getLogger(__name__)

SYNTH_TIMEOUT_S = 30.0
"""A sentence that takes this long has hung espeak-ng: a long one takes well under a second."""


class EspeakCommandEngine:
    name = "espeak-ng"

    def __init__(self, voice: str = "en", executable: str | None = None) -> None:
        self.voice = voice
        self._executable = executable or shutil.which("espeak-ng")
        self._probed: tuple[str | None] | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._numbers = count(1)

    def unavailable(self) -> str | None:
        if self._probed is None:
            self._probed = (self._probe(),)
        return self._probed[0]

    def _probe(self) -> str | None:
        if not self._executable:
            return "espeak-ng not found (apt install espeak-ng)"
        try:
            result = subprocess.run(
                [self._executable, "-q", "-v", self.voice, "--stdin"],
                input=b"ready",
                capture_output=True,
                timeout=10,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"espeak-ng does not run: {exc}"
        if result.returncode != 0:
            stderr = result.stderr.decode(errors="replace").strip()
            if "voice does not exist" in stderr:
                return f"espeak-ng has no voice {self.voice!r} (espeak-ng --voices lists them)"
            return f"espeak-ng does not run: {stderr or f'exit status {result.returncode}'}"
        return None

    def synthesize(self, text: str, style: SpeechStyle) -> bytes | None:
        if not self._executable:
            raise SpeechEngineError("espeak-ng not found (apt install espeak-ng)")
        if self._tmp is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="moodtale-espeak-")
        path = Path(self._tmp.name) / f"{next(self._numbers):06d}.wav"
        command = [
            self._executable,
            "-b", "1",  # the text is UTF-8 whatever the locale says
            "-v", style.voice,
            "-s", str(style.rate_wpm),
            "-p", str(style.pitch),
            "-a", str(style.amplitude),
            "-w", str(path),
            "--stdin",  # text on stdin: a sentence that starts with "-" is not an option
        ]  # fmt: skip
        try:
            result = subprocess.run(
                command,
                input=text.encode("utf-8"),
                capture_output=True,
                timeout=SYNTH_TIMEOUT_S,
                check=False,
            )
            stderr = result.stderr.decode(errors="replace").strip()
            # espeak-ng exits 0 even when it cannot write the file, so the file is the proof.
            if result.returncode != 0 or not path.is_file():
                raise SpeechEngineError(
                    f"espeak-ng failed: {stderr or f'exit status {result.returncode}'}"
                )
            data = path.read_bytes()
            wav_duration_s(data)
        except subprocess.TimeoutExpired as exc:
            raise SpeechEngineError(f"espeak-ng took over {SYNTH_TIMEOUT_S:.0f} s") from exc
        except NotAWavError as exc:
            raise SpeechEngineError(f"espeak-ng wrote a broken file: {exc}") from exc
        except OSError as exc:
            raise SpeechEngineError(f"espeak-ng failed: {exc}") from exc
        finally:
            path.unlink(missing_ok=True)
        return data

    def close(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
