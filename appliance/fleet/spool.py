"""The on-disk spool: rows wait here until the landing has acknowledged them.

    <state_dir>/fleet-spool/
        next-seq            the sequence number of the next file (written before it is used)
        writing.jsonl       rows of the file being filled (appended once a second or so)
        outbox/<device>-<seq:012d>.jsonl   closed files, delivered oldest first

A closed file keeps its name from the outbox to the landing (there as
``<device>-<seq:012d>.parquet``), so delivering it twice (after a crash between the
landing's acknowledgement and the delete) writes the same rows under the same name:
nothing is duplicated. ``next-seq`` is saved before the file it numbers is
renamed, so a number is never given to two files. A fresh spool starts numbering at the
current unix time, so a device whose state was wiped does not reuse names from before.

The writer thread appends and closes; the sender thread takes the oldest and removes it.
One lock guards the in-memory index of the outbox; file I/O happens outside it.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from appliance.fleet.rows import SPOOL_SUFFIX, landing_file_seq, spool_file_name

log = logging.getLogger(__name__)

SPOOL_DIR = "fleet-spool"
WRITING = "writing.jsonl"
NEXT_SEQ = "next-seq"
OUTBOX = "outbox"


@dataclass(frozen=True)
class SpooledFile:
    seq: int
    path: Path
    size: int


@dataclass(frozen=True)
class Dropped:
    files: int
    rows: int


def fsync_dir(path: Path) -> None:
    """Make a rename durable. Some network file systems cannot sync a directory: the
    rename is still done, so that is no failure."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
            raise
    finally:
        os.close(fd)


def write_atomically(path: Path, data: bytes) -> None:
    """Write to a hidden temporary name beside ``path``, fsync, rename: readers see all or
    nothing (and readers that skip names starting with '.' never see the temporary)."""
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        with temporary.open("wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


class Spool:
    def __init__(self, state_dir: Path, device: str) -> None:
        self.root = state_dir / SPOOL_DIR
        self.outbox = self.root / OUTBOX
        self.device = device
        self.outbox.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._files: list[SpooledFile] = self._scan_outbox()
        self._in_flight: SpooledFile | None = None
        saved = self._read_next_seq()
        after_outbox = self._files[-1].seq + 1 if self._files else 0
        fresh = int(time.time())
        self._next_seq = max(saved if saved is not None else fresh, after_outbox)
        self._writing: BinaryIO | None = None
        self._writing_rows = 0
        self._writing_bytes = 0
        self.opened_at: float | None = None
        """``time.monotonic()`` of the first row in the file being filled."""
        self._recover_writing()

    # -- startup -----------------------------------------------------------------

    def _scan_outbox(self) -> list[SpooledFile]:
        files = []
        for entry in os.scandir(self.outbox):
            seq = landing_file_seq(entry.name) if entry.name.endswith(SPOOL_SUFFIX) else None
            if seq is None:
                if entry.name.startswith("."):  # a temporary left by a crash
                    Path(entry.path).unlink(missing_ok=True)
                continue
            files.append(SpooledFile(seq, Path(entry.path), entry.stat().st_size))
        return sorted(files, key=lambda f: f.seq)

    def _read_next_seq(self) -> int | None:
        try:
            return int((self.root / NEXT_SEQ).read_text().strip())
        except (OSError, ValueError):
            return None

    def _recover_writing(self) -> None:
        """Rows written before a crash or a stop: kept, up to the last whole line."""
        path = self.root / WRITING
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return
        whole = data[: data.rfind(b"\n") + 1]
        if whole != data:
            log.warning("fleet spool: dropped a half-written row left by a crash")
            path.write_bytes(whole)
        if whole:
            self._writing_rows = whole.count(b"\n")
            self._writing_bytes = len(whole)
            self.close_file()
        else:
            path.unlink(missing_ok=True)

    # -- the writer's side --------------------------------------------------------------

    def append(self, data: bytes, rows: int) -> None:
        if self._writing is None:
            self._writing = (self.root / WRITING).open("ab")
        try:
            self._writing.write(data)
            self._writing.flush()
        except OSError:
            # No half row left behind for the next append to run into.
            self._writing.close()
            self._writing = None
            with contextlib.suppress(OSError), (self.root / WRITING).open("r+b") as file:
                file.truncate(self._writing_bytes)
            raise
        self._writing_rows += rows
        self._writing_bytes += len(data)
        if self.opened_at is None:
            self.opened_at = time.monotonic()

    @property
    def writing_rows(self) -> int:
        return self._writing_rows

    def close_file(self) -> SpooledFile | None:
        """Move the rows being filled into the outbox under the next sequence number."""
        if self._writing_rows == 0:
            return None
        if self._writing is not None:
            os.fsync(self._writing.fileno())
            self._writing.close()
            self._writing = None
        seq = self._next_seq
        write_atomically(self.root / NEXT_SEQ, f"{seq + 1}\n".encode())
        self._next_seq = seq + 1
        path = self.outbox / spool_file_name(self.device, seq)
        os.replace(self.root / WRITING, path)
        fsync_dir(self.outbox)
        spooled = SpooledFile(seq, path, self._writing_bytes)
        with self._lock:
            self._files.append(spooled)
        self._writing_rows = self._writing_bytes = 0
        self.opened_at = None
        return spooled

    def drop_oldest_over(self, max_bytes: int) -> Dropped:
        """Drop the oldest closed files until the spool holds at most ``max_bytes`` (never
        the one being delivered: the landing may already have it)."""
        files = rows = 0
        while True:
            with self._lock:
                candidates = [f for f in self._files if f is not self._in_flight]
                if not candidates or self._total_locked() <= max_bytes:
                    return Dropped(files, rows)
                oldest = candidates[0]
                self._files.remove(oldest)
            try:
                rows += oldest.path.read_bytes().count(b"\n")
                oldest.path.unlink()
            except FileNotFoundError:
                continue  # the sender delivered it meanwhile
            files += 1
            log.warning(
                "fleet spool is over %.1f MB: dropped %s, the oldest file waiting",
                max_bytes / 1e6,
                oldest.path.name,
            )

    def _total_locked(self) -> int:
        return sum(f.size for f in self._files) + self._writing_bytes

    def shut(self) -> None:
        if self._writing is not None:
            self._writing.close()
            self._writing = None

    # -- the sender's side -----------------------------------------------------------------

    def next_to_send(self) -> SpooledFile | None:
        """The oldest closed file, kept from the spool bound until ``delivered`` or
        ``not_delivered``."""
        with self._lock:
            self._in_flight = self._files[0] if self._files else None
            return self._in_flight

    def not_delivered(self) -> None:
        with self._lock:
            self._in_flight = None

    def delivered(self, spooled: SpooledFile) -> None:
        """The landing has it (or it is gone from disk): forget it, then delete it."""
        with self._lock:
            self._in_flight = None
            if spooled in self._files:
                self._files.remove(spooled)
        spooled.path.unlink(missing_ok=True)

    # -- status ------------------------------------------------------------------------------

    def pending(self) -> tuple[int, int]:
        """(closed files waiting, bytes in the spool)."""
        with self._lock:
            return len(self._files), self._total_locked()
