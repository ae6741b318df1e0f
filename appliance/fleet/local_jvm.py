"""The JVM options the fleet job brings when it starts Spark itself (not under spark-submit),
and whether the user has given the driver's JVM options somewhere else.

The job asks for the serial garbage collector. The JVM refuses to start with two collectors
("Multiple garbage collectors selected"), and a ``--conf`` from the job would override the
user's ``spark-defaults.conf``, so the job leaves its option out wherever the user set JVM
options of their own.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

DRIVER_JVM_OPTIONS = "-XX:+UseSerialGC"
"""On 2 cores the JVM picks G1, which held about 180 MB more at 100 x 10 devices for no gain
in rows per CPU-second; the heap's limit (``spark.driver.memory``) is unchanged."""

JOB_OPTIONS_KEY = "spark.driver.extraJavaOptions"
"""Where the job puts ``DRIVER_JVM_OPTIONS``."""
DRIVER_CONF_KEYS = (JOB_OPTIONS_KEY, "spark.driver.defaultJavaOptions")
"""The settings that give the driver's JVM options (``--conf`` or ``spark-defaults.conf``)."""
DRIVER_SUBMIT_FLAG = "--driver-java-options"
"""spark-submit's own flag for them."""
JAVA_ENVIRONMENT = ("SPARK_SUBMIT_OPTS", "JAVA_TOOL_OPTIONS", "_JAVA_OPTIONS", "JDK_JAVA_OPTIONS")
"""Environment variables the launcher or the JVM itself reads options from."""
COLLECTOR = re.compile(r"-XX:[+-]Use\w*GC\b")


def spark_conf_dir(environ: Mapping[str, str]) -> Path | None:
    """Where Spark's launcher looks for ``spark-defaults.conf``."""
    if environ.get("SPARK_CONF_DIR"):
        return Path(environ["SPARK_CONF_DIR"])
    if environ.get("SPARK_HOME"):
        return Path(environ["SPARK_HOME"]) / "conf"
    try:
        import pyspark
    except ImportError:
        return None
    return Path(pyspark.__file__).parent / "conf"  # pip's pyspark is its own SPARK_HOME


def user_jvm_options(environ: Mapping[str, str]) -> str | None:
    """Where the user gave the driver's JVM options (or a garbage collector), or None."""
    submit_args = environ.get("PYSPARK_SUBMIT_ARGS", "")
    if any(key in submit_args for key in (*DRIVER_CONF_KEYS, DRIVER_SUBMIT_FLAG)):
        return "PYSPARK_SUBMIT_ARGS"
    for name in JAVA_ENVIRONMENT:
        if COLLECTOR.search(environ.get(name, "")):
            return name
    conf_dir = spark_conf_dir(environ)
    defaults = conf_dir / "spark-defaults.conf" if conf_dir else None
    if defaults is not None and defaults.is_file():
        for line in defaults.read_text(errors="replace").splitlines():
            if line.strip().startswith(DRIVER_CONF_KEYS):
                return str(defaults)
    return None
