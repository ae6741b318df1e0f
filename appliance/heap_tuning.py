"""How the C heap treats big buffers, for a process that runs for weeks.

glibc serves a buffer of 128 KiB or more with its own mapping and unmaps it when freed,
but after the first such free it raises that threshold (up to 32 MiB), so later big
buffers come from the heap. The story's big transient buffers (the KV cache saved
around a summary, 20-40 MB; logits and prompt arrays) then leave holes the heap keeps:
measured here over 10 minutes of the soak, the heap's footprint grew from 86 to 145 MB
while what was in use stayed at 78-125 MB. A fixed threshold keeps every big buffer in a
mapping of its own, given back when freed: over 8 minutes the heap stayed at 59-61 MB.
"""

from __future__ import annotations

import ctypes
import logging

log = logging.getLogger(__name__)

M_MMAP_THRESHOLD = -3
"""glibc's mallopt parameter; setting it also turns off the dynamic raising."""
BIG_BUFFER_BYTES = 1 << 20


def keep_big_buffers_off_the_heap() -> bool:
    """Serve buffers of ``BIG_BUFFER_BYTES`` or more from mappings of their own, given back
    to the system when freed. True when the C library took it (glibc); elsewhere (musl,
    macOS: no ``mallopt``) nothing changes. Cheap and idempotent: the C library is the one
    already loaded in the process, looked up without a subprocess."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    taken = bool(mallopt(M_MMAP_THRESHOLD, BIG_BUFFER_BYTES))
    log.debug("big buffers (>= %d bytes) off the heap: %s", BIG_BUFFER_BYTES, taken)
    return taken
