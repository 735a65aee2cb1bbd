"""One writer of snapshots and CURRENT at a time (imagematch.index.publish_lock)."""

from __future__ import annotations

from pathlib import Path

import pytest

from imagematch.index import SnapshotStore
from imagematch.index.publish_lock import PublishBusyError, PublishLock


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now

    def wait(self, seconds: float) -> None:  # a waiter's sleep moves the clock instead
        self.now += seconds


def test_a_second_writer_waits_then_gives_up_naming_the_holder(tmp_path: Path) -> None:
    clock = Clock()
    first = PublishLock(tmp_path, clock=clock, wait=clock.wait)
    second = PublishLock(tmp_path, clock=clock, wait=clock.wait)
    first.acquire("nightly", ttl_seconds=600)
    with pytest.raises(PublishBusyError, match="nightly"):
        second.acquire("operator", ttl_seconds=600, wait_seconds=30)
    assert clock.now >= 1_030.0  # it waited its 30 s
    first.release("nightly")
    second.acquire("operator", ttl_seconds=600)
    assert second.holder() == ("operator", clock.now + 600)


def test_an_expired_lock_is_taken_over(tmp_path: Path) -> None:
    clock = Clock()
    PublishLock(tmp_path, clock=clock).acquire("crashed", ttl_seconds=60)
    clock.now += 61
    lock = PublishLock(tmp_path, clock=clock)
    lock.acquire("next", ttl_seconds=60)
    holder = lock.holder()
    assert holder is not None and holder[0] == "next"
    lock.release("crashed")  # the old holder coming back releases nothing of the new one's
    assert lock.holder() == holder


def test_publishing_nests_and_blocks_another_store(tmp_path: Path) -> None:
    clock = Clock()
    mine = SnapshotStore(tmp_path, lock=PublishLock(tmp_path, clock=clock, wait=clock.wait))
    other = SnapshotStore(tmp_path, lock=PublishLock(tmp_path, clock=clock, wait=clock.wait))
    with mine.publishing(), mine.publishing():  # point_at inside publish takes it again
        with pytest.raises(PublishBusyError):
            other.point_at("v000001")
        assert other.current_version() is None
        mine.point_at("v000001")
    assert mine.current_version() == "v000001" and mine.lock.holder() is None
    other.point_at("v000002")  # free again
    assert other.current_version() == "v000002"
