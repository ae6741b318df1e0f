"""The same error, over and over, is said once a minute, with a count.

When the process runs out of file descriptors, asyncio's accept loop logs the same
traceback for every try: 154,722 of them (64 MB of journal) in about 8 s were seen. A
record like one said less than ``window_s`` ago (same logger, level, first line and
exception type) is held back and counted; the next one after the window is said with
how many were held back.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable

WINDOW_S = 60.0
KEYS_KEPT = 256
"""Distinct records remembered (the oldest forgotten first)."""


class RepeatedRecords(logging.Filter):
    def __init__(
        self, window_s: float = WINDOW_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__()
        self.window_s = window_s
        self.clock = clock
        self.seen: OrderedDict[tuple[object, ...], tuple[float, int]] = OrderedDict()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            first_line = record.getMessage().split("\n", 1)[0]
        except Exception:  # a record whose arguments do not fit its message
            return True
        exc_type = record.exc_info[0] if record.exc_info else None
        key = (record.name, record.levelno, first_line, exc_type)
        now = self.clock()
        said_at, held = self.seen.pop(key, (None, 0))
        if said_at is not None and now - said_at < self.window_s:
            self.seen[key] = (said_at, held + 1)
            return False
        self.seen[key] = (now, 0)
        while len(self.seen) > KEYS_KEPT:
            self.seen.popitem(last=False)
        if held:
            record.msg = f"{record.msg} (and {held} more like it in the last {now - said_at:.0f} s)"  # type: ignore[operator]
        return True


def hold_back_repeats(logger: logging.Logger | None = None) -> None:
    """On every handler of ``logger`` (the root one by default)."""
    for handler in (logger or logging.getLogger()).handlers:
        if not any(isinstance(f, RepeatedRecords) for f in handler.filters):
            handler.addFilter(RepeatedRecords())
