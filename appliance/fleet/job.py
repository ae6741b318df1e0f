"""The fleet job: ``moodtale fleet run``.

    landing files (JSON Lines, one row per device per second)
        → watermark, tumbling windows per venue (exact means from sums and counts)
        → VenueStory (transformWithStateInPandas: each venue's story in the state store)
        → foreachBatch: two Delta tables, one commit each per micro-batch, idempotent

One streaming query, checkpointed: stop it, start it again with the same checkpoint, and
it goes on where it stopped, every venue's story included.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from appliance.fleet.delta_sink import BatchSink, DeltaSink
from appliance.fleet.venue_llm import VenueLLMConfig
from appliance.fleet.venue_story import OUTPUT_SCHEMA_DDL, VenueStory
from appliance.fleet.venue_windows import LANDING_SCHEMA_DDL, venue_windows

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.streaming.query import StreamingQuery

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


def story_stream(spark: SparkSession, settings: JobSettings) -> DataFrame:
    rows = (
        spark.readStream.schema(LANDING_SCHEMA_DDL)
        .option("maxFilesPerTrigger", settings.max_files_per_trigger)
        .json(settings.landing)
    )
    windows = venue_windows(rows, settings.window_s, settings.watermark_s)
    return windows.groupBy("venue").transformWithStateInPandas(
        statefulProcessor=VenueStory(settings.llm, settings.turn_every),
        outputStructType=OUTPUT_SCHEMA_DDL,
        outputMode="Append",
        timeMode="None",
    )


def write_batch(sink: BatchSink, batch: DataFrame, batch_id: int) -> None:
    """Split one micro-batch's output into windows and turns; one write each."""
    table = batch.toArrow()
    import pyarrow.compute as pc

    kind = table.column("kind")
    windows = table.filter(pc.equal(kind, "window"))
    turns = table.filter(pc.equal(kind, "turn"))
    from appliance.fleet.delta_sink import TURN_SCHEMA, WINDOW_SCHEMA

    sink.write(
        batch_id,
        windows.select(WINDOW_SCHEMA.names),
        turns.select(TURN_SCHEMA.names),
    )


def start(
    spark: SparkSession, settings: JobSettings, *, once: bool = False, sink: BatchSink | None = None
) -> StreamingQuery:
    """Start the query. ``once``: process what has landed, then stop (availableNow)."""
    chosen: BatchSink = sink or DeltaSink(settings.tables, app_id="moodtale-fleet")
    writer = (
        story_stream(spark, settings)
        .writeStream.foreachBatch(lambda batch, batch_id: write_batch(chosen, batch, batch_id))
        .option("checkpointLocation", settings.checkpoint)
        .queryName("moodtale-fleet")
    )
    if once:
        writer = writer.trigger(availableNow=True)
    else:
        writer = writer.trigger(processingTime=f"{settings.trigger_s} seconds")
    return writer.start()
