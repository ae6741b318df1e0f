"""The landing as a Spark streaming source that forgets what it has cleaned up.

Spark's own file source remembers the name of every file it has ever read, in its
checkpoint (about 130 bytes a file, the whole list rewritten every 10 batches) and in the
driver's memory: at a hundred files a second that is a gigabyte a day, for ever. This
source needs to remember much less, because landing files are named
``<device>-<seq:012d>.parquet`` with ``seq`` increasing per device and delivered oldest
first (``appliance.fleet.rows``): once a file has been read and committed, any file of the
same device with a sequence number at or below it is a resend of something already read.
So the source keeps, beside the query's checkpoint (``ledger``):

    done.json                  the newest committed batch, and per device the highest
                               sequence number committed
    planned/<batch:012d>.json  the files of each batch planned and not yet committed

A batch is planned (its files listed, oldest first, at most ``maxFilesPerTrigger``) and
written to ``planned/`` before Spark records its offset (``{"batch": n}``), so the batch
Spark replays after a crash reads exactly the same files. When Spark reports a batch
committed, its files are cleaned up (deleted, moved to ``archive``, or left alone), the
devices' sequence numbers are saved, and its plan is removed. The ledger grows with the
number of devices, never with the number of files.

Reading happens in the executors, a task per group of files, with pyarrow: each file is
fitted to the query's schema (a missing column reads as nulls, as Spark's reader did) and
handed to the JVM as Arrow record batches, so there is no Python on the per-row path. A file
that is not Parquet, or cannot be fitted, is renamed ``<name>.damaged`` in the landing and
logged; the rest of the batch goes on.

Registered as ``moodtale_landing``:

    spark.dataSource.register(LandingSource)
    spark.readStream.format("moodtale_landing").schema(DDL).option("ledger", DIR).load(PATH)
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import posixpath
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pyspark.sql.datasource import DataSource, DataSourceStreamReader, InputPartition
from pyspark.sql.streaming.datasource import (
    ReadLimit,
    ReadMaxFiles,
    SupportsTriggerAvailableNow,
)

from appliance.fleet.rows import LANDING_FILE_NAME, LANDING_SUFFIX
from appliance.fleet.spool import write_atomically

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.fs as pafs
    from pyspark.sql.types import StructType

log = logging.getLogger(__name__)

NAME = "moodtale_landing"
DONE = "done.json"
PLANNED = "planned"
DAMAGED_SUFFIX = ".damaged"
CLEANUP_MODES = ("delete", "archive", "off")


def filesystem(location: str) -> tuple[pafs.FileSystem, str]:
    """The file system a path or URI lives on, and the path within it (a plain path is
    local, made absolute)."""
    import pyarrow.fs as pafs

    if "://" in location:
        found: tuple[pafs.FileSystem, str] = pafs.FileSystem.from_uri(location)
        return found
    return pafs.LocalFileSystem(), os.path.abspath(location)


def write_json(fs: pafs.FileSystem, path: str, value: Any) -> None:
    """Written whole under a hidden name, then renamed (on a local disk atomically, and
    fsynced: a power cut leaves the old file or the new one)."""
    import pyarrow.fs as pafs

    if isinstance(fs, pafs.LocalFileSystem):
        write_atomically(Path(path), json.dumps(value, separators=(",", ":")).encode())
        return
    directory, name = posixpath.split(path)
    temporary = posixpath.join(directory, f".{name}.tmp")
    with fs.open_output_stream(temporary) as out:
        out.write(json.dumps(value, separators=(",", ":")).encode())
    fs.move(temporary, path)


def read_json(fs: pafs.FileSystem, path: str) -> Any:
    with fs.open_input_stream(path) as stream:
        return json.loads(stream.read())


@dataclass(frozen=True)
class LandingFile:
    name: str
    device: str
    seq: int
    mtime_ns: int


@dataclass(frozen=True)
class Ledger:
    """What the source remembers of committed batches (``done.json``)."""

    batch: int
    seqs: dict[str, int]

    def already_read(self, file: LandingFile) -> bool:
        return file.seq <= self.seqs.get(file.device, -1)


class FileGroup(InputPartition):
    """One read task: files of the landing, by name."""

    def __init__(self, root: str, names: list[str]) -> None:
        super().__init__(names)
        self.root = root
        self.names = names


class LandingSource(DataSource):
    """``spark.readStream.format("moodtale_landing")``: see the module's text."""

    @classmethod
    def name(cls) -> str:
        return NAME

    def schema(self) -> str:
        from appliance.fleet.venue_windows import LANDING_SCHEMA_DDL

        return LANDING_SCHEMA_DDL

    def streamReader(self, schema: StructType) -> DataSourceStreamReader:  # noqa: N802 (Spark's name)
        return LandingReader(dict(self.options), schema)


class LandingReader(DataSourceStreamReader, SupportsTriggerAvailableNow):
    def __init__(self, given: dict[str, str], schema: StructType) -> None:
        options = {key.lower(): value for key, value in given.items()}  # Spark's are, or not
        if "path" not in options or "ledger" not in options:
            raise ValueError("the landing source needs a path (load(PATH)) and a 'ledger'")
        self.location = options["path"]
        self.fs, self.root = filesystem(options["path"])
        ledger_fs, self.ledger_dir = filesystem(options["ledger"])
        if type(ledger_fs) is not type(self.fs):
            raise ValueError("the landing and its ledger must be on the same kind of storage")
        self.max_files = int(options.get("maxfilespertrigger", "10000"))
        if self.max_files < 1:
            raise ValueError(f"maxFilesPerTrigger must be at least 1, not {self.max_files}")
        self.tasks = int(options.get("tasks", "8"))
        self.cleanup = options.get("cleanup", "delete")
        if self.cleanup not in CLEANUP_MODES:
            raise ValueError(f"cleanup must be one of {CLEANUP_MODES}, not {self.cleanup!r}")
        self.archive = options.get("archive")
        if self.cleanup == "archive" and not self.archive:
            raise ValueError("cleanup 'archive' needs an 'archive' directory")
        if self.archive:
            self.archive = filesystem(self.archive)[1]
        self.spark_schema = schema
        self.fs.create_dir(posixpath.join(self.ledger_dir, PLANNED), recursive=True)
        self.ledger = self._load_ledger()
        self.available_now: set[str] | None = None

    # -- the ledger --------------------------------------------------------------------

    def _load_ledger(self) -> Ledger:
        import pyarrow.fs as pafs

        path = posixpath.join(self.ledger_dir, DONE)
        if self.fs.get_file_info(path).type == pafs.FileType.NotFound:
            return Ledger(-1, {})
        saved = read_json(self.fs, path)
        return Ledger(int(saved["batch"]), {str(k): int(v) for k, v in saved["seqs"].items()})

    def _plan_path(self, batch: int) -> str:
        return posixpath.join(self.ledger_dir, PLANNED, f"{batch:012d}.json")

    def _plans(self) -> dict[int, list[str]]:
        """Every batch planned and not yet cleaned up, with its files."""
        from pyarrow.fs import FileSelector

        plans = {}
        for info in self.fs.get_file_info(FileSelector(posixpath.join(self.ledger_dir, PLANNED))):
            if info.is_file and info.base_name.endswith(".json") and info.base_name[0] != ".":
                plans[int(info.base_name.removesuffix(".json"))] = read_json(self.fs, info.path)
        return plans

    # -- planning (driver) ---------------------------------------------------------------

    def _landed(self) -> list[LandingFile]:
        from pyarrow.fs import FileSelector

        files = []
        for info in self.fs.get_file_info(FileSelector(self.root)):
            if not info.is_file or not info.base_name.endswith(LANDING_SUFFIX):
                continue  # hidden files are half written, and never end in .parquet
            match = LANDING_FILE_NAME.match(info.base_name)
            if match is None:
                continue  # not a device's file: left alone
            files.append(
                LandingFile(info.base_name, match["device"], int(match["seq"]), info.mtime_ns or 0)
            )
        return files

    def initialOffset(self) -> dict[str, int]:  # noqa: N802 (Spark's name)
        return {"batch": -1}

    def getDefaultReadLimit(self) -> ReadLimit:  # noqa: N802 (Spark's name)
        return ReadMaxFiles(self.max_files)

    def prepareForTriggerAvailableNow(self) -> None:  # noqa: N802 (Spark's name)
        self.available_now = {f.name for f in self._landed()}

    def latestOffset(self, start: dict[str, int], limit: ReadLimit) -> dict[str, int]:  # noqa: N802 (Spark's name)
        batch = batch_of(start)
        planned = set()
        for planned_batch, names in self._plans().items():
            if planned_batch <= batch:  # recorded by Spark, not yet committed
                planned.update(names)
            # else: planned before a crash, never recorded: planned again below
        fresh: list[LandingFile] = []
        resends: list[LandingFile] = []
        for file in self._landed():
            if file.name in planned:
                continue
            if self.available_now is not None and file.name not in self.available_now:
                continue
            (resends if self.ledger.already_read(file) else fresh).append(file)
        self._drop_resends(resends)
        chosen = choose(fresh, limit)
        if not chosen:
            return start
        write_json(self.fs, self._plan_path(batch + 1), [f.name for f in chosen])
        return {"batch": batch + 1}

    def _drop_resends(self, resends: list[LandingFile]) -> None:
        """Files already read (a device sent one again after a crash): never read twice,
        cleaned up like the rest (left alone with cleanup 'off')."""
        if not resends or self.cleanup == "off":
            return
        log.info("%d landing files already read (resent): not read again", len(resends))
        for file in resends:
            self._clean(file.name)

    def partitions(self, start: dict[str, int], end: dict[str, int]) -> Sequence[InputPartition]:
        names: list[str] = []
        for batch in range(batch_of(start) + 1, batch_of(end) + 1):
            names.extend(read_json(self.fs, self._plan_path(batch)))
        if not names:
            return []
        count = max(1, min(self.tasks, len(names)))
        root = self.location if "://" in self.location else self.root  # the same for all
        return [FileGroup(root, names[i::count]) for i in range(count)]

    # -- reading (executors) -------------------------------------------------------------

    def read(self, partition: InputPartition) -> Iterator[pa.RecordBatch]:
        assert isinstance(partition, FileGroup)
        yield from read_files(partition.root, partition.names, self.spark_schema)

    # -- committing (driver) -------------------------------------------------------------

    def commit(self, end: dict[str, int]) -> None:
        done = batch_of(end)
        plans = {b: names for b, names in self._plans().items() if b <= done}
        if not plans and done <= self.ledger.batch:
            return
        seqs = dict(self.ledger.seqs)
        for names in plans.values():
            for name in names:
                self._clean(name)
                match = LANDING_FILE_NAME.match(name)
                if match:
                    device, seq = match["device"], int(match["seq"])
                    seqs[device] = max(seq, seqs.get(device, -1))
        self.ledger = Ledger(max(done, self.ledger.batch), seqs)
        write_json(
            self.fs,
            posixpath.join(self.ledger_dir, DONE),
            {"batch": self.ledger.batch, "seqs": seqs},
        )
        for batch in plans:
            self.fs.delete_file(self._plan_path(batch))

    def _clean(self, name: str) -> None:
        path = posixpath.join(self.root, name)
        try:
            if self.cleanup == "delete":
                self.fs.delete_file(path)
            elif self.cleanup == "archive" and self.archive:
                self.fs.create_dir(self.archive, recursive=True)
                self.fs.move(path, posixpath.join(self.archive, name))
        except FileNotFoundError:
            pass  # cleaned up before a crash, or renamed as damaged


def batch_of(offset: dict[str, Any]) -> int:
    """The batch number in an offset of this source; a clear error for one that is not."""
    if "batch" not in offset:
        raise ValueError(
            f"the checkpoint holds an offset of another source ({json.dumps(offset)[:80]}): "
            "it was written by Spark's file source (a release before the landing source). "
            "Let that job read what has landed, then start with a fresh checkpoint and fresh "
            "tables"
        )
    return int(offset["batch"])


def choose(files: list[LandingFile], limit: ReadLimit) -> list[LandingFile]:
    """The oldest files first, up to the limit, each device's in the order of its numbers:
    a device's file is never taken past an older one of its own left for later (its number
    would then mark the one left as read)."""
    by_time = sorted(files, key=lambda f: (f.mtime_ns, f.name))
    in_order: dict[str, list[LandingFile]] = {}
    for file in sorted(files, key=lambda f: f.seq, reverse=True):
        in_order.setdefault(file.device, []).append(file)
    # Each device's turns come when its files landed; at each it gives its lowest number.
    ordered = [in_order[f.device].pop() for f in by_time]
    if isinstance(limit, ReadMaxFiles):
        return ordered[: limit.max_files]
    return ordered


CHUNK_ROWS = 65_536
"""Rows a reading task gathers before it hands them on (it stops taking files once it holds
this many, so it holds at most this and one file's rows more). Read whole, a task of 5,000
files of 5 minutes' rows held 1.5 million rows, and the Python workers 1 GB between them."""


def read_files(root: str, names: list[str], schema: StructType) -> Iterator[pa.RecordBatch]:
    """The files' rows as record batches of ``schema``; a damaged file is set aside."""
    import pyarrow as pa
    import pyarrow.fs as pafs
    import pyarrow.parquet as pq
    from pyspark.sql.pandas.types import to_arrow_schema

    fs, directory = filesystem(root)
    local = isinstance(fs, pafs.LocalFileSystem)
    target = to_arrow_schema(schema, timezone="UTC")
    tables: list[pa.Table] = []
    held = 0
    missing: list[str] = []
    for name in names:
        if held >= CHUNK_ROWS:
            yield from hand_on(tables, target)
            tables, held = [], 0
        path = posixpath.join(directory, name)
        try:
            if local:  # pyarrow's own file, without the file system layer: a third cheaper
                table = pq.ParquetFile(path).read()
            else:
                with fs.open_input_file(path) as source:
                    table = pq.ParquetFile(source).read()
            tables.append(table if fits(table.schema, target) else fit(table, target))
            held += table.num_rows
        except FileNotFoundError:
            if fs.get_file_info(path + DAMAGED_SUFFIX).type == pafs.FileType.NotFound:
                missing.append(name)
        except (pa.ArrowException, ValueError) as damage:
            log.error(
                "landing file %s is damaged (%s): set aside as %s%s",
                name, damage, name, DAMAGED_SUFFIX,
            )  # fmt: skip
            with contextlib.suppress(OSError):
                fs.move(path, path + DAMAGED_SUFFIX)
    if missing and len(missing) == len(names):  # a path this machine does not see
        raise FileNotFoundError(
            f"none of the {len(names)} landing files planned for this task is in {directory} "
            "as this executor sees it: give the job a landing every machine reaches"
        )
    if missing:  # taken away by hand after the batch was planned
        log.warning("%d landing files planned were gone: %s", len(missing), missing[:5])
    if tables:
        yield from hand_on(tables, target)


def hand_on(tables: list[pa.Table], target: pa.Schema) -> Iterator[pa.RecordBatch]:
    """Files' rows as record batches of the target schema, for the JVM."""
    import pyarrow as pa

    yield from pa.concat_tables(tables, promote_options="permissive").cast(target).to_batches()


def fits(schema: pa.Schema, target: pa.Schema) -> bool:
    """Whether a file's columns are the target's, in order and type (nullability aside)."""
    return bool(schema.names == target.names and schema.types == target.types)


def fit(table: pa.Table, target: pa.Schema) -> pa.Table:
    """The table's columns in the target's order and types; a column it lacks is all
    nulls. ``ValueError``/``ArrowInvalid`` when a column cannot be cast."""
    import pyarrow as pa

    columns = []
    for field in target:
        if field.name in table.column_names:
            columns.append(table.column(field.name).cast(field.type))
        else:
            columns.append(pa.nulls(table.num_rows, field.type))
    return pa.Table.from_arrays(columns, schema=target)
