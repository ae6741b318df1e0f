"""Where the job's output goes: two Delta tables, each written once per micro-batch.

``venue_windows``: one row per venue per closed window (from the windows query).
``venue_turns``: one row per turn of each venue's story (from the story query). Each
micro-batch is one Delta commit carrying the transaction (the query's application id,
the batch id); a batch that Spark replays after a failure finds
its id already committed and writes nothing. Written with ``deltalake`` (delta-rs): the
same job on a cluster with delta-spark would write through Spark instead (see README).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Protocol

import pyarrow as pa

from appliance.events import EMOTION_LABELS

log = logging.getLogger(__name__)

WINDOWS_TABLE = "venue_windows"
TURNS_TABLE = "venue_turns"

WINDOW_SCHEMA = pa.schema(
    [
        ("venue", pa.string()),
        ("window_start", pa.timestamp("us", tz="UTC")),
        ("window_end", pa.timestamp("us", tz="UTC")),
        ("faces", pa.int64()),
        ("devices", pa.int64()),
        ("rows", pa.int64()),
        *[(label, pa.float64()) for label in EMOTION_LABELS],
        ("dominant", pa.string()),
    ]
)
TURN_SCHEMA = pa.schema(
    [
        ("venue", pa.string()),
        ("turn", pa.int64()),
        ("window_start", pa.timestamp("us", tz="UTC")),
        ("window_end", pa.timestamp("us", tz="UTC")),
        ("dominant", pa.string()),
        ("shift", pa.bool_()),
        ("text", pa.string()),
        ("backend", pa.string()),
    ]
)


WINDOWS_APP = "moodtale-fleet-windows"
STORY_APP = "moodtale-fleet-story"


class BatchSink(Protocol):
    def write_windows(self, batch_id: int, windows: pa.Table) -> bool:
        """Write one micro-batch of the windows query; False when written before."""
        ...

    def write_turns(self, batch_id: int, turns: pa.Table) -> bool:
        """Write one micro-batch of the story query; False when written before."""
        ...


class DeltaSink:
    """Both tables under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, table: str) -> Path:
        return self.root / table

    def _written(self, table: str, app_id: str) -> int:
        from deltalake import DeltaTable
        from deltalake.exceptions import TableNotFoundError

        try:
            version = DeltaTable(str(self.path(table))).transaction_version(app_id)
        except TableNotFoundError:
            return -1
        return -1 if version is None else int(version)

    def _append(self, table: str, app_id: str, batch_id: int, data: pa.Table) -> bool:
        from deltalake import CommitProperties, Transaction, write_deltalake

        if data.num_rows == 0:
            return False  # nothing to record (a replay of it writes nothing either)
        if self._written(table, app_id) >= batch_id:
            log.info("%s: batch %d was written before (a replay); skipped", table, batch_id)
            return False
        write_deltalake(
            str(self.path(table)),
            data,
            mode="append",
            commit_properties=CommitProperties(
                app_transactions=[Transaction(app_id=app_id, version=batch_id)]
            ),
        )
        return True

    def write_windows(self, batch_id: int, windows: pa.Table) -> bool:
        data = windows.select(WINDOW_SCHEMA.names).cast(WINDOW_SCHEMA)
        return self._append(WINDOWS_TABLE, WINDOWS_APP, batch_id, data)

    def write_turns(self, batch_id: int, turns: pa.Table) -> bool:
        data = turns.select(TURN_SCHEMA.names).cast(TURN_SCHEMA)
        return self._append(TURNS_TABLE, STORY_APP, batch_id, data)
