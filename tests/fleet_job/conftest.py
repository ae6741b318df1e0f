"""Real Spark in local mode, one session for all the fleet-job tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


@pytest.fixture(scope="session")
def spark() -> Iterator[SparkSession]:
    from appliance.fleet.job import spark_session

    session = spark_session("local[2]", "moodtale-fleet-tests")
    yield session
    session.stop()
