"""Cluster side, second stage: one story per venue, kept in Spark's state store.

``VenueStory`` is a ``transformWithStateInPandas`` processor keyed by venue. Its state
(turns told, the mood of the last turn, windows since, a turn put off, the last few turns'
text) lives in the state store, checkpointed with the query: it survives micro-batches,
restarts from the checkpoint and replayed batches, which the driver-side global of the
original design did not. It reads the closed windows the
windows query hands on, and emits the venue's next turn when its mood shifts, or every
``turn_every`` windows. It runs in a query of its own, so a turn being written never
holds up the windows.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pandas as pd
from pyspark.sql.streaming.stateful_processor import StatefulProcessor, StatefulProcessorHandle
from pyspark.sql.types import BooleanType, LongType, StringType, StructField, StructType

from appliance.fleet.venue_llm import VenueLLMConfig, write_turn
from appliance.fleet.venue_windows import NOBODY

OUTPUT_SCHEMA_DDL = ", ".join(
    [
        "venue STRING",
        "turn BIGINT",
        "window_start TIMESTAMP",
        "window_end TIMESTAMP",
        "dominant STRING",
        "shift BOOLEAN",
        "text STRING",
        "backend STRING",
    ]
)
OUTPUT_COLUMNS = [part.split()[0] for part in OUTPUT_SCHEMA_DDL.split(", ")]

STATE_SCHEMA = StructType(
    [
        StructField("turns", LongType()),
        StructField("last_label", StringType()),
        StructField("windows_since", LongType()),
        StructField("pending", BooleanType()),
        StructField("recent", StringType()),
    ]
)


class VenueStory(StatefulProcessor):
    def __init__(self, llm: VenueLLMConfig, turn_every: int) -> None:
        self.llm = llm
        self.turn_every = max(1, turn_every)

    def init(self, handle: StatefulProcessorHandle) -> None:
        self.state = handle.getValueState("venue_story", STATE_SCHEMA)

    def _load(self) -> dict[str, Any]:
        if self.state.exists():
            saved: tuple[Any, ...] = tuple(self.state.get() or ())
            turns, last_label, windows_since, pending, recent = saved
            return {
                "turns": int(turns),
                "last_label": last_label or "",
                "windows_since": int(windows_since),
                "pending": bool(pending),
                "recent": json.loads(recent or "[]"),
            }
        return {"turns": 0, "last_label": "", "windows_since": 0, "pending": False, "recent": []}

    def handleInputRows(  # noqa: N802 (Spark's name)
        self,
        key: Any,
        rows: Iterator[pd.DataFrame],
        timerValues: Any,  # noqa: N803 (Spark's name)
    ) -> Iterator[pd.DataFrame]:
        venue = str(key[0])
        state = self._load()
        windows = pd.concat(list(rows), ignore_index=True).sort_values("window_start")
        out: list[dict[str, Any]] = []
        for window in windows.to_dict("records"):
            label = str(window["dominant"])
            shift = label != NOBODY and bool(state["last_label"]) and label != state["last_label"]
            state["windows_since"] += 1
            if label == NOBODY:
                continue  # nobody there: nothing to tell
            due = state["turns"] == 0 or shift or state["pending"]
            due = due or state["windows_since"] >= self.turn_every
            if not due:
                continue
            written = write_turn(self.llm, venue, label, state["recent"], state["turns"])
            if written is None:
                state["pending"] = True  # rate-limited or failing: at a later window
                continue
            text, backend = written
            out.append(
                {
                    "venue": venue,
                    "window_start": window["window_start"],
                    "window_end": window["window_end"],
                    "dominant": label,
                    "turn": state["turns"],
                    "text": text,
                    "backend": backend,
                    "shift": shift,
                }
            )
            state["turns"] += 1
            state["last_label"] = label
            state["windows_since"] = 0
            state["pending"] = False
            state["recent"] = [*state["recent"], text][-self.llm.recent_turns :]
        self.state.update(
            (
                state["turns"],
                state["last_label"],
                state["windows_since"],
                state["pending"],
                json.dumps(state["recent"]),
            )
        )
        if out:
            frame = pd.DataFrame(out).reindex(columns=OUTPUT_COLUMNS)
            frame["turn"] = [int(v) for v in frame["turn"]]
            yield frame

    def close(self) -> None:
        pass
