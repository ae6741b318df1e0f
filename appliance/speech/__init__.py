"""Speech: the Narrator reads the story aloud, a sentence at a time, in order."""

from appliance.speech.auto import build_narrator, pick_engine, pick_output, sound_device_present
from appliance.speech.engine import SilentEngine, SpeechEngine, SpeechEngineError
from appliance.speech.narrator import AudioDone, Narrator
from appliance.speech.output import AudioOutput, AudioOutputError, NoOutput, SentenceAudio
from appliance.speech.settings import SpeechSettings
from appliance.speech.style import SpeechStyle, style_for_mood

__all__ = [
    "AudioDone",
    "AudioOutput",
    "AudioOutputError",
    "Narrator",
    "NoOutput",
    "SentenceAudio",
    "SilentEngine",
    "SpeechEngine",
    "SpeechEngineError",
    "SpeechSettings",
    "SpeechStyle",
    "build_narrator",
    "pick_engine",
    "pick_output",
    "sound_device_present",
    "style_for_mood",
]
