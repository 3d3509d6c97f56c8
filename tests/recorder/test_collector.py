"""A started recorder moves what it built to start out of the garbage collector's sight (recorder_vm.collector)."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.testkit.teams_platform import FakePlatform
from recorder_vm.collector import freeze_startup_objects
from tests.conftest import Azurite
from tests.recorder.inprocess import recorder_settings, running_recorder


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


def test_a_recorder_built_inside_another_process_freezes_none_of_its_objects(
    azurite_service: Azurite, platform: FakePlatform, tmp_path: Path
) -> None:
    """Freezing is the recorder process's own decision (`recorder_vm.app.serve`), not `build`'s: the tests' in-process
    recorders are built inside a pytest worker, whose objects must stay collectable (and whose own freeze-count checks,
    as the one above, must not see another freeze land in the middle)."""
    gc.unfreeze()
    settings = recorder_settings(azurite_service, platform, tmp_path / "state")

    async def build_and_stop() -> None:
        async with running_recorder(settings):
            pass

    asyncio.run(build_and_stop())
    assert gc.get_freeze_count() == 0
