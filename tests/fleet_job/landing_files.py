"""Landing files as the devices write them: Parquet (the publisher's own encoding), renamed
into place."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from pathlib import Path

from appliance.events import EMOTION_LABELS
from appliance.fleet.rows import encode_landing_file, landing_file_name


def row(venue: str, device: str, second: int, faces: int, **sums: float) -> dict[str, object]:
    values = {label: float(sums.get(label, 0.0)) for label in EMOTION_LABELS}
    return {"venue": venue, "device": device, "second": second, "faces": faces, **values}


def mood_row(venue: str, device: str, second: int, label: str, faces: int = 2) -> dict[str, object]:
    """``faces`` faces, each mostly ``label`` (0.7) and a little neutral (0.3)."""
    sums = (
        {label: 0.7 * faces, "neutral": 0.3 * faces}
        if label != "neutral"
        else {"neutral": 1.0 * faces}
    )
    return row(venue, device, second, faces, **sums)


def landed_name(seq: int | str, device: str = "pi") -> str:
    """A landing file's name: the device's ``seq``-th file."""
    return landing_file_name(device, int(seq))


def land(
    directory: Path, seq: int | str, rows: Iterable[dict[str, object]], device: str = "pi"
) -> Path:
    """``rows`` landed as ``device``'s file number ``seq``."""
    directory.mkdir(parents=True, exist_ok=True)
    name = landed_name(seq, device)
    temporary = directory / f".{name}.tmp"
    temporary.write_bytes(encode_landing_file("".join(json.dumps(r) + "\n" for r in rows).encode()))
    final = directory / name
    os.replace(temporary, final)
    # Landed in order, as a device's files are (seconds apart): Spark reads a directory's
    # files oldest first, by their time to the millisecond, and files written within the
    # same one come in the order the file system lists them (on tmpfs, newest first).
    # A file is given a time after every other file's here, so the order is the landing's.
    others = [p.stat().st_mtime_ns for p in directory.iterdir() if p != final]
    stamp = max([time.time_ns(), *(t + 1_000_000_000 for t in others)])
    os.utime(final, ns=(stamp, stamp))
    return final
