"""``moodtale bench fleet --live MINUTES``: the fleet job running as it does at a venue.

V venues x D devices land a file each every ``file_seconds``, in real time (each device
at its own offset within the period, rows dated now), while the job runs both queries on
a processing-time trigger. Sampled every few seconds: what waits in the landing and in the
hand-off, the checkpoint's size and the memory. What a user wants to see: the landing
stays small, the batches keep up with the trigger, and every row that landed was read.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from appliance.bench.fleet_bench import (
    FleetShape,
    QueryFigures,
    device_file,
    dropped_late,
    memory_line,
    percentile,
)
from appliance.bench.machine import machine_summary, package_version
from appliance.bench.process_tree import (
    MemoryMeter,
    cluster_workers,
    total_mb,
    tree_cpu_s,
    tree_peak_rss_parts,
)

if TYPE_CHECKING:
    from pyspark.sql.streaming.query import StreamingQuery

    from appliance.fleet.venue_llm import VenueLLMConfig

SAMPLE_S = 10.0


SPAWN = multiprocessing.get_context("spawn")  # not a fork of a process with the JVM's threads


class Devices(SPAWN.Process):  # type: ignore[name-defined,misc]
    """Every device lands a file of its last ``file_seconds`` rows once per period. A
    process of its own, so that its CPU is not counted as the job's: at the end it
    reports the rows and files it landed and the CPU it used."""

    def __init__(self, landing: Path, shape: FleetShape) -> None:
        super().__init__(name="fleet-devices", daemon=True)
        self.landing, self.shape = landing, shape
        self.stop = SPAWN.Event()
        self.report: multiprocessing.Queue[tuple[int, int, float]] = SPAWN.Queue()
        self._seq: dict[str, int] = {}

    def run(self) -> None:
        rows = files = 0
        try:
            rows, files = self._land()
        finally:
            used = os.times()
            self.report.put((rows, files, used.user + used.system))

    def _land(self) -> tuple[int, int]:
        import numpy as np

        from appliance.fleet.rows import landing_file_name

        rng, period = np.random.default_rng(7), self.shape.file_seconds
        second = int(time.time())
        rows = files = 0
        while not self.stop.is_set():
            for index in range(self.shape.venues * self.shape.devices):
                if index % period != second % period:
                    continue  # each device lands at its own offset within the period
                venue, device = divmod(index, self.shape.devices)
                name = f"device-{venue:05d}-{device:03d}"
                seconds = np.arange(second - period, second, dtype=np.int64)
                data = device_file(rng, f"venue-{venue:05d}", name, seconds)
                seq = self._seq[name] = self._seq.get(name, -1) + 1
                final = self.landing / landing_file_name(name, seq)
                temporary = final.with_name(f".{final.name}.tmp")
                temporary.write_bytes(data)
                os.replace(temporary, final)
                rows += period
                files += 1
            second += 1
            self.stop.wait(max(0.0, second - time.time()))
        return rows, files


def _size(path: Path) -> tuple[int, int]:
    """(files, bytes) under ``path``, hidden temporaries left out."""
    files = size = 0
    for entry in path.rglob("*"):
        if entry.is_file() and not entry.name.startswith((".", "_")):
            files += 1
            size += entry.stat().st_size
    return files, size


def checkpoint_parts(checkpoint: Path) -> dict[str, int]:
    """Bytes on disk under the job's checkpoint, by part: ``ledger`` (the landing source's
    ``landing/`` directories), ``state`` (the state store) and ``logs`` (Spark's offsets,
    commits and metadata), checksums and temporaries included."""
    parts = {"ledger": 0, "state": 0, "logs": 0}
    for entry in checkpoint.rglob("*"):
        if entry.is_file():
            inside = entry.relative_to(checkpoint).parts
            part = "ledger" if "landing" in inside else "state" if "state" in inside else "logs"
            with contextlib.suppress(FileNotFoundError):  # Spark removes old files as we go
                parts[part] += entry.stat().st_size
    return parts


def _figures(query: StreamingQuery) -> QueryFigures:
    progress = [p for p in query.recentProgress if p.numInputRows > 0]
    return QueryFigures(
        dropped_late=dropped_late(query),
        rows=sum(int(p.numInputRows) for p in progress),
        batches=len(progress),
        latencies_ms=[float(p.durationMs.get("triggerExecution", 0)) for p in progress],
    )


def run_live_fleet_bench(
    shape: FleetShape, minutes: float, *, master: str | None = None, story: VenueLLMConfig
) -> dict[str, Any]:
    from appliance.fleet.delta_sink import DeltaSink
    from appliance.fleet.job import JobSettings, spark_session, start_story, start_windows

    trigger_s = shape.trigger_s or shape.file_seconds
    spark = spark_session(master, "moodtale-fleet-live")
    spark.conf.set("spark.sql.streaming.numRecentProgressUpdates", "100000")
    used_master = str(spark.sparkContext.master)
    roots = [os.getpid()] + (cluster_workers() if used_master.startswith("spark://") else [])
    root = Path(tempfile.mkdtemp(prefix="moodtale-fleet-live-"))
    landing = root / "landing"
    landing.mkdir()
    job = JobSettings(
        landing=str(landing), tables=root / "tables", checkpoint=str(root / "checkpoint"),
        llm=story, window_s=shape.window_s,
        # Devices land at their own times: a file's oldest row is a period old, and it may
        # wait a trigger to be read while newer files move the watermark on.
        watermark_s=(
            shape.file_seconds + trigger_s + 5 if shape.watermark_s is None else shape.watermark_s
        ),
        trigger_s=float(trigger_s),
        # Room for a backlog twice what lands in a trigger, and no more.
        max_files_per_trigger=2 * shape.files_per_batch,
    )  # fmt: skip
    devices = Devices(landing, shape)
    samples: list[dict[str, float]] = []
    cpu_before, started = tree_cpu_s(roots), time.monotonic()
    sink = DeltaSink(job.tables)
    queries = [start_windows(spark, job, sink), start_story(spark, job, sink)]
    devices.start()
    apart = frozenset({devices.pid or 0})  # the devices are not the job
    try:
        with MemoryMeter(roots, leave_out=apart) as memory:
            while time.monotonic() - started < minutes * 60:
                time.sleep(SAMPLE_S)
                failure = next((q.exception() for q in queries if q.exception()), None)
                if failure is not None:
                    raise RuntimeError(f"the fleet job failed: {failure}")
                files, size = _size(landing)
                handed, _ = _size(root / "tables" / "_closed_windows")
                parts = checkpoint_parts(root / "checkpoint")
                samples.append(
                    {
                        "s": round(time.monotonic() - started, 1),
                        "landing_files": files,
                        "landing_kb": round(size / 1024, 1),
                        "handoff_files": handed,
                        "checkpoint_mb": round(sum(parts.values()) / 1e6, 2),
                        **{f"{part}_kb": round(size / 1024, 1) for part, size in parts.items()},
                    }
                )
            devices.stop.set()
            rows_landed, files_landed, devices_cpu_s = devices.report.get(timeout=60)
            devices.join()
            cpu_s = tree_cpu_s(roots) - cpu_before - devices_cpu_s
            windows, told = (_figures(q) for q in queries)
            rss_parts = tree_peak_rss_parts(roots, apart)  # the queries' processes alive
            memory.sample()
            settled_mb = memory.last_mb
            for query in queries:
                query.stop()
    finally:
        devices.stop.set()
        spark.stop()
        shutil.rmtree(root, ignore_errors=True)
    late = samples[len(samples) // 2 :]
    return {
        "live_minutes": minutes,
        "venues": shape.venues,
        "devices": shape.devices,
        "file_seconds": shape.file_seconds,
        "trigger_s": trigger_s,
        "master": used_master,
        "story_backend": story.backend,
        "rows_landed": rows_landed,
        "files_landed": files_landed,
        "windows_rows": windows.rows,
        "windows_batches": windows.batches,
        "watermark_s": job.watermark_s,
        "rows_dropped_late": windows.dropped_late,
        "windows_batch_ms_p50": round(percentile(windows.latencies_ms, 0.5), 1),
        "windows_batch_ms_p95": round(percentile(windows.latencies_ms, 0.95), 1),
        "story_rows": told.rows,
        "cpu_s": round(cpu_s, 1),
        "rows_per_cpu_s": round(windows.rows / cpu_s, 1) if cpu_s else 0.0,
        "landing_files_max": max((s["landing_files"] for s in samples), default=0),
        "landing_files_max_second_half": max((s["landing_files"] for s in late), default=0),
        "landing_files_last": samples[-1]["landing_files"] if samples else 0,
        "landing_kb_max": max((s["landing_kb"] for s in samples), default=0.0),
        "handoff_files_max": max((s["handoff_files"] for s in samples), default=0),
        "checkpoint_mb_first": samples[0]["checkpoint_mb"] if samples else 0.0,
        "checkpoint_mb_last": samples[-1]["checkpoint_mb"] if samples else 0.0,
        "checkpoint_mb_max_second_half": max((s["checkpoint_mb"] for s in late), default=0.0),
        "ledger_kb_max": max((s["ledger_kb"] for s in samples), default=0.0),
        "ledger_kb_last": samples[-1]["ledger_kb"] if samples else 0.0,
        "samples": samples,
        "memory_mb": memory.peak_mb,
        "memory_parts": memory.peak_parts,
        "memory_mb_last": settled_mb,
        "rss_mb": total_mb(rss_parts),
        "rss_parts": rss_parts,
        "pyspark": package_version("pyspark"),
        **machine_summary(),
    }


def describe_live_fleet_bench(result: dict[str, Any]) -> str:
    every = max(1, len(result["samples"]) // 6)
    shown = ", ".join(f"{s['s']:.0f} s: {s['landing_files']}" for s in result["samples"][::every])
    checkpoints = ", ".join(
        f"{s['s']:.0f} s: {s['checkpoint_mb']:.2f}" for s in result["samples"][::every]
    )
    return "\n".join(
        [
            f"fleet job, live for {result['live_minutes']:g} min (pyspark {result['pyspark']}, "
            f"master {result['master']}) on {result['cpu']}, {result['cores']} cores",
            f"  {result['venues']} venues x {result['devices']} devices, a file each every "
            f"{result['file_seconds']} s: {result['rows_landed']} rows in "
            f"{result['files_landed']} files landed; trigger every {result['trigger_s']} s",
            f"  windows query: {result['windows_rows']} rows read in "
            f"{result['windows_batches']} micro-batches, {result['rows_dropped_late']} dropped "
            f"as late (watermark {result['watermark_s']} s), batch p50 "
            f"{result['windows_batch_ms_p50']:.0f} ms, p95 {result['windows_batch_ms_p95']:.0f}"
            f" ms; {result['rows_per_cpu_s']:.0f} rows per CPU-second (both queries, CPU "
            f"{result['cpu_s']:.1f} s)",
            f"  files waiting in the landing: at most {result['landing_files_max']} "
            f"({result['landing_kb_max']:.0f} KB), at most "
            f"{result['landing_files_max_second_half']} in the second half, "
            f"{result['landing_files_last']} at the end ({shown})",
            f"  hand-off files at most {result['handoff_files_max']}; checkpoint "
            f"{result['checkpoint_mb_first']:.2f} MB -> {result['checkpoint_mb_last']:.2f} MB, "
            f"at most {result['checkpoint_mb_max_second_half']:.2f} MB in the second half "
            f"({checkpoints}); of it the landing ledgers at most {result['ledger_kb_max']:.1f} "
            f"KB, {result['ledger_kb_last']:.1f} KB at the end",
            memory_line(
                [("both queries", result["memory_mb"], result["memory_parts"])],
                result["rss_mb"],
            )
            + f"; at the end, {result['memory_mb_last']:.0f} MB in use",
        ]
    )
