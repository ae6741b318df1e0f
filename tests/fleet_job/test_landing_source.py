"""The landing source on its own, driven as Spark drives it (plan a batch, read its
partitions, commit it), on real files: what it reads, what it cleans up, what it keeps."""

from __future__ import annotations

import itertools
import json
import logging
import os
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from pyspark.sql.streaming.datasource import ReadAllAvailable, ReadMaxFiles
from pyspark.sql.types import DoubleType, LongType, StringType, StructField, StructType

from appliance.fleet.landing_source import DAMAGED_SUFFIX, FileGroup, LandingReader
from appliance.fleet.rows import LANDING_SCHEMA_FIELDS, landing_file_bytes
from tests.fleet_job.landing_files import land, landed_name, mood_row

SPARK_TYPES = {str: StringType(), int: LongType(), float: DoubleType()}
SCHEMA = StructType([StructField(n, SPARK_TYPES[k]) for n, k in LANDING_SCHEMA_FIELDS])


def reader(root: Path, **options: Any) -> LandingReader:
    given = {"path": str(root / "landing"), "ledger": str(root / "ledger")}
    return LandingReader({**given, **{k: str(v) for k, v in options.items()}}, SCHEMA)


def one_second(device: str, second: int) -> list[dict[str, object]]:
    return [mood_row("hall", device, second, "happy")]


def read_batch(source: LandingReader, start: dict[str, int], end: dict[str, int]) -> pa.Table:
    batches = [b for p in source.partitions(start, end) for b in source.read(p)]
    return pa.Table.from_batches(batches) if batches else pa.table({})


def run_batch(
    source: LandingReader, start: dict[str, int], limit: Any = None
) -> tuple[dict[str, int], pa.Table]:
    """Plan, read and commit one batch, as Spark does; (end offset, rows read)."""
    end = source.latestOffset(start, limit or source.getDefaultReadLimit())
    rows = read_batch(source, start, end)
    source.commit(end)
    return end, rows


def seconds_of(table: pa.Table) -> list[int]:
    return sorted(table.column("second").to_pylist()) if table.num_rows else []


def test_reads_each_file_once_cleans_it_up_and_the_ledger_does_not_grow(tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    source = reader(tmp_path, maxFilesPerTrigger=20)
    offset = source.initialOffset()
    sizes, seen = [], []
    for round_ in range(50):  # 50 batches of 20 files from 10 devices
        for device in range(10):
            for n in (2 * round_, 2 * round_ + 1):
                land(landing, n, one_second(f"d{device}", n), f"d{device}")
        offset, rows = run_batch(source, offset)
        seen += rows.column("second").to_pylist()
        sizes.append(sum(p.stat().st_size for p in (tmp_path / "ledger").rglob("*") if p.is_file()))
        assert not any(landing.iterdir())  # read and committed: deleted
    assert offset == {"batch": 49}
    assert sorted(seen) == sorted(s for s in range(100) for _ in range(10))  # each row once
    # 1,000 files read: Spark's own file source would remember each (some 130 KB). This
    # keeps a number per device; it grows only as the numbers gain digits.
    assert max(sizes) < 200 and sizes[-1] - sizes[10] < 16, sizes
    assert not any((tmp_path / "ledger" / "planned").iterdir())


def test_the_batch_replayed_after_a_crash_reads_the_same_files(tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    for n in range(4):
        land(landing, n, one_second("pi", n))
    source = reader(tmp_path, maxFilesPerTrigger=2)
    first, rows = run_batch(source, source.initialOffset())
    assert seconds_of(rows) == [0, 1]
    second = source.latestOffset(first, source.getDefaultReadLimit())
    assert seconds_of(read_batch(source, first, second)) == [2, 3]
    # The job dies before Spark commits the batch; a file lands meanwhile.
    land(landing, 4, one_second("pi", 4))
    again = reader(tmp_path, maxFilesPerTrigger=2)
    assert seconds_of(read_batch(again, first, second)) == [2, 3]  # the same files
    again.commit(second)
    third, rows = run_batch(again, second)
    assert seconds_of(rows) == [4] and third == {"batch": 2}
    assert not any(landing.iterdir())


def test_a_batch_planned_but_never_recorded_is_planned_again(tmp_path: Path) -> None:
    """Spark died after the source planned a batch but before it wrote the offset: it asks
    again from the same start, and the files are planned again, none lost."""
    landing = tmp_path / "landing"
    land(landing, 0, one_second("pi", 0))
    source = reader(tmp_path)
    start = source.initialOffset()
    source.latestOffset(start, source.getDefaultReadLimit())
    land(landing, 1, one_second("pi", 1))
    again = reader(tmp_path)
    end, rows = run_batch(again, start)
    assert end == {"batch": 0} and seconds_of(rows) == [0, 1]


def test_a_resent_file_is_not_counted_again(tmp_path: Path, caplog: Any) -> None:
    landing = tmp_path / "landing"
    land(landing, 7, one_second("pi", 7))
    source = reader(tmp_path)
    offset, rows = run_batch(source, source.initialOffset())
    assert seconds_of(rows) == [7]
    # The device crashed between the landing's acknowledgement and its delete: it sends
    # the file again, and an older one it had already sent; then a new one.
    land(landing, 7, one_second("pi", 7))
    land(landing, 6, one_second("pi", 6))
    land(landing, 8, one_second("pi", 8))
    caplog.set_level(logging.INFO, logger="appliance.fleet.landing_source")
    restarted = reader(tmp_path)  # the sequence numbers survive a restart
    offset, rows = run_batch(restarted, offset)
    assert seconds_of(rows) == [8]
    assert not any(landing.iterdir())  # the resends are cleaned up too
    assert "2 landing files already read (resent)" in caplog.text


def test_a_device_file_is_never_taken_past_an_older_one_left_for_later(tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    land(landing, 2, one_second("pi", 2))
    land(landing, 1, one_second("other", 5), "other")
    land(landing, 1, one_second("pi", 1))  # landed later (by time), numbered earlier
    source = reader(tmp_path, maxFilesPerTrigger=2)
    offset, rows = run_batch(source, source.initialOffset())
    # Oldest first would take pi's 2 and leave its 1; its number would then mark 1 as read.
    assert seconds_of(rows) == [1, 5]
    offset, rows = run_batch(source, offset)
    assert seconds_of(rows) == [2] and offset == {"batch": 1}


def test_a_device_out_of_order_does_not_stall_the_batches(tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    land(landing, 2, one_second("pi", 2))
    land(landing, 1, one_second("pi", 1))
    source = reader(tmp_path, maxFilesPerTrigger=1)
    offset, rows = run_batch(source, source.initialOffset())
    assert seconds_of(rows) == [1]
    offset, rows = run_batch(source, offset)
    assert seconds_of(rows) == [2] and not any(landing.iterdir())


def test_a_commit_after_a_crash_cleans_up_every_batch_before_it(tmp_path: Path) -> None:
    """Spark commits a batch's offsets to the source as it plans the next one; after a
    crash it may commit a later batch without ever committing the one before."""
    landing = tmp_path / "landing"
    land(landing, 1, one_second("pi", 1))
    source = reader(tmp_path, maxFilesPerTrigger=1)
    first = source.latestOffset(source.initialOffset(), source.getDefaultReadLimit())
    read_batch(source, source.initialOffset(), first)
    land(landing, 1, one_second("b", 2), "b")
    second = source.latestOffset(first, source.getDefaultReadLimit())
    again = reader(tmp_path, maxFilesPerTrigger=1)  # the job died before commit(first)
    assert seconds_of(read_batch(again, first, second)) == [2]
    again.commit(second)
    assert not any(landing.iterdir())
    done = json.loads((tmp_path / "ledger" / "done.json").read_text())
    assert done == {"batch": 1, "seqs": {"pi": 1, "b": 1}}
    assert not any((tmp_path / "ledger" / "planned").iterdir())


def test_a_checkpoint_of_spark_file_source_is_refused_clearly(tmp_path: Path) -> None:
    source = reader(tmp_path)
    with pytest.raises(ValueError, match="written by Spark's file source"):
        source.latestOffset({"logOffset": 41}, source.getDefaultReadLimit())


def test_an_executor_that_cannot_see_the_landing_fails_the_batch(tmp_path: Path) -> None:
    """Rather than read nothing and let the commit delete what it never read."""
    from appliance.fleet.landing_source import FileGroup

    landing = tmp_path / "landing"
    land(landing, 1, one_second("pi", 1))
    source = reader(tmp_path)
    end = source.latestOffset(source.initialOffset(), source.getDefaultReadLimit())
    [group] = source.partitions(source.initialOffset(), end)
    assert isinstance(group, FileGroup) and Path(group.root).is_absolute()
    elsewhere = FileGroup(str(tmp_path / "not-here"), group.names)
    with pytest.raises(FileNotFoundError, match="every machine reaches"):
        list(source.read(elsewhere))


def one_task(source: LandingReader, end: dict[str, int]) -> FileGroup:
    """The batch's files as one task reads them (Spark would split them a task per core)."""
    groups = [g for g in source.partitions(source.initialOffset(), end)]
    assert all(isinstance(g, FileGroup) for g in groups)
    names = sorted(n for g in groups if isinstance(g, FileGroup) for n in g.names)
    root = next(g.root for g in groups if isinstance(g, FileGroup))
    return FileGroup(root, names)


def test_a_task_hands_its_rows_on_as_it_reads_them(tmp_path: Path, monkeypatch: Any) -> None:
    """A task holds at most about CHUNK_ROWS rows before it hands them on, however many
    files it was given (read whole, 5,000 files of 5 minutes' rows took 1 GB)."""
    from appliance.fleet import landing_source

    landing = tmp_path / "landing"
    for n in range(10):  # ten files of 3 rows
        land(landing, n, [r for s in (3 * n, 3 * n + 1, 3 * n + 2) for r in one_second("pi", s)])
    monkeypatch.setattr(landing_source, "CHUNK_ROWS", 6)
    source = reader(tmp_path)
    end = source.latestOffset(source.initialOffset(), source.getDefaultReadLimit())
    batches = source.read(one_task(source, end))  # one task for all ten files
    first = list(itertools.islice(batches, 2))  # one batch per file
    # Handed on once it held 6 rows (two files): the third file is not read yet, and is
    # not read at all once it is gone (as if taken away by hand).
    (landing / landed_name(2)).unlink()
    read = pa.Table.from_batches([*first, *batches])
    assert seconds_of(read) == [s for s in range(30) if s not in (6, 7, 8)]
    assert read.schema.names == [name for name, _ in LANDING_SCHEMA_FIELDS]


def test_files_gone_after_a_task_began_handing_on_are_not_an_unseen_landing(
    tmp_path: Path, monkeypatch: Any, caplog: Any
) -> None:
    """A task that has read some of its files sees the landing: the rest, taken away,
    are a warning, not the error of an executor that sees none."""
    from appliance.fleet import landing_source

    landing = tmp_path / "landing"
    for n in range(4):
        land(landing, n, one_second("pi", n))
    monkeypatch.setattr(landing_source, "CHUNK_ROWS", 1)
    source = reader(tmp_path)
    end = source.latestOffset(source.initialOffset(), source.getDefaultReadLimit())
    batches = source.read(one_task(source, end))
    first = next(batches)
    for n in range(1, 4):
        (landing / landed_name(n)).unlink()
    assert seconds_of(pa.Table.from_batches([first, *batches])) == [0]
    assert "3 landing files planned were gone" in caplog.text


def test_only_device_files_are_read_and_missing_columns_read_as_nulls(tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    land(landing, 1, one_second("pi", 1))
    (landing / "notes.parquet").write_text("not a device's file")
    (landing / "pi-000000000009.jsonl").write_text("{}\n")
    (landing / ".pi-000000000010.parquet.tmp").write_text("half written")
    other = pa.table({"venue": ["hall"], "device": ["x"], "second": [5]})
    (landing / "x-000000000001.parquet").write_bytes(landing_file_bytes(other))
    source = reader(tmp_path)
    _, rows = run_batch(source, source.initialOffset())
    assert seconds_of(rows) == [1, 5]
    partial = rows.filter(pa.compute.equal(rows.column("second"), 5))
    assert partial.column("faces").null_count == 1 and partial.column("happy").null_count == 1
    assert {p.name for p in landing.iterdir()} == {
        "notes.parquet", "pi-000000000009.jsonl", ".pi-000000000010.parquet.tmp"
    }  # fmt: skip


def test_a_damaged_file_is_set_aside_and_the_rest_is_read(tmp_path: Path, caplog: Any) -> None:
    landing = tmp_path / "landing"
    land(landing, 1, one_second("pi", 1))
    (landing / "sd-000000000001.parquet").write_bytes(b"PAR1 not really")
    land(landing, 2, one_second("pi", 2))
    source = reader(tmp_path)
    _, rows = run_batch(source, source.initialOffset())
    assert seconds_of(rows) == [1, 2]
    assert [p.name for p in landing.iterdir()] == [f"sd-000000000001.parquet{DAMAGED_SUFFIX}"]
    assert "landing file sd-000000000001.parquet is damaged" in caplog.text


def test_archive_and_off(tmp_path: Path) -> None:
    landing, archive = tmp_path / "landing", tmp_path / "archive"
    land(landing, 1, one_second("pi", 1))
    source = reader(tmp_path, cleanup="archive", archive=archive)
    offset, _ = run_batch(source, source.initialOffset())
    assert [p.name for p in archive.iterdir()] == [landed_name(1)] and not any(landing.iterdir())

    kept = tmp_path / "kept"
    land(kept / "landing", 1, one_second("pi", 1))
    source = reader(kept, cleanup="off")
    offset, rows = run_batch(source, source.initialOffset())
    assert seconds_of(rows) == [1]
    land(kept / "landing", 2, one_second("pi", 2))
    offset, rows = run_batch(reader(kept, cleanup="off"), offset)
    assert seconds_of(rows) == [2]  # the file kept is not read again, after a restart too
    assert len(list((kept / "landing").iterdir())) == 2


def test_available_now_takes_what_had_landed_when_it_began(tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    land(landing, 1, one_second("pi", 1))
    source = reader(tmp_path)
    source.prepareForTriggerAvailableNow()
    land(landing, 2, one_second("pi", 2))
    offset, rows = run_batch(source, source.initialOffset(), ReadAllAvailable())
    assert seconds_of(rows) == [1]
    assert source.latestOffset(offset, ReadAllAvailable()) == offset  # nothing more: it ends


def test_read_limits(tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    for n in range(5):
        land(landing, n, one_second(f"d{n}", n), f"d{n}")
    source = reader(tmp_path, maxFilesPerTrigger=2)
    assert source.getDefaultReadLimit() == ReadMaxFiles(2)
    offset, rows = run_batch(source, source.initialOffset(), ReadMaxFiles(3))
    assert seconds_of(rows) == [0, 1, 2]  # the engine's limit, not the option's
    for n in range(5, 8):
        land(landing, n, one_second(f"d{n}", n), f"d{n}")
    offset, rows = run_batch(source, offset, ReadAllAvailable())
    assert seconds_of(rows) == [3, 4, 5, 6, 7]  # all of it, past the option's 2


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"cleanup": "shred"}, "cleanup must be one of"),
        ({"cleanup": "archive"}, "needs an 'archive' directory"),
        ({"maxFilesPerTrigger": 0}, "at least 1"),
    ],
)
def test_bad_options_are_refused(tmp_path: Path, options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        reader(tmp_path, **options)
    with pytest.raises(ValueError, match="needs a path"):
        LandingReader({"path": str(tmp_path)}, SCHEMA)


def test_a_ledger_from_an_earlier_run_is_what_it_goes_on_from(tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    land(landing, 3, one_second("pi", 3))
    source = reader(tmp_path)
    run_batch(source, source.initialOffset())
    done = json.loads((tmp_path / "ledger" / "done.json").read_text())
    assert done == {"batch": 0, "seqs": {"pi": 3}}
    assert not any(name.startswith(".") for name in os.listdir(tmp_path / "ledger"))
