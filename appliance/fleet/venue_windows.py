"""Cluster side, first stage: landing rows in, one row per venue per closed window out.

The landing rows are sums and counts (see ``appliance.fleet`` device side), so a window's
mean of each emotion is exact: the sum of the sums over the sum of the faces.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from appliance.events import EMOTION_LABELS

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

LANDING_SCHEMA_DDL = ", ".join(
    ["venue STRING", "device STRING", "second BIGINT", "faces BIGINT"]
    + [f"{label} DOUBLE" for label in EMOTION_LABELS]
)
"""The landing files' schema (Parquet), read as is: no inference, no surprises."""

NOBODY = "nobody"
"""The dominant emotion of a window in which no face was seen."""


def venue_windows(rows: DataFrame, window_s: int, watermark_s: int) -> DataFrame:
    """Per venue and tumbling window of ``window_s`` seconds: faces, devices, the mean
    of each emotion and the dominant one. Rows later than ``watermark_s`` behind the
    newest event time seen are dropped; a window is emitted once the watermark passes it
    (append mode), so each window is written once, complete."""
    from pyspark.sql import functions as F  # noqa: N812 (the usual name)

    sums = [F.sum(F.col(label)).alias(label) for label in EMOTION_LABELS]
    # A file written to another schema reads its missing columns as nulls: such a row says
    # nothing that can be counted, so it is left out rather than make a window of zeros.
    whole = F.col("venue").isNotNull() & F.col("second").isNotNull() & F.col("faces").isNotNull()
    for label in EMOTION_LABELS:
        whole = whole & F.col(label).isNotNull()
    windows = (
        rows.where(whole)
        .withColumn("event_time", F.timestamp_seconds(F.col("second")))
        .withWatermark("event_time", f"{watermark_s} seconds")
        .groupBy(F.col("venue"), F.window(F.col("event_time"), f"{window_s} seconds"))
        .agg(
            F.sum("faces").alias("faces"),
            F.approx_count_distinct("device").alias("devices"),
            F.count(F.lit(1)).alias("rows"),
            *sums,
        )
    )
    means = [
        F.when(F.col("faces") > 0, F.col(label) / F.col("faces")).otherwise(F.lit(0.0)).alias(label)
        for label in EMOTION_LABELS
    ]
    # The dominant emotion: the label of the greatest mean (ties: the first label).
    greatest = F.greatest(*[F.col(label) for label in EMOTION_LABELS])
    dominant = F.when(F.col("faces") <= 0, F.lit(NOBODY))
    for label in EMOTION_LABELS:
        dominant = dominant.when(F.col(label) == greatest, F.lit(label))
    return windows.select(
        "venue",
        F.col("window.start").alias("window_start"),
        F.col("window.end").alias("window_end"),
        "faces",
        "devices",
        "rows",
        *means,
    ).withColumn("dominant", dominant)
