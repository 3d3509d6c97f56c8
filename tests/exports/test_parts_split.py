"""Where a multi-part package splits (verbatim.exports.parts): the bound on each part's blocks, from the sizes of
the sealed media its items carry, is never below what the package's block writer really stages; parts start where
the next item would pass the limit; an item past the limit alone still gets a part (the assembly then fails the
export with the reason)."""

from __future__ import annotations

import random

from verbatim.exports import parts
from verbatim.exports.blocks import BlockSink
from verbatim.exports.parts import END_BYTES, END_BYTES_PER_ITEM, ItemSize, split
from verbatim.platform.blobs import InMemoryBlobStore

MIB = 1024 * 1024
BLOCK, LARGEST = 8 * MIB, 4000 * MIB


def test_the_bound_is_never_below_the_blocks_the_writer_stages() -> None:
    """Scaled down (blocks of 16 bytes gathered, at most 40 per block) and seeded: random items of small and
    large members through the real BlockSink, one segment; the bound covers the blocks it staged."""
    rng = random.Random(18)
    for _ in range(300):
        items = [
            ItemSize(tuple(rng.choice((0, 3, 15, 16, 17, 39, 40, 41, 95)) for _ in range(rng.randint(0, 4))), 5)
            for _ in range(rng.randint(1, 6))
        ]
        sink = BlockSink(InMemoryBlobStore(), "p.zip", "s0000000", block_bytes=16, max_block_bytes=40)
        for item in items:
            sink.write(b"m" * item.other)
            for size in item.media:
                if sink.streams(size):
                    sink.stream([b"x" * size], size)
                else:
                    sink.write(b"x" * size)
        staged = len(sink.close())
        found = split(items, batch=len(items), max_blocks=10**12, max_items=100, block_bytes=16, max_block_bytes=40)
        end = (END_BYTES + END_BYTES_PER_ITEM * len(items)) // 16 + 1
        assert found.firsts == [0] and found.estimates[0] - end >= staged, (items, staged, found)


def test_an_export_within_one_blob_is_one_part() -> None:
    found = split(
        [ItemSize((40 * MIB, 4 * MIB))] * 1000,
        batch=8,
        max_blocks=50_000,
        max_items=50_000,
        block_bytes=BLOCK,
        max_block_bytes=LARGEST,
    )
    assert found.firsts == [0] and found.estimates[0] < 50_000


def test_small_media_split_where_the_next_item_would_pass_the_limit_even_inside_a_batch() -> None:
    """7 MiB files are gathered (8 to a batch: 56 MiB, 7 full blocks and one that closes the segment); with 30
    blocks per part (lowered from 50,000) three batches and five items of the fourth fit: 24 + 5 + the end."""
    items = [ItemSize((7 * MIB,), other=0)] * 64
    found = split(items, batch=8, max_blocks=30, max_items=10_000, block_bytes=BLOCK, max_block_bytes=LARGEST)
    assert found.firsts[:2] == [0, 29] and found.estimates[0] == 30
    assert all(estimate <= 30 for estimate in found.estimates)


def test_large_media_take_blocks_of_their_own_of_up_to_4000_mib() -> None:
    """A 10,000 MiB stream: ceil((10,000 + 8) / 4,000) = 3 blocks of its own and a block's worth gathered (its
    head and tail); two of them: 6 + 2 + 1 closing the segment + 1 for the end = 10, a part's limit here."""
    found = split(
        [ItemSize((10_000 * MIB,), other=0)] * 5,
        batch=8,
        max_blocks=10,
        max_items=100,
        block_bytes=BLOCK,
        max_block_bytes=LARGEST,
    )
    assert found.firsts == [0, 2, 4] and found.estimates == [10, 10, 6]


def test_items_per_part() -> None:
    found = split(
        [ItemSize()] * 10, batch=8, max_blocks=50_000, max_items=3, block_bytes=BLOCK, max_block_bytes=LARGEST
    )
    assert found.firsts == [0, 3, 6, 9]


def test_an_item_past_the_limit_alone_still_gets_its_own_part() -> None:
    huge = ItemSize((200_000 * MIB,), other=0)  # 51 streamed blocks on its own
    found = split(
        [ItemSize(), huge, ItemSize()],
        batch=8,
        max_blocks=20,
        max_items=100,
        block_bytes=BLOCK,
        max_block_bytes=LARGEST,
    )
    assert found.firsts == [0, 1, 2] and found.estimates[1] > 20  # the assembly will name it
    assert parts.CHAT_BUNDLE_BYTES == 8 * MIB  # a chat-day bundle's allowance (bundles are not sized beforehand)
