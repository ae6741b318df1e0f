"""The one interface every voice implements, and the voice that says nothing.

An engine is created in the caller's thread but used, and closed, only in the narrator's
synth thread: some engines (pyttsx3, onnxruntime sessions) must not be shared across
threads, and owning them in one thread is simpler than locking them.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from appliance.speech.style import SpeechStyle


class SpeechEngineError(RuntimeError):
    """One sentence could not be synthesized; the narrator skips it and carries on."""


@runtime_checkable
class SpeechEngine(Protocol):
    @property
    def name(self) -> str: ...

    def unavailable(self) -> str | None:
        """Why this engine cannot speak on this machine, in plain words, or None when it can.

        Cheap enough to call while choosing an engine; never raises.
        """

    def synthesize(self, text: str, style: SpeechStyle) -> bytes | None:
        """The sentence as a complete WAV file in memory, or None for no audio.

        Raises SpeechEngineError when this sentence failed.
        """

    def close(self) -> None:
        """Release what the engine holds (temporary files, native state)."""


class SilentEngine:
    """Text only: the story is still told on the page, just not aloud."""

    name = "silent"

    def unavailable(self) -> str | None:
        return None

    def synthesize(self, text: str, style: SpeechStyle) -> bytes | None:
        return None

    def close(self) -> None:
        return None
