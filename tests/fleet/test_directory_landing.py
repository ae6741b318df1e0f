"""A landing directory: whole files only, rows kept while it is away, nothing lost or doubled."""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path

import pytest

from appliance.fleet.publisher import FleetPublisher
from appliance.fleet.rows import (
    LANDING_FILE_NAME,
    LANDING_SUFFIX,
    as_landing_name,
    decode_landing_file,
    encode_landing_file,
    encode_rows,
    landing_file_seq,
    spool_file_name,
)
from appliance.fleet.spool import SPOOL_DIR
from tests.faults.waiting import wait_until
from tests.fleet.conftest import (
    fleet_settings,
    landed_files,
    landed_rows,
    one_row_per_second,
    seconds_of,
)


def outbox(state: Path) -> list[Path]:
    return sorted((state / SPOOL_DIR / "outbox").iterdir())


def test_a_reader_never_sees_half_a_file(tmp_path: Path, publishers: list[FleetPublisher]) -> None:
    landing = tmp_path / "landing"
    landing.mkdir()
    publisher = FleetPublisher(fleet_settings(tmp_path, rotate_s=0.02), tmp_path / "state")
    publishers.append(publisher)
    stop = threading.Event()
    seen: dict[str, int] = {}
    hidden: set[str] = set()
    problems: list[str] = []

    def read_like_spark() -> None:
        while not stop.is_set():
            for entry in os.scandir(landing):
                if entry.name.startswith((".", "_")):
                    hidden.add(entry.name)
                    continue
                if not LANDING_FILE_NAME.match(entry.name) or not entry.name.endswith(
                    LANDING_SUFFIX
                ):
                    problems.append(f"not a landing name: {entry.name}")
                    continue
                try:
                    data = Path(entry.path).read_bytes()
                    rows = decode_landing_file(data)
                except (ValueError, OSError) as exc:  # a cut Parquet file: no footer
                    problems.append(f"{entry.name}: {exc}")
                    continue
                if seen.setdefault(entry.name, len(rows)) != len(rows):
                    problems.append(f"{entry.name} changed or is cut short")
            time.sleep(0.002)  # a reader polls; a tight loop would starve the sender (GIL)

    reader = threading.Thread(target=read_like_spark)
    reader.start()
    try:
        # 20,000 rows in bursts: files of up to a few hundred kB, written while read.
        # Each burst is spooled before the next: 20,000 rows in a second is far beyond the
        # memory bound (an hour of rows), which drops the oldest rather than grow; on a loaded
        # CI runner the writer can fall that far behind.
        def counted(key: str, n: int, timeout: float) -> None:
            try:
                wait_until(lambda: publisher.status()[key] >= n, timeout, key)
            except AssertionError as exc:  # say where it stood
                raise AssertionError(f"{exc}: {publisher.status()}") from exc

        for burst in range(40):
            one_row_per_second(publisher, range(burst * 500, (burst + 1) * 500))
            counted("rows_spooled", (burst + 1) * 500 - 1, 30)
        counted("rows_published", 19_999, 60)
        publisher.close(timeout=10)
    finally:
        stop.set()
        reader.join()

    assert problems == []
    assert publisher.status()["rows_dropped"] == 0
    assert len(seen) >= 5
    assert seconds_of(landed_rows(landing)) == list(range(20_000))
    assert [p.name for p in landing.iterdir() if p.name.startswith(".")] == []
    assert all(name.startswith(".") for name in hidden)


def test_rows_wait_while_the_landing_is_away_and_arrive_once_in_order(
    tmp_path: Path, publishers: list[FleetPublisher]
) -> None:
    landing = tmp_path / "landing"  # not there yet: a share that is not mounted
    publisher = FleetPublisher(fleet_settings(tmp_path), tmp_path / "state")
    publishers.append(publisher)
    for burst in range(5):
        one_row_per_second(publisher, range(burst * 10, (burst + 1) * 10))
        time.sleep(0.15)
    wait_until(lambda: publisher.status()["files_pending"] >= 3, 10, "files spooled")
    status = publisher.status()
    assert status["state"] == "waiting for the landing"
    assert "not there" in status["last_error"]
    assert status["rows_published"] == 0
    assert "files wait in the spool" in (publisher.problem() or "")
    assert not landing.exists()  # not created under a missing mount point

    landing.mkdir()
    one_row_per_second(publisher, range(50, 60))
    wait_until(lambda: publisher.status()["rows_published"] >= 59, 10, "the backlog delivered")
    publisher.close(timeout=5)

    assert seconds_of(landed_rows(landing)) == list(range(60))
    seqs = [landing_file_seq(p.name) or 0 for p in landed_files(landing)]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # in order, none missing
    status = publisher.status()
    assert (status["rows_published"], status["files_pending"]) == (60, 0)
    assert status["last_error"] is None and publisher.problem() is None
    assert outbox(tmp_path / "state") == []


def test_a_restart_continues_the_sequence_and_resends_without_duplicates(
    tmp_path: Path, publishers: list[FleetPublisher]
) -> None:
    landing, state = tmp_path / "landing", tmp_path / "state"
    first = FleetPublisher(fleet_settings(tmp_path), state)
    publishers.append(first)
    for burst in range(3):
        one_row_per_second(first, range(burst * 10, (burst + 1) * 10))
        time.sleep(0.15)
    first.close(timeout=1)  # the landing is away: the files stay in the spool
    waiting = outbox(state)
    assert len(waiting) >= 2
    last_seq = max(landing_file_seq(p.name) or 0 for p in waiting)

    # A crash between the landing's acknowledgement and the delete: the landing has
    # the oldest file, the spool still has it too.
    landing.mkdir()
    landed = landing / as_landing_name(waiting[0].name)
    landed.write_bytes(encode_landing_file(waiting[0].read_bytes()))

    second = FleetPublisher(fleet_settings(tmp_path), state)
    publishers.append(second)
    one_row_per_second(second, range(30, 40))
    wait_until(lambda: second.status()["files_pending"] == 0, 10, "the spool emptied")
    second.close(timeout=5)

    assert seconds_of(landed_rows(landing)) == list(range(40))  # each second once
    seqs = [landing_file_seq(p.name) or 0 for p in landed_files(landing)]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    assert max(seqs) > last_seq  # new files numbered after the old ones
    assert outbox(state) == []


def test_rows_left_half_written_by_a_crash_are_kept_up_to_the_last_whole_line(
    tmp_path: Path, publishers: list[FleetPublisher]
) -> None:
    landing, state = tmp_path / "landing", tmp_path / "state"
    landing.mkdir()
    first = FleetPublisher(fleet_settings(tmp_path), state)
    one_row_per_second(first, range(3))
    first.close(timeout=5)
    rows = landed_rows(landing)
    for path in landed_files(landing):
        path.unlink()
    spool = state / SPOOL_DIR
    (spool / "writing.jsonl").write_bytes(encode_rows(rows) + b'{"venue": "reading-ro')

    second = FleetPublisher(fleet_settings(tmp_path), state)
    publishers.append(second)
    wait_until(lambda: second.status()["files_pending"] == 0, 10, "recovered rows sent")
    second.close(timeout=5)
    assert landed_rows(landing) == rows


def test_the_spool_is_bounded_and_drops_the_oldest_with_a_count(
    tmp_path: Path, publishers: list[FleetPublisher], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="appliance.fleet")
    landing = tmp_path / "landing"
    settings = fleet_settings(tmp_path, max_spool_mb=0.003)  # about a dozen rows
    publisher = FleetPublisher(settings, tmp_path / "state")
    publishers.append(publisher)
    for burst in range(20):
        one_row_per_second(publisher, range(burst * 5, (burst + 1) * 5))
        time.sleep(0.12)
    publisher.close(timeout=0.5)
    status = publisher.status()
    assert status["files_dropped"] > 0
    assert 0 < status["rows_dropped"] < 100
    assert status["spool_mb"] <= 0.003
    assert "rows were dropped" in (publisher.problem() or "")
    assert any("dropped" in r.getMessage() for r in caplog.records)

    landing.mkdir()
    after = FleetPublisher(settings, tmp_path / "state")
    publishers.append(after)
    wait_until(lambda: after.status()["files_pending"] == 0, 10, "the spool emptied")
    after.close(timeout=5)
    landed = seconds_of(landed_rows(landing))
    # The newest rows are kept, whole and in order; the dropped ones are the oldest.
    assert landed == list(range(100 - len(landed), 100))
    assert len(landed) + status["rows_dropped"] == 100


def test_a_damaged_spooled_file_is_dropped_with_a_count_and_the_rest_go_on(
    tmp_path: Path, publishers: list[FleetPublisher], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="appliance.fleet")
    landing, state = tmp_path / "landing", tmp_path / "state"
    landing.mkdir()
    box = state / SPOOL_DIR / "outbox"
    box.mkdir(parents=True)
    # What a failing SD card might leave: a closed file whose bytes are not rows.
    (box / spool_file_name("pi-7", 5)).write_bytes(b'{"venue": "reading-room"}\n\x00\x00\n')
    (box / spool_file_name("pi-7", 6)).write_bytes(b"1\n")  # not even an object
    publisher = FleetPublisher(fleet_settings(tmp_path), state)
    publishers.append(publisher)
    one_row_per_second(publisher, range(3))
    publisher.close(timeout=5)
    status = publisher.status()
    assert status["files_dropped"] == 2 and status["rows_dropped"] == 3
    assert seconds_of(landed_rows(landing)) == [0, 1, 2]  # the rest landed, in order
    assert not any(box.iterdir())
    assert any("is not rows" in r.getMessage() for r in caplog.records)
