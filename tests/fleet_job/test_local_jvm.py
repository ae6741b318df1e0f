"""The job's own JVM options (the serial collector) give way to the user's, wherever given."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

from appliance.fleet.job import local_defaults
from appliance.fleet.local_jvm import user_jvm_options

NO_CONF = {"SPARK_CONF_DIR": "/nonexistent"}
"""An environment in which no spark-defaults.conf is found."""


def test_with_nothing_given_the_job_asks_for_the_serial_collector() -> None:
    chosen = local_defaults({**NO_CONF, "PYSPARK_SUBMIT_ARGS": "pyspark-shell"})
    assert chosen["spark.driver.extraJavaOptions"] == "-XX:+UseSerialGC"
    assert chosen["spark.ui.enabled"] == "false"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PYSPARK_SUBMIT_ARGS", "--conf spark.driver.extraJavaOptions=-Xss4m pyspark-shell"),
        ("PYSPARK_SUBMIT_ARGS", "--conf spark.driver.defaultJavaOptions=-Xss4m pyspark-shell"),
        ("PYSPARK_SUBMIT_ARGS", "--driver-java-options -Xss4m pyspark-shell"),
        ("SPARK_SUBMIT_OPTS", "-XX:+UseG1GC"),
        ("JAVA_TOOL_OPTIONS", "-Xss4m -XX:+UseParallelGC"),
        ("_JAVA_OPTIONS", "-XX:+UseZGC"),
        ("JDK_JAVA_OPTIONS", "-XX:-UseSerialGC"),
    ],
)
def test_jvm_options_given_in_the_environment_stand(name: str, value: str) -> None:
    assert user_jvm_options({**NO_CONF, name: value}) == name
    chosen = local_defaults({**NO_CONF, name: value})
    assert "spark.driver.extraJavaOptions" not in chosen
    assert chosen["spark.ui.enabled"] == "false"  # the rest still apply


def test_under_spark_submit_the_launchers_settings_stand() -> None:
    assert local_defaults({**NO_CONF, "PYSPARK_GATEWAY_PORT": "40000"}) == {}


def test_the_session_takes_its_defaults_from_this_processs_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``spark_session`` hands ``local_defaults`` the process's own environment."""
    from appliance.fleet import job

    seen: list[Mapping[str, str]] = []

    def spy(environ: Mapping[str, str]) -> dict[str, str]:
        seen.append(environ)
        raise RuntimeError("stop before Spark starts")

    monkeypatch.setattr(job, "local_defaults", spy)
    monkeypatch.setenv("JAVA_TOOL_OPTIONS", "-XX:+UseParallelGC")
    with pytest.raises(RuntimeError, match="stop before Spark starts"):
        job.spark_session("local[1]")
    assert seen and seen[0].get("JAVA_TOOL_OPTIONS") == "-XX:+UseParallelGC"


def test_java_options_that_choose_no_collector_leave_the_serial_one() -> None:
    plain = {**NO_CONF, "JAVA_TOOL_OPTIONS": "-Xss4m -Dfile.encoding=UTF-8"}
    assert user_jvm_options(plain) is None


@pytest.mark.parametrize(
    "key", ["spark.driver.extraJavaOptions", "spark.driver.defaultJavaOptions"]
)
def test_jvm_options_in_spark_defaults_stand(tmp_path: Path, key: str) -> None:
    (tmp_path / "spark-defaults.conf").write_text(
        f"# the site's settings\nspark.executor.memory 2g\n  {key}  -XX:+UseParallelGC\n"
    )
    assert user_jvm_options({"SPARK_CONF_DIR": str(tmp_path)}) == str(
        tmp_path / "spark-defaults.conf"
    )
    (tmp_path / "spark-defaults.conf").write_text("spark.executor.memory 2g\n")
    assert user_jvm_options({"SPARK_CONF_DIR": str(tmp_path)}) is None
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "spark-defaults.conf").write_text(f"{key} -Xss4m\n")
    assert user_jvm_options({"SPARK_HOME": str(tmp_path)}) is not None  # SPARK_HOME/conf


SHOW_COLLECTORS = """
from appliance.fleet.job import spark_session
spark = spark_session("local[1]", "moodtale-jvm-options-test")
beans = spark.sparkContext._jvm.java.lang.management.ManagementFactory.getGarbageCollectorMXBeans()
print("collectors:", sorted(bean.getName() for bean in beans))
spark.stop()
"""


def test_a_collector_chosen_by_the_user_starts_spark_with_it() -> None:
    """The JVM refuses two collectors; the job's must give way (a JVM of its own, ~15 s)."""
    environ = {**os.environ, "JAVA_TOOL_OPTIONS": "-XX:+UseParallelGC"}
    environ.pop("PYSPARK_SUBMIT_ARGS", None)
    done = subprocess.run(
        [sys.executable, "-c", SHOW_COLLECTORS],
        env=environ,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "collectors: ['PS MarkSweep', 'PS Scavenge']" in done.stdout
