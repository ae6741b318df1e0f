"""What the fleet benchmarks' processes cost: CPU and memory of process trees, from /proc.

The fleet job is many processes: the driver (this one), its JVM, Python daemons and the
workers they fork (the landing source's planning and reading, the story's pandas UDF), and
on a standalone cluster the workers' JVMs and theirs. Memory is counted two ways:

- **in use at once** (``MemoryMeter``): the trees' proportional set size (PSS), sampled each
  second, highest total kept. A page shared by n processes counts 1/n in each, so a worker
  forked from a daemon, and the libraries every Python process maps, count once in all.
- **each living process's own peak, added up** (VmHWM): what the benchmarks reported
  before; it counts every shared page in every process that maps it (so with forked workers
  it is well above what the machine holds), and leaves out processes that have ended.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from types import TracebackType

log = logging.getLogger(__name__)


def _children() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    return children


def cluster_workers() -> list[int]:
    """The Spark standalone workers running on this machine (their executors and Python
    workers are their children)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if b"org.apache.spark.deploy.worker.Worker" in command:
            found.append(int(entry.name))
    return found


def tree(roots: list[int], leave_out: frozenset[int] = frozenset()) -> list[int]:
    """``roots`` and every process descended from them (the JVM, the Python workers), but
    for those in ``leave_out`` and theirs."""
    children = _children()
    found, todo = [], list(roots)
    while todo:
        pid = todo.pop()
        if pid in leave_out:
            continue
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def tree_cpu_s(roots: list[int]) -> float:
    """CPU seconds used by the process trees (living processes, and the children they
    have waited for)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in tree(roots):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        utime, stime, cutime, cstime = (int(f) for f in fields[11:15])
        total += (utime + stime + cutime + cstime) / tick
    return total


def kind(pid: int, command: list[str]) -> str:
    """What a process of the tree is: ``this process``, ``JVM``, the module a Python
    process runs (with the worker module a ``pyspark.daemon`` serves: its forked workers
    share its command line), ``python -c``, its script, or the program's name."""
    if pid == os.getpid():
        return "this process"
    program = os.path.basename(command[0]) if command else "?"
    if program.startswith("java"):
        return "JVM"
    if program.startswith("python"):
        return _python_kind(command[1:]) or program
    return program


OPTIONS_WITH_VALUE = ("-X", "-W", "--check-hash-based-pycs")


def _python_kind(args: list[str]) -> str | None:
    for at, arg in enumerate(args):
        if at > 0 and args[at - 1] in OPTIONS_WITH_VALUE:
            continue
        if arg.startswith("-m") and len(arg) > 2:  # -mmodule
            return arg[2:]
        if arg == "-m" and at + 1 < len(args):
            module = args[at + 1]
            return " ".join(args[at + 1 : at + 3]) if module == "pyspark.daemon" else module
        if arg == "-c":
            return "python -c"
        if not arg.startswith("-"):
            return os.path.basename(arg)
    return None


def _field_kb(text: str, name: str) -> int | None:
    return next((int(line.split()[1]) for line in text.splitlines() if line.startswith(name)), None)


def _by_kind(
    roots: list[int], source: str, field: str, leave_out: frozenset[int] = frozenset()
) -> dict[str, dict[str, float]]:
    parts: dict[str, dict[str, float]] = {}
    for pid in tree(roots, leave_out):
        try:
            found = _field_kb(Path(f"/proc/{pid}/{source}").read_text(), field)
            command = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:  # gone, or not ours to read
            continue
        if found is None:  # a zombie
            continue
        args = command.rstrip("\0").split("\0") if command.strip("\0") else []
        part = parts.setdefault(kind(pid, args), {"processes": 0, "mb": 0.0})
        part["processes"] += 1
        part["mb"] += found / 1024
    return {
        name: {"processes": part["processes"], "mb": round(part["mb"], 1)}
        for name, part in parts.items()
    }


def tree_peak_rss_parts(
    roots: list[int], leave_out: frozenset[int] = frozenset()
) -> dict[str, dict[str, float]]:
    """Each living process's own peak resident memory (VmHWM), added up by kind:
    ``{kind: {"processes": n, "mb": MB}}``; shared pages count in every process."""
    return _by_kind(roots, "status", "VmHWM:", leave_out)


def tree_pss_parts(
    roots: list[int], leave_out: frozenset[int] = frozenset()
) -> dict[str, dict[str, float]]:
    """The memory each kind of process holds now, shared pages shared out (PSS)."""
    return _by_kind(roots, "smaps_rollup", "Pss:", leave_out)


def total_mb(parts: dict[str, dict[str, float]]) -> float:
    return round(sum(part["mb"] for part in parts.values()), 1)


def describe_memory(parts: dict[str, dict[str, float]]) -> str:
    """``JVM 812 MB (1), pyspark.daemon pyspark.worker 420 MB (3), ...``, largest first."""
    ordered = sorted(parts.items(), key=lambda item: -item[1]["mb"])
    return ", ".join(f"{name} {p['mb']:.0f} MB ({p['processes']:.0f})" for name, p in ordered)


class MemoryMeter:
    """The trees' memory in use at once (PSS), sampled every ``interval_s`` in a thread of
    this process while the block runs: the highest total and its parts. Each sample reads a
    few dozen small /proc files (well under 1% of a core at one a second)."""

    def __init__(
        self, roots: list[int], interval_s: float = 1.0, leave_out: frozenset[int] = frozenset()
    ) -> None:
        self.roots = roots
        self.leave_out = leave_out
        self.interval_s = interval_s
        self.peak_mb = 0.0
        self.peak_parts: dict[str, dict[str, float]] = {}
        self.last_mb = 0.0
        """The last sample's total: with a long run, what the job settles at."""
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="memory-meter", daemon=True)

    def sample(self) -> None:
        parts = tree_pss_parts(self.roots, self.leave_out)
        with self._lock:  # the thread's samples and the caller's
            self.last_mb = total_mb(parts)
            if self.last_mb > self.peak_mb:
                self.peak_mb, self.peak_parts = self.last_mb, parts

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.sample()
            except Exception:  # a benchmark figure, never worth the run
                log.exception("memory sample failed")

    def __enter__(self) -> MemoryMeter:
        self.sample()
        self._thread.start()
        return self

    def __exit__(
        self,
        error_type: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()
