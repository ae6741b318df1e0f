"""One row per second with exact sums, in the landing format the fleet job reads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from appliance.events import EMOTION_LABELS, Emotions, MoodSummary
from appliance.fleet.per_second import PerSecondRollup
from appliance.fleet.publisher import FleetPublisher
from appliance.fleet.rows import (
    LANDING_SCHEMA_FIELDS,
    as_landing_name,
    decode_landing_file,
    encode_landing_file,
    encode_rows,
    landing_file_bytes,
    landing_file_name,
    landing_file_seq,
    landing_schema,
    row_to_summary,
    spool_file_name,
    summary_to_row,
)
from tests.fleet.conftest import (
    DEVICE,
    HAPPY_FACE,
    SAD_FACE,
    VENUE,
    fleet_settings,
    landed_files,
    landed_rows,
    reading,
)


def test_the_landing_schema_is_flat_and_fixed() -> None:
    expected = (
        ("venue", str),
        ("device", str),
        ("second", int),
        ("faces", int),
        ("angry", float),
        ("disgust", float),
        ("fear", float),
        ("happy", float),
        ("sad", float),
        ("surprise", float),
        ("neutral", float),
    )
    assert expected == LANDING_SCHEMA_FIELDS


def test_a_row_round_trips_exactly() -> None:
    summary = MoodSummary(
        VENUE, DEVICE, 1_700_000_123, 3, Emotions(happy=0.1 + 0.2, neutral=2.7, sad=1e-17)
    )
    row = summary_to_row(summary)
    assert list(row) == [name for name, _ in LANDING_SCHEMA_FIELDS]
    assert all(type(row[name]) is kind for name, kind in LANDING_SCHEMA_FIELDS)
    assert row_to_summary(json.loads(json.dumps(row))) == summary


@pytest.mark.parametrize(
    "change",
    [{"faces": True}, {"second": 1.5}, {"happy": "0.5"}, {"extra": 1}, {"venue": None}],
)
def test_a_row_that_breaks_the_schema_is_refused(change: dict[str, object]) -> None:
    row = summary_to_row(MoodSummary(VENUE, DEVICE, 1, 0, Emotions()))
    with pytest.raises(ValueError):
        row_to_summary({**row, **change})


def test_a_landing_file_holds_its_rows_exactly() -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    summaries = [
        MoodSummary(VENUE, DEVICE, 1_700_000_000, 3, Emotions(happy=0.1 + 0.2, neutral=2.7)),
        MoodSummary(VENUE, DEVICE, 1_700_000_001, 0, Emotions()),
        MoodSummary("hall ✨", "pi-9", 2**40, 10**6, Emotions(sad=1e-17, fear=12345.678901234567)),
    ]
    data = encode_landing_file(encode_rows(summaries))
    assert data[:4] == b"PAR1" and data[-4:] == b"PAR1"  # Parquet, whole
    assert decode_landing_file(data) == summaries  # every float bit for bit
    table = pq.read_table(pa.BufferReader(data))
    assert table.schema.remove_metadata() == landing_schema()
    assert [name for name, _ in LANDING_SCHEMA_FIELDS] == table.column_names
    # A third of the JSON's size for a minute of rows (one file per device per rotate_s).
    minute = [
        MoodSummary(VENUE, DEVICE, 1_700_000_000 + s, 15, Emotions(happy=15 * 0.7, sad=15 * 0.3))
        for s in range(60)
    ]
    assert len(encode_landing_file(encode_rows(minute))) < len(encode_rows(minute)) / 2


def test_a_file_that_is_not_landing_rows_is_refused() -> None:
    import pyarrow as pa

    row = summary_to_row(MoodSummary(VENUE, DEVICE, 1, 2, Emotions(happy=2.0)))
    with pytest.raises(ValueError, match="column 'faces'"):
        encode_landing_file(json.dumps({**row, "faces": "two"}).encode() + b"\n")
    with pytest.raises(ValueError, match="missing"):
        encode_landing_file(b'{"venue":"v","device":"d","second":1,"faces":2}\n')
    with pytest.raises(ValueError):
        encode_landing_file(b'{"venue": "cut sh')
    for line in (b"1", b"null", b"[[1]]", json.dumps({**row, "second": 2**64}).encode()):
        with pytest.raises(ValueError):
            encode_landing_file(line + b"\n")
    other = pa.table({"venue": ["v"], "second": [1]})
    with pytest.raises(ValueError, match="not a landing file"):
        decode_landing_file(landing_file_bytes(other))


def test_file_names_carry_the_device_and_a_sequence_number() -> None:
    assert landing_file_name("pi-7", 42) == "pi-7-000000000042.parquet"
    assert spool_file_name("pi-7", 42) == "pi-7-000000000042.jsonl"
    assert as_landing_name("pi-7-000000000042.jsonl") == "pi-7-000000000042.parquet"
    assert landing_file_seq("pi-7-000000000042.parquet") == 42
    assert landing_file_seq("pi-7-000000000042.jsonl") == 42
    assert landing_file_seq("pi-7-000000000042.csv") is None
    assert landing_file_seq(".pi-7-000000000042.jsonl.tmp") is None
    assert landing_file_seq("_pi-7-000000000042.jsonl") is None


def test_readings_are_summed_per_second() -> None:
    rows: list[MoodSummary] = []
    rollup = PerSecondRollup(VENUE, DEVICE, rows.append)
    odd = reading(angry=0.1, fear=0.2, surprise=0.3, disgust=0.4)
    rollup.add([HAPPY_FACE, SAD_FACE], 1000.1)  # two faces in one frame
    rollup.add([odd], 1000.5)
    rollup.add([], 1000.99)  # a frame of that second showing nobody
    assert rows == []  # the second is not over yet
    rollup.add([], 1001.0)  # a frame, nobody in it: a row with faces == 0
    rollup.add([HAPPY_FACE], 1003.2)  # no frame at all in 1002: no row
    rollup.finish()

    assert [(r.second, r.faces) for r in rows] == [(1000, 3), (1001, 0), (1003, 1)]
    expected = [0.0] * len(EMOTION_LABELS)
    for face in (HAPPY_FACE, SAD_FACE, odd):
        for i, value in enumerate(face.emotions.as_tuple()):
            expected[i] += value
    assert rows[0].emotion_sums.as_tuple() == tuple(expected)
    assert rows[0].emotion_sums.as_dict()["happy"] == 0.75
    assert rows[0].emotion_sums.as_dict()["neutral"] == 0.625
    assert rows[1].emotion_sums == Emotions()
    assert rows[2].emotion_sums == HAPPY_FACE.emotions
    assert all(r.venue == VENUE and r.device == DEVICE for r in rows)


def test_a_second_with_no_frame_after_it_is_finished_when_frames_stop() -> None:
    rows: list[MoodSummary] = []
    now = [100.0]
    rollup = PerSecondRollup(VENUE, DEVICE, rows.append, monotonic=lambda: now[0])
    rollup.add([HAPPY_FACE], 1000.5)
    rollup.finish_stale()
    assert rows == []
    now[0] += 2.0  # the camera went quiet
    rollup.finish_stale()
    assert [(r.second, r.faces) for r in rows] == [(1000, 1)]


def test_the_publisher_lands_exactly_those_rows_as_parquet(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    settings = fleet_settings(tmp_path)
    settings.landing_dir.mkdir()  # type: ignore[union-attr]
    publisher = FleetPublisher(settings, tmp_path / "state")
    publisher.observe([HAPPY_FACE, SAD_FACE], 1_700_000_000.25)
    publisher.observe([HAPPY_FACE], 1_700_000_000.75)
    publisher.observe([], 1_700_000_001.5)
    publisher.close(timeout=5)

    files = landed_files(tmp_path / "landing")
    assert files and all(p.name.startswith(f"{DEVICE}-") for p in files)
    assert all(p.suffix == ".parquet" for p in files)
    lines = [row for p in files for row in pq.read_table(p).to_pylist()]
    assert lines == [
        {
            "venue": VENUE,
            "device": DEVICE,
            "second": 1_700_000_000,
            "faces": 3,
            "angry": 0.125,
            "disgust": 0.0,
            "fear": 0.0,
            "happy": 1.5,
            "sad": 0.5,
            "surprise": 0.0,
            "neutral": 0.875,
        },
        {
            "venue": VENUE,
            "device": DEVICE,
            "second": 1_700_000_001,
            "faces": 0,
            **dict.fromkeys(EMOTION_LABELS, 0.0),
        },
    ]
    assert landed_rows(tmp_path / "landing")[0].faces == 3
    status = publisher.status()
    assert status["rows_published"] == 2
    assert status["files_pending"] == 0
    assert status["last_error"] is None
