"""``moodtale bench fleet``: the fleet job over generated landing files.

V venues x D devices x S seconds of rows (each device's file covers 10 s, as the
publisher rotates them, or ``file_seconds``), a micro-batch per file from each device, no
story model (the job's own cost: reading, windows, state, Delta). Measured: rows per
second of wall time, rows per CPU-second (the driver, its JVM and the Python workers
together), micro-batch latency, and peak memory of that process tree.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from appliance.bench.machine import machine_summary, package_version
from appliance.events import EMOTION_LABELS

FILE_SECONDS = 10
START_SECOND = 1_767_225_600  # 2026-01-01T00:00:00Z


def generate_landing(
    landing: Path,
    venues: int,
    devices: int,
    seconds: int,
    *,
    seed: int = 7,
    file_seconds: int = FILE_SECONDS,
) -> int:
    """Write the rows the devices would, one file per device per ``file_seconds``;
    returns how many rows."""
    rng = random.Random(seed)
    landing.mkdir(parents=True, exist_ok=True)
    rows = 0
    # Each period's files are dated when its devices would land them (the period's end), so
    # Spark reads them in that order: files within one millisecond it takes in the order the
    # file system lists them (on tmpfs newest first), and a later file first puts the
    # watermark past the rows of the earlier ones.
    landed_from = time.time_ns() - (seconds + file_seconds) * 1_000_000_000
    for first in range(0, seconds, file_seconds):
        stamp = landed_from + (first + file_seconds) * 1_000_000_000
        for v in range(venues):
            for d in range(devices):
                lines = []
                for second in range(first, min(first + file_seconds, seconds)):
                    faces = rng.randint(0, 6)
                    weights = [rng.random() for _ in EMOTION_LABELS]
                    total = sum(weights)
                    row: dict[str, Any] = {
                        "venue": f"venue-{v:05d}",
                        "device": f"device-{v:05d}-{d:03d}",
                        "second": START_SECOND + second,
                        "faces": faces,
                    }
                    for label, weight in zip(EMOTION_LABELS, weights, strict=True):
                        row[label] = faces * weight / total
                    lines.append(json.dumps(row))
                rows += len(lines)
                name = f"device-{v:05d}-{d:03d}-{first:012d}.jsonl"
                temporary = landing / f".{name}.tmp"
                temporary.write_text("\n".join(lines) + "\n")
                os.replace(temporary, landing / name)
                os.utime(landing / name, ns=(stamp, stamp))
    return rows


def _tree(root: int) -> list[int]:
    """``root`` and every process descended from it (the JVM, the Python workers)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def tree_cpu_s(root: int) -> float:
    """CPU seconds used by the process tree (living processes, and the children they
    have waited for)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in _tree(root):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        utime, stime, cutime, cstime = (int(f) for f in fields[11:15])
        total += (utime + stime + cutime + cstime) / tick
    return total


def tree_peak_rss_mb(root: int) -> float:
    total_kb = 0
    for pid in _tree(root):
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total_kb += int(line.split()[1])
        except OSError:
            continue
    return total_kb / 1024


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    index = min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))
    return ordered[index]


def run_fleet_bench(
    venues: int, devices: int, seconds: int, file_seconds: int = FILE_SECONDS
) -> dict[str, Any]:
    from appliance.fleet.job import JobSettings, spark_session, start
    from appliance.fleet.venue_llm import VenueLLMConfig

    with tempfile.TemporaryDirectory(prefix="moodtale-fleet-bench-") as scratch:
        root = Path(scratch)
        rows = generate_landing(
            root / "landing", venues, devices, seconds, file_seconds=file_seconds
        )
        files = len(list((root / "landing").iterdir()))
        spark = spark_session("local[2]", "moodtale-fleet-bench")
        spark.conf.set("spark.sql.streaming.numRecentProgressUpdates", "100000")
        job = JobSettings(
            landing=str(root / "landing"),
            tables=root / "tables",
            checkpoint=str(root / "checkpoint"),
            llm=VenueLLMConfig(story={}, models_dir="", backend="none"),
            window_s=10,
            watermark_s=10,
            # A batch: one file from every device (file_seconds of rows).
            max_files_per_trigger=venues * devices,
        )
        cpu_before = tree_cpu_s(os.getpid())
        started = time.perf_counter()
        running = start(spark, job, once=True)  # the windows query (no story model)
        running.await_termination()
        wall_s = time.perf_counter() - started
        cpu_s = tree_cpu_s(os.getpid()) - cpu_before
        rss_mb = tree_peak_rss_mb(os.getpid())
        failure = running.exception()
        if failure is not None:
            raise RuntimeError(f"the fleet job failed: {failure}")
        progress = [p for p in running.windows.recentProgress if p.numInputRows > 0]
        latencies = [float(p.durationMs.get("triggerExecution", 0)) for p in progress]
        read_rows = sum(int(p.numInputRows) for p in progress)
        from deltalake import DeltaTable

        windows = DeltaTable(str(job.tables / "venue_windows")).to_pyarrow_table().num_rows
        spark.stop()
    return {
        "venues": venues,
        "devices": devices,
        "seconds": seconds,
        "rows": rows,
        "files": files,
        "file_seconds": file_seconds,
        "rows_read": read_rows,
        "windows_written": windows,
        "batches": len(progress),
        "wall_s": round(wall_s, 2),
        "cpu_s": round(cpu_s, 2),
        "rows_per_s": round(rows / wall_s, 1),
        "rows_per_cpu_s": round(rows / cpu_s, 1) if cpu_s > 0 else 0.0,
        "batch_latency_ms_p50": round(statistics.median(latencies), 1) if latencies else 0.0,
        "batch_latency_ms_p95": round(percentile(latencies, 0.95), 1),
        "rss_mb": round(rss_mb, 1),
        "pyspark": package_version("pyspark"),
        "deltalake": package_version("deltalake"),
        **machine_summary(),
    }


def describe_fleet_bench(result: dict[str, Any]) -> str:
    return "\n".join(
        [
            f"fleet job (pyspark {result['pyspark']}, deltalake {result['deltalake']}) on "
            f"{result['cpu']}, {result['cores']} cores, {result['arch']}",
            f"  {result['venues']} venues x {result['devices']} devices x {result['seconds']} s"
            f" = {result['rows']} rows in {result['files']} files"
            f" ({result['file_seconds']} s each), {result['batches']} micro-batches"
            f" -> {result['windows_written']} windows",
            f"  {result['rows_per_s']:.0f} rows/s (wall {result['wall_s']:.1f} s), "
            f"{result['rows_per_cpu_s']:.0f} rows per CPU-second (CPU {result['cpu_s']:.1f} s)",
            f"  micro-batch latency p50 {result['batch_latency_ms_p50']:.0f} ms, "
            f"p95 {result['batch_latency_ms_p95']:.0f} ms",
            f"  peak memory (driver, JVM, Python workers) {result['rss_mb']:.0f} MB",
        ]
    )
