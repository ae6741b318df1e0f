"""The landing format: what devices write and the fleet job reads. Change it in both or neither.

A landing file is Parquet, one row per ``MoodSummary``, with this schema (``LANDING_SCHEMA``):

    venue: string, device: string, second: int64, faces: int64,
    angry, disgust, fear, happy, sad, surprise, neutral: float64

``second`` is unix epoch seconds; ``faces`` counts face readings in that second (one face
in 15 frames counts 15); each emotion column is the sum of that label's probability over
those readings, so ``sum / faces`` is the mean and rows add up exactly downstream.

Files are named ``<device>-<seq:012d>.parquet``, ``seq`` increasing per device. A file with
a name seen before holds the same rows as before (a resend after a crash, never new rows).

On the device, rows wait in the spool as JSON Lines (one flat object per row, appended a
second at a time, so a crash loses at most a half-written line); a spooled file becomes
Parquet as it is delivered. Parquet, not Arrow IPC or JSON, by measurement (README: Fleet):
Spark reads it column by column with no parsing, and for a file of 60 rows it is a third of
the JSON's size; Arrow IPC is as small but Spark has no reader for it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from appliance.events import EMOTION_LABELS, Emotions, MoodSummary

if TYPE_CHECKING:
    import pyarrow as pa

LANDING_SCHEMA_FIELDS: tuple[tuple[str, type], ...] = (
    ("venue", str),
    ("device", str),
    ("second", int),
    ("faces", int),
    *((label, float) for label in EMOTION_LABELS),
)
"""Column names and Python types, in order (for Spark: str → string, int → long,
float → double)."""

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
LANDING_SUFFIX = ".parquet"
SPOOL_SUFFIX = ".jsonl"
LANDING_FILE_NAME = re.compile(
    r"^(?P<device>[A-Za-z0-9][A-Za-z0-9._-]*)-(?P<seq>\d{12,})\.(?P<format>jsonl|parquet)$"
)
"""A landing file's name, or a spooled file's (the same name, as JSON Lines)."""


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
    if not isinstance(row, Mapping):
        raise ValueError(f"not a landing row: {row!r}")
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
        if isinstance(value, int) and not INT64_MIN <= value <= INT64_MAX:
            raise ValueError(f"column {name!r} is out of range: {value!r}")
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


def landing_schema() -> pa.Schema:
    import pyarrow as pa

    kinds = {str: pa.string(), int: pa.int64(), float: pa.float64()}
    return pa.schema([(name, kinds[kind], False) for name, kind in LANDING_SCHEMA_FIELDS])


def encode_landing_file(spooled: bytes) -> bytes:
    """A spooled file's rows (JSON Lines) as a landing file (Parquet). Each row is checked
    against the schema first: a row that does not fit raises ``ValueError``."""
    import pyarrow as pa

    rows = [summary_to_row(summary) for summary in decode_rows(spooled)]
    return landing_file_bytes(pa.Table.from_pylist(rows, schema=landing_schema()))


def landing_file_bytes(table: pa.Table) -> bytes:
    """A table of landing rows as a landing file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = pa.BufferOutputStream()
    # No compression and no statistics: the sums are doubles that hardly compress, and
    # nothing filters on them; no Arrow schema copy in the footer (1 KB a file).
    pq.write_table(table, out, compression="none", write_statistics=False, store_schema=False)
    return bytes(out.getvalue().to_pybytes())


def decode_landing_file(data: bytes) -> list[MoodSummary]:
    """The rows of a landing file, checked against the schema."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(pa.BufferReader(data))
    if table.schema.remove_metadata() != landing_schema():
        raise ValueError(f"not a landing file: schema {table.schema}")
    return [row_to_summary(row) for row in table.to_pylist()]


def landing_file_name(device: str, seq: int) -> str:
    return f"{device}-{seq:012d}{LANDING_SUFFIX}"


def spool_file_name(device: str, seq: int) -> str:
    return f"{device}-{seq:012d}{SPOOL_SUFFIX}"


def as_landing_name(spooled_name: str) -> str:
    """The name a spooled file lands under (the same device and sequence number)."""
    return spooled_name.removesuffix(SPOOL_SUFFIX) + LANDING_SUFFIX


def landing_file_seq(name: str) -> int | None:
    """The sequence number in a landing file's name (None: not a landing file name)."""
    match = LANDING_FILE_NAME.match(name)
    return int(match["seq"]) if match else None
