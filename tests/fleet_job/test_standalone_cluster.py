"""The fleet job on a Spark standalone cluster: a master and two workers, each in a JVM of
its own, started with the pyspark distribution's own launcher (``bin/spark-class``), and the
job sent to it with ``bin/spark-submit``, as on a real cluster. The same checks as in
local mode: exact windows, each venue's story going on across a restart, a replayed batch
writing nothing twice, and a landing that is cleaned as it is read."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from deltalake import DeltaTable

import appliance.fleet.submit
from appliance.fleet.delta_sink import TURNS_TABLE, WINDOWS_TABLE
from appliance.fleet.job import HANDOFF
from tests.appliance_run.test_moodtale_run import free_port
from tests.cli_process import moodtale_env
from tests.fleet_job.landing_files import land, landed_name
from tests.fleet_job.test_job import forget_last_commits, mood_seconds
from tests.story.conftest import TEST_MODEL

pytestmark = pytest.mark.timeout(900)


def spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent


def spark_env(tmp: Path) -> dict[str, str]:
    return {
        **os.environ,
        "SPARK_HOME": str(spark_home()),
        "SPARK_LOCAL_IP": "127.0.0.1",
        "SPARK_LOG_DIR": str(tmp / "logs"),
        "PYSPARK_PYTHON": sys.executable,
        "PYSPARK_DRIVER_PYTHON": sys.executable,
    }


@dataclass(frozen=True)
class Cluster:
    url: str
    """spark://127.0.0.1:PORT"""
    ui: str
    """The master's web UI (its /json/ says what ran where)."""

    def state(self) -> dict[str, Any]:
        state: dict[str, Any] = httpx.get(f"{self.ui}/json/", timeout=5).json()
        return state


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A master and two workers of one core each."""
    tmp = tmp_path_factory.mktemp("spark-cluster")
    env = spark_env(tmp)
    spark_class = str(spark_home() / "bin" / "spark-class")
    port, ui = free_port(), free_port()
    url = f"spark://127.0.0.1:{port}"
    log = (tmp / "cluster.log").open("w")
    master = [
        "org.apache.spark.deploy.master.Master",
        *("--host", "127.0.0.1", "--port", str(port), "--webui-port", str(ui)),
    ]
    commands = [master]
    for n in range(2):
        work = tmp / f"worker-{n}"
        work.mkdir()
        commands.append(
            [
                "org.apache.spark.deploy.worker.Worker", url,
                *("--host", "127.0.0.1", "--cores", "1", "--memory", "1g"),
                *("--webui-port", str(free_port()), "--work-dir", str(work)),
            ]
        )  # fmt: skip
    daemons = [
        subprocess.Popen([spark_class, *command], env=env, stdout=log, stderr=subprocess.STDOUT)
        for command in commands
    ]
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                state = httpx.get(f"http://127.0.0.1:{ui}/json/", timeout=2).json()
                if state.get("aliveworkers") == 2:
                    break
            except (httpx.HTTPError, ValueError):
                pass
            died = [c[0] for c, d in zip(commands, daemons, strict=True) if d.poll() is not None]
            assert not died, f"{died} stopped: {(tmp / 'cluster.log').read_text()[-3000:]}"
            assert time.monotonic() < deadline, (tmp / "cluster.log").read_text()[-3000:]
            time.sleep(0.5)
        yield Cluster(url, f"http://127.0.0.1:{ui}")
    finally:
        for daemon in daemons:
            daemon.terminate()
        for daemon in daemons:
            daemon.wait(30)
        log.close()


def submit(cluster: Cluster, tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``spark-submit`` of the fleet job to the cluster, with the tests' story model."""
    env = {
        **spark_env(tmp),
        **moodtale_env(
            MOODTALE_STORY__LLAMA__MODEL=TEST_MODEL,
            MOODTALE_STORY__LLAMA__TEMPERATURE="0",
            MOODTALE_STORY__LLAMA__N_CTX="1024",
            MOODTALE_STORY__LLAMA__MAX_TOKENS="40",
        ),
    }
    return subprocess.run(
        [str(spark_home() / "bin" / "spark-submit"), "--master", cluster.url,
         "--conf", "spark.executor.memory=768m", "--conf", "spark.cores.max=2",
         "--conf", "spark.sql.shuffle.partitions=3",
         "--conf", f"spark.pyspark.python={sys.executable}",
         str(Path(appliance.fleet.submit.__file__)), "run",
         "--landing", str(tmp / "landing"), "--tables", str(tmp / "tables"),
         "--checkpoint", str(tmp / "checkpoint"), "--once",
         "--window-s", "10", "--watermark-s", "5", "--turn-every", "3",
         "--calls-per-minute", "600", "--max-files-per-trigger", "1", *args],
        env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip


def table(tmp: Path, name: str) -> pd.DataFrame:
    frame = DeltaTable(str(tmp / "tables" / name)).to_pandas()
    keys = ["venue", "window_start"] if name == WINDOWS_TABLE else ["venue", "turn"]
    return frame.sort_values(keys).reset_index(drop=True)


def test_the_job_on_a_standalone_cluster_is_exact_goes_on_and_writes_nothing_twice(
    cluster: Cluster, tmp_path: Path
) -> None:
    landing = tmp_path / "landing"
    land(landing, "1", mood_seconds("hall", 0, 20, "happy") + mood_seconds("porch", 0, 20, "sad"))
    land(landing, "2", mood_seconds("hall", 20, 40, "sad") + mood_seconds("porch", 20, 40, "sad"))
    first = submit(cluster, tmp_path)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-6000:]
    # It ran on the cluster, its executors on both workers (not in local mode), with the
    # launcher's settings kept over the job's own defaults.
    assert f"on {cluster.url}, 3 shuffle partitions" in first.stdout, first.stdout[-3000:]
    apps = [app for app in cluster.state()["completedapps"] if app["name"] == "moodtale-fleet"]
    assert len(apps) == 1 and apps[0]["cores"] == 2, cluster.state()
    windows = table(tmp_path, WINDOWS_TABLE)
    # 0-30 s closed (the newest row at 39 s, the watermark 5 s behind): 3 per venue, each
    # of 2 devices x 10 s x 2 faces, the mood's share exact.
    assert len(windows) == 6 and set(windows.faces) == {40} and set(windows.devices) == {2}
    hall = windows[windows.venue == "hall"]
    assert list(hall.dominant) == ["happy", "happy", "sad"]
    assert list(hall.happy[:2]) == [pytest.approx(0.7)] * 2
    assert list(hall.neutral) == [pytest.approx(0.3)] * 3
    turns_before = table(tmp_path, TURNS_TABLE)
    assert set(turns_before.venue) == {"hall", "porch"}
    assert all(str(b).startswith("local") for b in turns_before.backend)

    handoff = tmp_path / "tables" / HANDOFF
    left_by_first = {p for p in [*landing.iterdir(), *handoff.iterdir()] if p.suffix}

    # A crash after the last batch was written, before Spark committed it: it runs again.
    for query in ("windows", "story"):
        forget_last_commits(tmp_path / "checkpoint" / query, 1)
    land(landing, "3", mood_seconds("hall", 40, 70, "happy"))
    land(landing, "4", mood_seconds("hall", 70, 90, "sad") + mood_seconds("porch", 40, 90, "fear"))
    second = submit(cluster, tmp_path)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-6000:]
    # spark-submit passes the driver's Python log on with its stdout.
    replayed = [line for line in second.stdout.splitlines() if "(a replay); skipped" in line]
    for name in (WINDOWS_TABLE, TURNS_TABLE):
        assert any(f"{name}: batch" in line for line in replayed), (name, second.stdout)
    windows = table(tmp_path, WINDOWS_TABLE)
    assert not windows.duplicated(["venue", "window_start"]).any()  # nothing twice
    hall = windows[windows.venue == "hall"]
    assert [int(t.timestamp()) for t in hall.window_start] == list(range(0, 80, 10))
    assert list(hall.dominant) == ["happy", "happy"] + ["sad"] * 2 + ["happy"] * 3 + ["sad"]
    turns = table(tmp_path, TURNS_TABLE)
    kept = turns.set_index(["venue", "turn"]).loc[turns_before.set_index(["venue", "turn"]).index]
    pd.testing.assert_frame_equal(kept, turns_before.set_index(["venue", "turn"]))  # unchanged
    for venue, told in turns.groupby("venue"):
        assert list(told.turn) == list(range(len(told))), f"{venue}: turns without a gap"
    assert len(turns) > len(turns_before)  # the stories went on after the restart
    # Read and committed: gone. A file waits only until the batch after its own is planned,
    # so each run leaves at most its last batch's files, and the next run takes them.
    assert left_by_first and not any(p.exists() for p in left_by_first)
    assert {p.name for p in landing.iterdir()} <= {landed_name(4)}
