from __future__ import annotations

import threading
import time

import numpy as np

from appliance.camera.newest_frame import NewestFrameSlot
from appliance.events import Frame


def frame(seq: int) -> Frame:
    return Frame(np.zeros((2, 2, 3), np.uint8), float(seq), seq, "test")


def test_the_newest_frame_wins_and_drops_are_counted() -> None:
    slot = NewestFrameSlot()
    for seq in range(3):
        slot.put(frame(seq))
    taken = slot.take(timeout=0.1)
    assert taken is not None and taken.seq == 2
    assert slot.dropped == 2
    assert slot.delivered == 1


def test_a_frame_is_never_delivered_twice() -> None:
    slot = NewestFrameSlot()
    slot.put(frame(1))
    assert slot.take(timeout=0.1) is not None
    assert slot.take(timeout=0.05) is None


def test_the_producer_never_waits() -> None:
    slot = NewestFrameSlot()
    for seq in range(10_000):
        slot.put(frame(seq))
    assert slot.dropped == 9_999
    taken = slot.take(timeout=0)
    assert taken is not None and taken.seq == 9_999


def test_take_wakes_when_a_frame_arrives() -> None:
    slot = NewestFrameSlot()
    got: list[Frame | None] = []
    consumer = threading.Thread(target=lambda: got.append(slot.take(timeout=5)))
    consumer.start()
    time.sleep(0.05)
    slot.put(frame(7))
    consumer.join(timeout=2)
    assert not consumer.is_alive()
    assert got[0] is not None and got[0].seq == 7


def test_close_wakes_a_waiting_consumer() -> None:
    slot = NewestFrameSlot()
    got: list[Frame | None] = []
    consumer = threading.Thread(target=lambda: got.append(slot.take(timeout=5)))
    consumer.start()
    time.sleep(0.05)
    slot.close()
    consumer.join(timeout=2)
    assert not consumer.is_alive()
    assert got == [None]
    assert slot.closed
