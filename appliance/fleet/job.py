"""The fleet job: ``moodtale fleet run``. Two streaming queries, each checkpointed:

    windows query: landing files (Parquet, one row per device per second)
        → watermark, tumbling windows per venue (exact means from sums and counts),
          all in the JVM: no Python on the per-row path
        → foreachBatch: the venue_windows Delta table (one idempotent commit per batch)
          and the batch's closed windows handed on as one Parquet file
    story query: the handed-on windows
        → VenueStory (transformWithStateInPandas: each venue's story in the state store)
        → foreachBatch: the venue_turns Delta table (one idempotent commit per batch)

The story model is only ever called in the story query, so a turn being written never
holds up the windows. Stop the job, start it again with the same checkpoint, and both go
on where they stopped, every venue's story included.

Both read with ``landing_source`` (files named by device and sequence number): a file is
deleted (or archived) once Spark has committed the batch that read it and planned the next
(when it tells the source), and the checkpoint
remembers each device's newest file, not every file ever read, so it stays the same size
however long the job runs. The batch Spark replays after a crash reads the same files.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from appliance.events import EMOTION_LABELS
from appliance.fleet.delta_sink import WINDOW_SCHEMA, BatchSink, DeltaSink
from appliance.fleet.local_jvm import DRIVER_JVM_OPTIONS, JOB_OPTIONS_KEY, user_jvm_options
from appliance.fleet.spool import write_atomically
from appliance.fleet.venue_llm import VenueLLMConfig
from appliance.fleet.venue_story import OUTPUT_SCHEMA_DDL, VenueStory
from appliance.fleet.venue_windows import LANDING_SCHEMA_DDL, venue_windows

if TYPE_CHECKING:
    from collections.abc import Mapping

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
    max_files_per_trigger: int = 10_000
    """A micro-batch reads at most this many landing files (the oldest first)."""
    trigger_s: float = 5.0
    cleanup: Literal["delete", "archive", "off"] = "delete"
    """What becomes of a landing file the job has read and committed."""
    archive: str | None = None
    """Where read landing files go with ``cleanup = "archive"`` (same file system, outside
    the landing)."""


SESSION_DEFAULTS = {
    "spark.sql.shuffle.partitions": "2",
    "spark.sql.streaming.stateStore.providerClass": ROCKSDB,
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    # Spark needs the last batch's offsets and state to go on after a crash; it keeps 100
    # batches of them by default (a replay from further back would write the tables again).
    "spark.sql.streaming.minBatchesToRetain": "10",
    # The windows' state: each batch writes what changed, not a new copy of the store.
    "spark.sql.streaming.stateStore.rocksdb.changelogCheckpointing.enabled": "true",
    # Spark keeps a Python daemon, and a pool of idle workers, per set of worker settings;
    # the landing source's readers and the story's pandas UDF differed only in this one,
    # so each query had a daemon and workers of its own (about 150 MB more). The cost: a
    # Python error in the job shows Spark's frames in its traceback too.
    "spark.sql.execution.pyspark.udf.simplifiedTraceback.enabled": "false",
}
"""The job's session settings, unless the launcher (spark-submit --conf, spark-defaults.conf)
set them."""
LOCAL_DEFAULTS = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    JOB_OPTIONS_KEY: DRIVER_JVM_OPTIONS,
}
"""Run directly (not by spark-submit): no web UI, no progress bars on the terminal, the
serial garbage collector (``local_jvm``). Under spark-submit, the launcher's settings stand."""


def local_defaults(environ: Mapping[str, str]) -> dict[str, str]:
    """``LOCAL_DEFAULTS``, less the JVM options if the user gave the driver's own; nothing
    under spark-submit (its JVM is already running, with the launcher's settings)."""
    if submitted(environ):
        return {}
    given = user_jvm_options(environ)
    if given is None:
        return dict(LOCAL_DEFAULTS)
    log.info("JVM options given in %s: the job does not choose the garbage collector", given)
    return {k: v for k, v in LOCAL_DEFAULTS.items() if k != JOB_OPTIONS_KEY}


def submitted(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether spark-submit launched this process (it hands it the JVM it started)."""
    return "PYSPARK_GATEWAY_PORT" in environ


def spark_session(master: str | None = None, app_name: str = "moodtale-fleet") -> SparkSession:
    """A session fit for the job: RocksDB state store (what transformWithState needs),
    Python workers from this interpreter, UTC.

    ``master``: None keeps the one spark-submit gave, or ``local[2]`` when run directly."""
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    builder = SparkSession.builder.appName(app_name)
    if master is not None or not submitted():
        builder = builder.master(master or "local[2]")
    for key, value in local_defaults(os.environ).items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    given = spark.sparkContext.getConf()
    for key, value in SESSION_DEFAULTS.items():
        if not given.contains(key):
            spark.conf.set(key, value)
    spark.sparkContext.setLogLevel("ERROR")
    logging.getLogger("py4j").setLevel(logging.WARNING)  # one line per JVM call at INFO
    log.info(
        "Spark %s on %s, %s shuffle partitions",
        spark.version,
        spark.sparkContext.master,
        spark.conf.get("spark.sql.shuffle.partitions"),
    )
    return spark


WINDOWS_SCHEMA_DDL = ", ".join(
    ["venue STRING", "window_start TIMESTAMP", "window_end TIMESTAMP"]
    + ["faces BIGINT", "devices BIGINT", "rows BIGINT"]
    + [f"{label} DOUBLE" for label in EMOTION_LABELS]
    + ["dominant STRING"]
)
HANDOFF = "_closed_windows"
"""Under the tables root: the windows query's closed windows, one Parquet file per batch,
named by batch id. The story query deletes each once it has read it."""
HANDED_ON = "_handed_on"
"""In the hand-off directory (not a landing file name, so never read): the newest batch id
whose file was written. A replayed batch at or below it writes no file again (the story
query may have read and deleted it; a second copy would be dropped as a resend)."""


def handoff_dir(settings: JobSettings) -> Path:
    return settings.tables / HANDOFF


def landing_options(settings: JobSettings) -> dict[str, str]:
    """The landing source's options: batch size and what becomes of a file once read."""
    if settings.cleanup == "archive" and not settings.archive:
        raise ValueError("cleanup 'archive' needs an archive directory")
    options = {
        "maxFilesPerTrigger": str(settings.max_files_per_trigger),
        "cleanup": settings.cleanup,
    }
    if settings.cleanup == "archive" and settings.archive:
        options["archive"] = settings.archive
    return options


def read_landing(
    spark: SparkSession, schema: str, path: str, ledger: str, **options: str
) -> DataFrame:
    """A streaming read of device-named Parquet files (``landing_source``)."""
    from appliance.fleet.landing_source import NAME, LandingSource

    spark.dataSource.register(LandingSource)
    return (
        spark.readStream.format(NAME)
        .schema(schema)
        .option("ledger", ledger)
        .option("tasks", spark.sparkContext.defaultParallelism)  # a read task per core
        .options(**options)
        .load(path)
    )


def windows_stream(spark: SparkSession, settings: JobSettings) -> DataFrame:
    ledger = f"{settings.checkpoint.rstrip('/')}/windows/landing"
    rows = read_landing(
        spark, LANDING_SCHEMA_DDL, settings.landing, ledger, **landing_options(settings)
    )
    return venue_windows(rows, settings.window_s, settings.watermark_s)


def story_stream(spark: SparkSession, settings: JobSettings) -> DataFrame:
    handoff_dir(settings).mkdir(parents=True, exist_ok=True)
    ledger = f"{settings.checkpoint.rstrip('/')}/story/landing"
    windows = read_landing(
        spark, WINDOWS_SCHEMA_DDL, str(handoff_dir(settings)), ledger,
        cleanup="delete", maxFilesPerTrigger="1000",
    )  # fmt: skip
    return windows.groupBy("venue").transformWithStateInPandas(
        statefulProcessor=VenueStory(settings.llm, settings.turn_every),
        outputStructType=OUTPUT_SCHEMA_DDL,
        outputMode="Append",
        timeMode="None",
    )


def write_windows(sink: BatchSink, handoff: Path | None, batch: DataFrame, batch_id: int) -> None:
    """The windows table first, then the hand-off file (so the story never runs ahead
    of the table); both are idempotent for a replayed batch. ``handoff`` None: no story
    query reads them, so none is written."""
    import pyarrow.parquet as pq

    table = batch.toArrow()
    sink.write_windows(batch_id, table)
    if handoff is None or table.num_rows == 0 or batch_id <= handed_on(handoff):
        return
    handoff.mkdir(parents=True, exist_ok=True)
    name = f"windows-{batch_id:012d}.parquet"
    temporary = handoff / f".{name}.tmp"  # hidden from the landing source
    pq.write_table(table.select(WINDOW_SCHEMA.names).cast(WINDOW_SCHEMA), temporary)
    os.replace(temporary, handoff / name)
    write_atomically(handoff / HANDED_ON, f"{batch_id}\n".encode())


def handed_on(handoff: Path) -> int:
    """The newest batch whose closed windows were handed on (-1: none yet)."""
    try:
        return int((handoff / HANDED_ON).read_text())
    except (FileNotFoundError, ValueError):
        return -1


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


def start_windows(
    spark: SparkSession,
    settings: JobSettings,
    sink: BatchSink,
    *,
    once: bool = False,
    hand_off: bool = True,
) -> StreamingQuery:
    """The windows query: landing files in, the windows table and (``hand_off``: for a
    story query) the hand-off out."""
    handoff = handoff_dir(settings) if hand_off else None
    writer = (
        windows_stream(spark, settings)
        .writeStream.foreachBatch(lambda b, i: write_windows(sink, handoff, b, i))
        .option("checkpointLocation", f"{settings.checkpoint.rstrip('/')}/windows")
        .queryName("moodtale-fleet-windows")
    )
    return _trigger(writer, settings, once).start()


def start_story(
    spark: SparkSession, settings: JobSettings, sink: BatchSink, *, once: bool = False
) -> StreamingQuery:
    """The story query: the handed-on windows in, the turns table out."""
    writer = (
        story_stream(spark, settings)
        .writeStream.foreachBatch(lambda b, i: write_turns(sink, b, i))
        .option("checkpointLocation", f"{settings.checkpoint.rstrip('/')}/story")
        .queryName("moodtale-fleet-story")
    )
    return _trigger(writer, settings, once).start()


def start(
    spark: SparkSession, settings: JobSettings, *, once: bool = False, sink: BatchSink | None = None
) -> FleetJob:
    """Start both queries (the story one only when there is a story model).

    ``once``: process what has landed, then stop (availableNow): the windows query runs
    to its end first, then the story query reads every window it handed on."""
    chosen: BatchSink = sink or DeltaSink(settings.tables)
    telling = settings.llm.backend != "none"
    windows = start_windows(spark, settings, chosen, once=once, hand_off=telling)
    if not telling:
        return FleetJob(spark, windows, None)
    if once:
        windows.awaitTermination()
        if windows.exception() is not None:
            return FleetJob(spark, windows, None)
    return FleetJob(spark, windows, start_story(spark, settings, chosen, once=once))
