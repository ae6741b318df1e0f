"""``moodtale bench fleet``: the fleet job over generated landing files.

V venues x D devices x S seconds of rows (each device's file covers 10 s, as the
publisher rotates them, or ``file_seconds``), a micro-batch per file from each device.
The windows query runs first, then the story query over the windows it handed on, each
measured on its own: rows per CPU-second (the driver, its JVM and the Python workers;
on a standalone cluster, its workers and executors too), micro-batch latency, and the
peak memory of those processes. A small warm-up run goes first.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from appliance.bench.machine import machine_summary, package_version
from appliance.bench.process_tree import (
    MemoryMeter,
    cluster_workers,
    describe_memory,
    total_mb,
    tree_cpu_s,
    tree_peak_rss_parts,
)
from appliance.events import EMOTION_LABELS

if TYPE_CHECKING:
    from collections.abc import Callable

    from pyspark.sql import SparkSession
    from pyspark.sql.streaming.query import StreamingQuery

    from appliance.fleet.job import JobSettings
    from appliance.fleet.venue_llm import VenueLLMConfig

FILE_SECONDS = 10
START_SECOND = 1_767_225_600  # 2026-01-01T00:00:00Z


def device_file(rng: Any, venue: str, device: str, seconds: Any) -> bytes:
    """A landing file of one device's rows for ``seconds`` (a numpy int64 array): up to 6
    faces a second, each second's sums split at random over the emotions."""
    import numpy as np
    import pyarrow as pa

    from appliance.fleet.rows import landing_file_bytes, landing_schema

    count = len(seconds)
    faces = rng.integers(0, 7, count)
    weights = rng.random((count, len(EMOTION_LABELS)))
    sums = weights / weights.sum(axis=1, keepdims=True) * faces[:, None]
    columns = [
        pa.array([venue] * count),
        pa.array([device] * count),
        pa.array(np.asarray(seconds, dtype=np.int64)),
        pa.array(faces),
        *(pa.array(sums[:, i]) for i in range(len(EMOTION_LABELS))),
    ]
    return landing_file_bytes(pa.Table.from_arrays(columns, schema=landing_schema()))


def generate_landing(
    landing: Path,
    venues: int,
    devices: int,
    seconds: int,
    *,
    seed: int = 7,
    file_seconds: int = FILE_SECONDS,
    start_second: int = START_SECOND,
) -> int:
    """Write the rows the devices would, one Parquet file per device per ``file_seconds``,
    encoded as the publisher encodes them; returns how many rows."""
    import numpy as np

    from appliance.fleet.rows import landing_file_name

    rng = np.random.default_rng(seed)
    landing.mkdir(parents=True, exist_ok=True)
    rows = 0
    # Each period's files are dated when its devices would land them (the period's end), so
    # Spark reads them in that order: files within one millisecond it takes in the order the
    # file system lists them (on tmpfs newest first), and a later file first puts the
    # watermark past the rows of the earlier ones.
    landed_from = time.time_ns() - (seconds + file_seconds) * 1_000_000_000
    for first in range(0, seconds, file_seconds):
        stamp = landed_from + (first + file_seconds) * 1_000_000_000
        span = np.arange(first, min(first + file_seconds, seconds), dtype=np.int64)
        count = len(span)
        for v in range(venues):
            for d in range(devices):
                device = f"device-{v:05d}-{d:03d}"
                data = device_file(rng, f"venue-{v:05d}", device, start_second + span)
                name = landing_file_name(device, first)
                temporary = landing / f".{name}.tmp"
                temporary.write_bytes(data)
                os.replace(temporary, landing / name)
                os.utime(landing / name, ns=(stamp, stamp))
                rows += count
    return rows


def memory_line(peaks: list[tuple[str, float, dict[str, dict[str, float]]]], rss_mb: float) -> str:
    """The memory the job held at most while each named part ran (PSS of the driver, JVMs
    and Python workers, sampled each second), with its parts, and the old upper bound."""
    shown = "; ".join(f"{name} {mb:.0f} MB ({describe_memory(parts)})" for name, mb, parts in peaks)
    return (
        f"  memory in use at most (PSS, sampled each second): {shown}; each process's own "
        f"peak added up, shared pages counted in each: {rss_mb:.0f} MB"
    )


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    index = min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))
    return ordered[index]


@dataclass(frozen=True)
class FleetShape:
    venues: int = 50
    devices: int = 4
    seconds: int = 300
    file_seconds: int = FILE_SECONDS
    window_s: int = 10
    watermark_s: int | None = None
    """None: 10 s when a batch holds whole periods of files; ``file_seconds`` + 10 when a
    period's files are split across batches (the first puts the newest time a period
    ahead, and the rest would be late)."""
    trigger_s: int | None = None
    """Each micro-batch reads what the devices land in this many seconds (None:
    ``file_seconds``, one file from every device)."""

    @property
    def watermark(self) -> int:
        if self.watermark_s is not None:
            return self.watermark_s
        split = (self.trigger_s or self.file_seconds) < self.file_seconds
        return self.file_seconds + 10 if split else 10

    @property
    def files_per_batch(self) -> int:
        trigger = self.trigger_s or self.file_seconds
        return max(1, round(self.venues * self.devices * trigger / self.file_seconds))

    def problem(self) -> str | None:
        """Why no window would close, in a line (None: some will)."""
        needed = self.window_s + self.watermark + 1
        if self.seconds < needed:
            return (
                f"--seconds {self.seconds} is too short: with {self.window_s} s windows and a "
                f"{self.watermark} s watermark the first window closes once the rows span "
                f"{needed} s"
            )
        return None


@dataclass
class QueryFigures:
    rows: int = 0
    batches: int = 0
    dropped_late: int = 0
    """Rows the watermark dropped as late (Spark's own count)."""
    cpu_s: float = 0.0
    wall_s: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    memory_mb: float = 0.0
    """Memory in use at most while the query ran (PSS, sampled each second)."""
    memory_parts: dict[str, dict[str, float]] = field(default_factory=dict)

    def as_dict(self, prefix: str) -> dict[str, Any]:
        return {
            f"{prefix}_rows": self.rows,
            f"{prefix}_batches": self.batches,
            f"{prefix}_rows_dropped_late": self.dropped_late,
            f"{prefix}_cpu_s": round(self.cpu_s, 2),
            f"{prefix}_wall_s": round(self.wall_s, 2),
            f"{prefix}_rows_per_cpu_s": round(self.rows / self.cpu_s, 1) if self.cpu_s else 0.0,
            f"{prefix}_batch_ms_p50": round(percentile(self.latencies_ms, 0.5), 1),
            f"{prefix}_batch_ms_p95": round(percentile(self.latencies_ms, 0.95), 1),
            f"{prefix}_memory_mb": self.memory_mb,
            f"{prefix}_memory_parts": self.memory_parts,
        }


def _run_query(start: Callable[[], StreamingQuery], roots: list[int]) -> QueryFigures:
    """Start a query and run it to the end: its CPU from the first batch, its memory from
    before it starts (Spark's Python planners come and go as it does)."""
    with MemoryMeter(roots) as memory:
        query = start()
        cpu_before, started = tree_cpu_s(roots), time.perf_counter()
        query.awaitTermination()
        figures = QueryFigures(
            wall_s=time.perf_counter() - started, cpu_s=tree_cpu_s(roots) - cpu_before
        )
    figures.memory_mb, figures.memory_parts = memory.peak_mb, memory.peak_parts
    failure = query.exception()
    if failure is not None:
        raise RuntimeError(f"the fleet job failed: {failure}")
    figures.dropped_late = dropped_late(query)
    progress = [p for p in query.recentProgress if p.numInputRows > 0]
    figures.rows = sum(int(p.numInputRows) for p in progress)
    figures.batches = len(progress)
    figures.latencies_ms = [float(p.durationMs.get("triggerExecution", 0)) for p in progress]
    return figures


def dropped_late(query: StreamingQuery) -> int:
    return sum(
        int(operator.numRowsDroppedByWatermark)
        for progress in query.recentProgress
        for operator in progress.stateOperators
    )


def _table_rows(path: Path) -> int:
    """Rows in a Delta table; 0 when nothing was ever written to it."""
    from deltalake import DeltaTable

    if not (path / "_delta_log").is_dir():
        return 0
    return int(DeltaTable(str(path)).to_pyarrow_table().num_rows)


def _job_settings(root: Path, shape: FleetShape, story: VenueLLMConfig) -> JobSettings:
    from appliance.fleet.job import JobSettings

    return JobSettings(
        landing=str(root / "landing"),
        tables=root / "tables",
        checkpoint=str(root / "checkpoint"),
        llm=story,
        window_s=shape.window_s,
        watermark_s=shape.watermark,
        max_files_per_trigger=shape.files_per_batch,
    )


def _run_once(
    spark: SparkSession, root: Path, shape: FleetShape, story: VenueLLMConfig, roots: list[int]
) -> dict[str, Any]:
    """Generate the landing, run the windows query over it, then the story query over
    the windows it handed on; the figures of each."""
    from appliance.fleet.delta_sink import TURNS_TABLE, WINDOWS_TABLE, DeltaSink
    from appliance.fleet.job import start_story, start_windows

    rows = generate_landing(
        root / "landing", shape.venues, shape.devices, shape.seconds,
        file_seconds=shape.file_seconds,
    )  # fmt: skip
    files = len(list((root / "landing").iterdir()))
    job = _job_settings(root, shape, story)
    sink = DeltaSink(job.tables)
    windows = _run_query(lambda: start_windows(spark, job, sink, once=True), roots)
    # With no model (backend none) every turn is put off: what is left is the query's own
    # cost (the state store, a pandas frame per venue), which is what grows with venues.
    told = _run_query(lambda: start_story(spark, job, sink, once=True), roots)
    return {
        "rows": rows,
        "files": files,
        "landing_files_left": len(list((root / "landing").iterdir())),
        "windows_written": _table_rows(job.tables / WINDOWS_TABLE),
        "turns_written": _table_rows(job.tables / TURNS_TABLE),
        **windows.as_dict("windows"),
        **told.as_dict("story"),
    }


def run_fleet_bench(
    shape: FleetShape, *, master: str | None = None, story: VenueLLMConfig | None = None
) -> dict[str, Any]:
    """A warm-up run on a smaller landing (up to 100 venues x 10 devices: the JVM compiles
    its hot code in the first thousands of files, and a job that runs for months pays that
    once; a first run here took 34 CPU-s where the same run after it took 19), then the
    measured run."""
    from appliance.fleet.job import spark_session
    from appliance.fleet.venue_llm import VenueLLMConfig

    told = story or VenueLLMConfig(story={}, models_dir="", backend="none")
    spark = spark_session(master, "moodtale-fleet-bench")
    spark.conf.set("spark.sql.streaming.numRecentProgressUpdates", "100000")
    used_master = str(spark.sparkContext.master)
    roots = [os.getpid()] + (cluster_workers() if used_master.startswith("spark://") else [])
    warm = FleetShape(
        venues=min(shape.venues, 100), devices=min(shape.devices, 10),
        seconds=shape.window_s + shape.watermark + 3 * shape.file_seconds,
        file_seconds=shape.file_seconds, window_s=shape.window_s, watermark_s=shape.watermark_s,
        trigger_s=shape.trigger_s,
    )  # fmt: skip
    try:
        with tempfile.TemporaryDirectory(prefix="moodtale-fleet-warmup-") as scratch:
            _run_once(spark, Path(scratch), warm, told, roots)
        with tempfile.TemporaryDirectory(prefix="moodtale-fleet-bench-") as scratch:
            figures = _run_once(spark, Path(scratch), shape, told, roots)
        rss_parts = tree_peak_rss_parts(roots)  # before the Python workers stop with Spark
    finally:
        spark.stop()
    return {
        "venues": shape.venues,
        "devices": shape.devices,
        "seconds": shape.seconds,
        "file_seconds": shape.file_seconds,
        "window_s": shape.window_s,
        "watermark_s": shape.watermark,
        "trigger_s": shape.trigger_s or shape.file_seconds,
        "files_per_batch": shape.files_per_batch,
        "master": used_master,
        "story_backend": told.backend,
        **figures,
        "memory_mb": max(figures["windows_memory_mb"], figures["story_memory_mb"]),
        "rss_mb": total_mb(rss_parts),
        "rss_parts": rss_parts,
        "pyspark": package_version("pyspark"),
        "deltalake": package_version("deltalake"),
        **machine_summary(),
    }


def describe_fleet_bench(result: dict[str, Any]) -> str:
    lines = [
        f"fleet job (pyspark {result['pyspark']}, deltalake {result['deltalake']}, "
        f"master {result['master']}) on {result['cpu']}, {result['cores']} cores, "
        f"{result['arch']}",
        f"  {result['venues']} venues x {result['devices']} devices x {result['seconds']} s"
        f" = {result['rows']} rows in {result['files']} Parquet files"
        f" ({result['file_seconds']} s each); {result['landing_files_left']} left in the"
        " landing after the run",
        f"  windows query: {result['windows_rows']} rows in {result['windows_batches']} "
        f"micro-batches of up to {result['files_per_batch']} files (what lands in "
        f"{result['trigger_s']} s) -> {result['windows_written']} windows, "
        f"{result['windows_rows_dropped_late']} rows dropped as late "
        f"(watermark {result['watermark_s']} s); "
        f"{result['windows_rows_per_cpu_s']:.0f} rows per CPU-second "
        f"(CPU {result['windows_cpu_s']:.1f} s, wall {result['windows_wall_s']:.1f} s); "
        f"batch p50 {result['windows_batch_ms_p50']:.0f} ms, "
        f"p95 {result['windows_batch_ms_p95']:.0f} ms",
    ]
    model = (
        "no model: every turn put off"
        if result["story_backend"] == "none"
        else f"{result['story_backend']} model, rate-limited"
    )
    lines.append(
        f"  story query ({model}): {result['story_rows']} windows in "
        f"{result['story_batches']} micro-batches -> {result['turns_written']} turns; "
        f"{result['story_rows_per_cpu_s']:.0f} windows per CPU-second "
        f"(CPU {result['story_cpu_s']:.1f} s, wall {result['story_wall_s']:.1f} s); "
        f"batch p50 {result['story_batch_ms_p50']:.0f} ms, "
        f"p95 {result['story_batch_ms_p95']:.0f} ms"
    )
    lines.append(
        memory_line(
            [
                (query, result[f"{query}_memory_mb"], result[f"{query}_memory_parts"])
                for query in ("windows", "story")
            ],
            result["rss_mb"],
        )
    )
    return "\n".join(lines)
