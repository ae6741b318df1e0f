"""What the LAN is told of the appliance's troubles: plain words, no details.

``/api/status`` and the page's status events are open to anyone on the LAN, so they carry
no file paths, exception texts, Azure error bodies or storage account names. Each detail
is in the journal, logged once by the part that met it when it first appears (``moodtale
doctor`` checks the same things by hand); the page gets a sentence a parent can act on.
"""

from __future__ import annotations

from appliance.story.turn_policy import PAUSED_FROM_PAGE

SOURCE_KINDS = {
    "replay": "replayed pictures",
    "picamera2": "Raspberry Pi camera",
    "opencv": "USB camera",
    "starting": "starting",
}

SEE_JOURNAL = "journalctl -u moodtale says why"

PAUSE_CAUSES = (
    ("refused the key", "Azure refused the key"),
    ("Azure is busy", "Azure is busy"),
    ("circuit", "Azure keeps failing"),
    ("deleted while running", "the local model's file is gone"),
    ("does not match", "the local model's file is damaged"),
    ("could not load", "the local model could not load"),
)
"""What the page may say of why no story model serves: the clue in the detail, and the
plain words (the detail itself, with its error texts, stays in the journal)."""
CAMERA_LOST = "camera lost"
PLAIN_REASONS = (CAMERA_LOST, PAUSED_FROM_PAGE)
"""The story loop's own reasons for pausing, plain already."""


def source_kind(name: str) -> str:
    """A frame source's name (``replay /path``, ``opencv /dev/video0``) without its path."""
    first = name.split(" ", 1)[0]
    return SOURCE_KINDS.get(first, "camera")


def lan_backend(backend: dict[str, str]) -> dict[str, str]:
    """The story backend in use, by model name (never a path), without the error."""
    shown = {k: v for k, v in backend.items() if k != "local_problem"}
    kind, _, model = shown.get("backend", "").partition(" ")
    if "/" in model:
        shown["backend"] = f"{kind} {model.rsplit('/', 1)[1]}"
    return shown


def lan_speech(speech: dict[str, str]) -> dict[str, str]:
    """The voice and where it goes; the reason it is text only stays in the journal."""
    shown = {k: v for k, v in speech.items() if k != "problem"}
    if shown.get("mode") == "text only":
        listenable = shown.get("output") == "page"
        shown["summary"] = "text only (tap Listen to hear it)" if listenable else "text only"
    return shown


def disk_trouble(detail: str) -> str:
    """Why the disk would not take a write, in words (the error text has the path)."""
    lowered = detail.lower()
    if "full" in lowered or "no space" in lowered:
        return "the disk is full"
    if "read-only" in lowered or "readonly" in lowered:
        return "the disk is read-only"
    if "permission" in lowered:
        return "the folder is not the appliance's to write"
    return "the disk refuses it"


def pause_reason(reason: str) -> str:
    """The story loop's reason for pausing, without the error it may quote."""
    if reason in PLAIN_REASONS:
        return reason
    causes = [words for clue, words in PAUSE_CAUSES if clue in reason]
    return "no story model can be used now" + (f" ({', '.join(causes)})" if causes else "")
