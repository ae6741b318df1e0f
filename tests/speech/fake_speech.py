"""Stand-ins for what this machine lacks or cannot control: a slow voice and a speaker."""

from __future__ import annotations

import io
import stat
import threading
import time
import wave
from collections.abc import Callable
from pathlib import Path

from appliance.speech import AudioDone, SpeechStyle


def silent_wav(seconds: float, rate: int = 22050) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(b"\0\0" * round(seconds * rate))
    return buffer.getvalue()


class SlowEngine:
    """Takes ``delay_s`` per sentence and returns ``audio_s`` of silence; ``release`` ends a
    wait early so a test never leaves a thread sleeping behind it."""

    name = "slow-fake"

    def __init__(self, delay_s: float, audio_s: float = 1.0) -> None:
        self.delay_s = delay_s
        self.audio_s = audio_s
        self.release = threading.Event()
        self.texts: list[str] = []
        self.threads: set[int] = set()

    def unavailable(self) -> str | None:
        return None

    def synthesize(self, text: str, style: SpeechStyle) -> bytes | None:
        self.threads.add(threading.get_ident())
        self.release.wait(self.delay_s)
        self.texts.append(text)
        return silent_wav(self.audio_s)

    def close(self) -> None:
        return None


class AudioLog:
    """Collects on_audio calls; ``wait_for`` blocks until enough have arrived."""

    def __init__(self) -> None:
        self.done: list[AudioDone] = []
        self._arrived = threading.Condition()

    def __call__(self, done: AudioDone) -> None:
        with self._arrived:
            self.done.append(done)
            self._arrived.notify_all()

    def wait_for(self, count: int, timeout: float = 20.0) -> list[AudioDone]:
        with self._arrived:
            self._arrived.wait_for(lambda: len(self.done) >= count, timeout)
            return list(self.done)


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def fake_aplay(bin_dir: Path, record_dir: Path, busy_first: int = 0, play_s: float = 0.2) -> Path:
    """An ``aplay`` that records its arguments, its PID and the file it was given, fails
    with "Device or resource busy" on its first ``busy_first`` calls, then "plays" for
    ``play_s``. Put first on PATH, it is the speaker this machine does not have."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    record_dir.mkdir(parents=True, exist_ok=True)
    script = bin_dir / "aplay"
    script.write_text(
        f"""#!/bin/sh
record="{record_dir}"
echo "$*" >> "$record/calls.log"
echo $$ > "$record/last.pid"
calls=$(wc -l < "$record/calls.log")
if [ "$calls" -le {busy_first} ]; then
    echo "aplay: main:831: audio open error: Device or resource busy" >&2
    exit 1
fi
for last in "$@"; do :; done
cp "$last" "$record/played-$calls.wav"
exec sleep {play_s}
""",
        encoding="utf-8",
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return script
