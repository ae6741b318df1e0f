"""The fleet job: ``moodtale fleet run``. Two streaming queries, each checkpointed:

    windows query: landing files (JSON Lines, one row per device per second)
        → watermark, tumbling windows per venue (exact means from sums and counts)
        → foreachBatch: the venue_windows Delta table (one idempotent commit per batch)
          and the batch's closed windows handed on as one Parquet file
    story query: the handed-on windows
        → VenueStory (transformWithStateInPandas: each venue's story in the state store)
        → foreachBatch: the venue_turns Delta table (one idempotent commit per batch)

The story model is only ever called in the story query, so a turn being written never
holds up the windows. Stop the job, start it again with the same checkpoint, and both go
on where they stopped, every venue's story included.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from appliance.events import EMOTION_LABELS
from appliance.fleet.delta_sink import WINDOW_SCHEMA, BatchSink, DeltaSink
from appliance.fleet.venue_llm import VenueLLMConfig
from appliance.fleet.venue_story import OUTPUT_SCHEMA_DDL, VenueStory
from appliance.fleet.venue_windows import LANDING_SCHEMA_DDL, venue_windows

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.streaming.query import StreamingQuery
    from pyspark.sql.streaming.readwriter import DataStreamWriter

log = logging.getLogger(__name__)

ROCKSDB = "org.apache.spark.sql.execution.streaming.state.RocksDBStateStoreProvider"


@dataclass(frozen=True)
class JobSettings:
    landing: str
    """Where the devices' files land (a directory, or a URI Spark can read)."""
    tables: Path
    """Where the Delta tables go."""
    checkpoint: str
    """The query's checkpoint (offsets, commits, state store)."""
    llm: VenueLLMConfig
    window_s: int = 10
    watermark_s: int = 30
    turn_every: int = 6
    """A turn every this many windows, or sooner when the venue's mood shifts."""
    max_files_per_trigger: int = 1000
    trigger_s: float = 5.0


def spark_session(master: str = "local[2]", app_name: str = "moodtale-fleet") -> SparkSession:
    """A session fit for the job: RocksDB state store (what transformWithState needs),
    Python workers from this interpreter, UTC, no UI."""
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    spark = (
        SparkSession.builder.master(master)
        .appName(app_name)
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.sql.streaming.stateStore.providerClass", ROCKSDB)
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    logging.getLogger("py4j").setLevel(logging.WARNING)  # one line per JVM call at INFO
    return spark


WINDOWS_SCHEMA_DDL = ", ".join(
    ["venue STRING", "window_start TIMESTAMP", "window_end TIMESTAMP"]
    + ["faces BIGINT", "devices BIGINT", "rows BIGINT"]
    + [f"{label} DOUBLE" for label in EMOTION_LABELS]
    + ["dominant STRING"]
)
HANDOFF = "_closed_windows"
"""Under the tables root: the windows query's closed windows, one Parquet file per batch,
named by batch id (a replayed batch rewrites the same file, which the story query has
already seen: nothing is told twice)."""


def handoff_dir(settings: JobSettings) -> Path:
    return settings.tables / HANDOFF


def windows_stream(spark: SparkSession, settings: JobSettings) -> DataFrame:
    rows = (
        spark.readStream.schema(LANDING_SCHEMA_DDL)
        .option("maxFilesPerTrigger", settings.max_files_per_trigger)
        .json(settings.landing)
    )
    return venue_windows(rows, settings.window_s, settings.watermark_s)


def story_stream(spark: SparkSession, settings: JobSettings) -> DataFrame:
    handoff_dir(settings).mkdir(parents=True, exist_ok=True)
    windows = spark.readStream.schema(WINDOWS_SCHEMA_DDL).parquet(str(handoff_dir(settings)))
    return windows.groupBy("venue").transformWithStateInPandas(
        statefulProcessor=VenueStory(settings.llm, settings.turn_every),
        outputStructType=OUTPUT_SCHEMA_DDL,
        outputMode="Append",
        timeMode="None",
    )


def write_windows(sink: BatchSink, handoff: Path, batch: DataFrame, batch_id: int) -> None:
    """The windows table first, then the hand-off file (so the story never runs ahead
    of the table); both are idempotent for a replayed batch."""
    import pyarrow.parquet as pq

    table = batch.toArrow()
    sink.write_windows(batch_id, table)
    if table.num_rows == 0:
        return
    handoff.mkdir(parents=True, exist_ok=True)
    name = f"windows-{batch_id:012d}.parquet"
    temporary = handoff / f".{name}.tmp"  # hidden from Spark's file source
    pq.write_table(table.select(WINDOW_SCHEMA.names).cast(WINDOW_SCHEMA), temporary)
    os.replace(temporary, handoff / name)


def write_turns(sink: BatchSink, batch: DataFrame, batch_id: int) -> None:
    sink.write_turns(batch_id, batch.toArrow())


@dataclass
class FleetJob:
    spark: SparkSession
    windows: StreamingQuery
    story: StreamingQuery | None

    @property
    def queries(self) -> list[StreamingQuery]:
        return [q for q in (self.windows, self.story) if q is not None]

    def await_termination(self, timeout_s: float | None = None) -> None:
        """Until every query has ended (or failed), or ``timeout_s`` has passed."""
        spark = self.spark
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while any(q.isActive for q in self.queries) and self.exception() is None:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return
            try:
                spark.streams.awaitAnyTermination(max(1, int(min(left or 5.0, 5.0))))
            except Exception:  # a query failed: ``exception()`` says how
                return
            spark.streams.resetTerminated()

    def exception(self) -> Exception | None:
        for query in self.queries:
            failure = query.exception()
            if failure is not None:
                return failure
        return None

    def stop(self) -> None:
        for query in self.queries:
            query.stop()


def _trigger(writer: DataStreamWriter, settings: JobSettings, once: bool) -> DataStreamWriter:
    if once:
        return writer.trigger(availableNow=True)
    return writer.trigger(processingTime=f"{settings.trigger_s} seconds")


def start(
    spark: SparkSession, settings: JobSettings, *, once: bool = False, sink: BatchSink | None = None
) -> FleetJob:
    """Start both queries (the story one only when there is a story model).

    ``once``: process what has landed, then stop (availableNow): the windows query runs
    to its end first, then the story query reads every window it handed on."""
    chosen: BatchSink = sink or DeltaSink(settings.tables)
    handoff = handoff_dir(settings)
    checkpoint = settings.checkpoint.rstrip("/")
    windows_writer = (
        windows_stream(spark, settings)
        .writeStream.foreachBatch(lambda b, i: write_windows(chosen, handoff, b, i))
        .option("checkpointLocation", f"{checkpoint}/windows")
        .queryName("moodtale-fleet-windows")
    )
    windows = _trigger(windows_writer, settings, once).start()
    if settings.llm.backend == "none":
        return FleetJob(spark, windows, None)
    if once:
        windows.awaitTermination()
        if windows.exception() is not None:
            return FleetJob(spark, windows, None)
    story_writer = (
        story_stream(spark, settings)
        .writeStream.foreachBatch(lambda b, i: write_turns(chosen, b, i))
        .option("checkpointLocation", f"{checkpoint}/story")
        .queryName("moodtale-fleet-story")
    )
    return FleetJob(spark, windows, _trigger(story_writer, settings, once).start())
