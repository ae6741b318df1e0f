"""Big buffers off the heap: what a freed big buffer leaves behind, in a fresh process."""

from __future__ import annotations

import subprocess
import sys

import pytest

PROBE = """
import ctypes, sys
from appliance.heap_tuning import keep_big_buffers_off_the_heap

class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
                 "uordblks", "fordblks", "keepcost")]

libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = MallInfo2
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
if sys.argv[1] == "tuned":
    assert keep_big_buffers_off_the_heap()
before = libc.mallinfo2().arena
for size in (8 << 20, 8 << 20, 6 << 20):  # freed between uses, like a saved KV cache
    buffer = libc.malloc(size)
    ctypes.memset(buffer, 1, size)
    keep = libc.malloc(4096)  # something small allocated meanwhile, after it on the heap
    libc.free(buffer)
print((libc.mallinfo2().arena - before) >> 20)
"""


def heap_growth_mb(mode: str) -> int:
    command = [sys.executable, "-c", PROBE, mode]
    done = subprocess.run(command, check=False, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return int(done.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_freed_big_buffers_leave_the_heap_as_it_was() -> None:
    assert heap_growth_mb("default") >= 6  # glibc raised its threshold: the heap kept them
    assert heap_growth_mb("tuned") == 0
