"""The fleet benchmarks' memory figures: every living process of the trees, by kind."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from appliance.bench.process_tree import (
    MemoryMeter,
    describe_memory,
    kind,
    total_mb,
    tree_peak_rss_parts,
    tree_pss_parts,
)

HOLDER = (
    "import sys, time\nblock = bytearray(40 * 1024 * 1024)\nsys.stdout.write('up\\n')\n"
    "sys.stdout.flush()\ntime.sleep(60)\n"
)


@contextmanager
def holders(folder: Path, *commands: list[str]) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Child processes that each hold 40 MB of their own until the block ends."""
    (folder / "holder.py").write_text(HOLDER)
    env = {**os.environ, "PYTHONPATH": str(folder)}
    children = [subprocess.Popen(c, env=env, stdout=subprocess.PIPE) for c in commands]
    try:
        for child in children:
            assert child.stdout is not None and child.stdout.readline() == b"up\n"
        yield children
    finally:
        for child in children:
            child.kill()
            child.wait()


def test_memory_counts_every_child_by_what_it_runs(tmp_path: Path) -> None:
    module = [sys.executable, "-m", "holder"]
    with holders(tmp_path, module, module, [sys.executable, str(tmp_path / "holder.py")]):
        peaks = tree_peak_rss_parts([os.getpid()])
        now = tree_pss_parts([os.getpid()])
    for parts in (peaks, now):
        assert parts["this process"]["processes"] == 1 and parts["this process"]["mb"] > 10
        # Each holder keeps 40 MB of its own; two run as `-m holder`.
        assert parts["holder"]["processes"] == 2 and parts["holder"]["mb"] > 2 * 40
        assert parts["holder.py"]["processes"] == 1 and parts["holder.py"]["mb"] > 40
    # Shared pages (the interpreter, its libraries) count once in all for PSS.
    assert total_mb(now) < total_mb(peaks)
    shown = describe_memory(peaks).split(", ")
    assert len(shown) == len(peaks)
    assert any(s.startswith("holder ") and s.endswith("(2)") for s in shown)
    sizes = [float(s.rsplit(" MB", 1)[0].rsplit(" ", 1)[1]) for s in shown]
    assert sizes == sorted(sizes, reverse=True)  # largest first


def test_the_meter_keeps_the_highest_sample_and_leaves_out_what_it_is_told(
    tmp_path: Path,
) -> None:
    meter = MemoryMeter([os.getpid()], interval_s=0.05)
    with meter, holders(tmp_path, [sys.executable, "-m", "holder"]) as (child,):
        meter.sample()
        apart = MemoryMeter([os.getpid()], leave_out=frozenset({child.pid}))
        apart.sample()
    # The holder has gone by the end, but the peak was taken while it ran.
    assert meter.peak_parts["holder"]["processes"] == 1
    assert meter.peak_mb == total_mb(meter.peak_parts) > 40
    assert meter.last_mb < meter.peak_mb - 30  # sampled again after the holder had gone
    assert "holder" not in apart.peak_parts and apart.peak_mb < meter.peak_mb - 30


def test_a_process_is_named_by_what_it_runs() -> None:
    assert kind(os.getpid(), []) == "this process"
    assert (
        kind(1, ["/usr/lib/jvm/bin/java", "-cp", "x", "org.apache.spark.deploy.SparkSubmit"])
        == "JVM"
    )
    python = "/venv/bin/python"
    assert kind(1, [python, "-m", "pyspark.daemon", "pyspark.worker"]) == (
        "pyspark.daemon pyspark.worker"
    )
    assert kind(1, [python, "-u", "-m", "pyspark.daemon"]) == "pyspark.daemon"
    assert kind(1, [python, "-m", "pyspark.sql.streaming.python_streaming_source_runner"]) == (
        "pyspark.sql.streaming.python_streaming_source_runner"
    )
    assert kind(1, [python, "-B", "-s", "-c", "from multiprocessing import x"]) == "python -c"
    assert kind(1, [python, "-X", "dev", "-W", "error", "-m", "holder"]) == "holder"
    assert kind(1, [python, "-mholder"]) == "holder"
    assert kind(1, [python, "-u", "/srv/bin/moodtale", "fleet", "run"]) == "moodtale"
    assert kind(1, ["/usr/bin/espeak-ng", "-w"]) == "espeak-ng"
    assert kind(1, []) == "?"


def test_memory_is_described_largest_first() -> None:
    parts = {"a": {"processes": 3, "mb": 90.0}, "JVM": {"processes": 1, "mb": 812.4}}
    assert describe_memory(parts) == "JVM 812 MB (1), a 90 MB (3)"
    assert total_mb(parts) == 902.4
