"""A started recorder moves what it built to start out of the garbage collector's sight (recorder_vm.collector)."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from recorder_vm.collector import freeze_startup_objects


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


@pytest.fixture
def unfrozen() -> Iterator[None]:
    yield
    gc.unfreeze()  # the rest of the test session collects as before


def test_objects_alive_at_start_up_are_frozen_and_garbage_is_collected_not_frozen(unfrozen: None) -> None:
    kept = Node()
    garbage = Node()
    garbage.other = Node()
    garbage.other.other = garbage  # a cycle: only a collection frees it
    gone = weakref.ref(garbage)
    del garbage

    frozen = freeze_startup_objects()

    assert gone() is None  # collected first, not kept forever in the permanent generation
    assert frozen == gc.get_freeze_count() > 0
    assert not any(item is kept for item in gc.get_objects())  # no collection walks it any more
    after = Node()
    assert any(item is after for item in gc.get_objects())  # what calls create still is collected
