"""The landing format: what devices write and the fleet job reads. Change it in both or neither.

One file is JSON Lines, one flat object per ``MoodSummary``:

    {"venue": str, "device": str, "second": int, "faces": int,
     "angry": float, "disgust": float, "fear": float, "happy": float,
     "sad": float, "surprise": float, "neutral": float}

``second`` is unix epoch seconds; ``faces`` counts face readings in that second (one face
in 15 frames counts 15); each emotion column is the sum of that label's probability over
those readings, so ``sum / faces`` is the mean and rows add up exactly downstream.

Files are named ``<device>-<seq:012d>.jsonl``, ``seq`` increasing per device. A file with
a name seen before holds the same rows as before (a resend after a crash, never new rows).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from appliance.events import EMOTION_LABELS, Emotions, MoodSummary

LANDING_SCHEMA_FIELDS: tuple[tuple[str, type], ...] = (
    ("venue", str),
    ("device", str),
    ("second", int),
    ("faces", int),
    *((label, float) for label in EMOTION_LABELS),
)
"""Column names and Python types, in order (for Spark: str → string, int → long,
float → double)."""

LANDING_SUFFIX = ".jsonl"
LANDING_FILE_NAME = re.compile(r"^(?P<device>[A-Za-z0-9][A-Za-z0-9._-]*)-(?P<seq>\d{12,})\.jsonl$")


def summary_to_row(summary: MoodSummary) -> dict[str, Any]:
    row: dict[str, Any] = {
        "venue": summary.venue,
        "device": summary.device,
        "second": int(summary.second),
        "faces": int(summary.faces),
    }
    row.update({label: float(v) for label, v in summary.emotion_sums.as_dict().items()})
    return row


def row_to_summary(row: Mapping[str, Any]) -> MoodSummary:
    """The summary a row holds; ``ValueError`` naming the column when it is not one."""
    missing = [name for name, _ in LANDING_SCHEMA_FIELDS if name not in row]
    extra = sorted(set(row) - {name for name, _ in LANDING_SCHEMA_FIELDS})
    if missing or extra:
        raise ValueError(f"not a landing row: missing {missing}, unexpected {extra}")
    for name, kind in LANDING_SCHEMA_FIELDS:
        value = row[name]
        # bool is an int to Python, never to the schema; an int is a fine float.
        accepted = (int, float) if kind is float else (kind,)
        if isinstance(value, bool) or not isinstance(value, accepted):
            raise ValueError(f"column {name!r} must be {kind.__name__}, got {value!r}")
    return MoodSummary(
        venue=row["venue"],
        device=row["device"],
        second=row["second"],
        faces=row["faces"],
        emotion_sums=Emotions.from_mapping({label: row[label] for label in EMOTION_LABELS}),
    )


def encode_rows(summaries: Iterable[MoodSummary]) -> bytes:
    """JSON Lines, each line ending in a newline (floats written exactly, no NaN)."""
    return b"".join(
        json.dumps(summary_to_row(s), separators=(",", ":"), allow_nan=False).encode() + b"\n"
        for s in summaries
    )


def decode_rows(data: bytes) -> list[MoodSummary]:
    return [row_to_summary(json.loads(line)) for line in data.splitlines() if line.strip()]


def landing_file_name(device: str, seq: int) -> str:
    return f"{device}-{seq:012d}{LANDING_SUFFIX}"


def landing_file_seq(name: str) -> int | None:
    """The sequence number in a landing file's name (None: not a landing file name)."""
    match = LANDING_FILE_NAME.match(name)
    return int(match["seq"]) if match else None
