"""Where a multi-part package splits. One block blob commits at most 50,000 blocks (Azure); a package is one blob
unless its items need more, then it is several numbered parts, each a package blob of its own. The split is
decided once every item is attested (the checkpoint step), from what attesting saw: each sealed media object's
size (its manifest's), so each part's blocks can be bounded before a byte is staged — blocks are staged to the
blob they belong to, so a segment's part must be known before it is written.

The bound per segment (the items of one batch within one part, `verbatim.exports.blocks`): a member of at
least a block is streamed into ceil((size + block) / largest block) blocks of its own (the gathered bytes before it
at its head), its tail under a block gathered; everything else is gathered into full blocks; one partial block
closes the segment. The part's end (README, index, load files, the manifest, the central directory) is bounded by
`END_BYTES` and `END_BYTES_PER_ITEM`. A chat's bundles are not sized before packaging: `CHAT_BUNDLE_BYTES` each.
The assembly still counts the real blocks of every part and fails the export, with the reason, past the limit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

END_BYTES = 4 * 1024 * 1024  # the verifiers, keys, README, export.json: well under this
END_BYTES_PER_ITEM = 16 * 1024  # an item's rows in index.html, the load files, the manifest, the central directory
ITEM_BYTES = 16 * 1024  # an item's metadata files (recording.json, verdicts, call record, manifests)
TRAIL_ENTRY_BYTES = 4 * 1024  # an audit-trail line and its tlog-proof
CHAT_BUNDLE_BYTES = 8 * 1024 * 1024  # a sealed chat-day bundle with its transcripts and inline images (a guess)


@dataclass(frozen=True)
class ItemSize:
    """What an item puts into the package: the sizes of its sealed media members and its other bytes."""

    media: Sequence[int] = ()
    other: int = ITEM_BYTES


@dataclass
class _Part:
    items: int = 0
    closed: int = 0  # blocks of the part's finished segments
    streamed: int = 0  # the open segment's streamed blocks
    gathered: int = 0  # the open segment's gathered bytes
    segment_open: bool = False

    def segment_blocks(self, block: int) -> int:
        return self.streamed + self.gathered // block + 1 if self.segment_open else 0

    def blocks(self, block: int) -> int:
        end = (END_BYTES + END_BYTES_PER_ITEM * self.items) // block + 1
        return self.closed + self.segment_blocks(block) + end


@dataclass
class PartSplit:
    """The first item position of each part (`[0]`: one part, the single-package layout)."""

    firsts: list[int] = field(default_factory=lambda: [0])
    estimates: list[int] = field(default_factory=list)


def split(
    items: Sequence[ItemSize],
    *,
    batch: int,
    max_blocks: int,
    max_items: int,
    block_bytes: int,
    max_block_bytes: int,
) -> PartSplit:
    """Fill parts in package order, starting a new one where the next item would take the current part past
    `max_blocks` (by the bound above) or `max_items`. Batches of `batch` items are the segments; a part may begin
    inside a batch (the batch then writes a segment into each part). An item past the limit on its own still
    gets a part (the assembly then fails the export, saying why)."""
    result = PartSplit(firsts=[0], estimates=[])
    part = _Part()
    for position, item in enumerate(items):
        candidate = _with(part, item, position % batch == 0, block_bytes, max_block_bytes)
        if part.items and (candidate.blocks(block_bytes) > max_blocks or candidate.items > max_items):
            result.estimates.append(part.blocks(block_bytes))
            result.firsts.append(position)
            candidate = _with(_Part(), item, True, block_bytes, max_block_bytes)
        part = candidate
    result.estimates.append(part.blocks(block_bytes))
    return result


def _with(part: _Part, item: ItemSize, new_segment: bool, block: int, largest: int) -> _Part:
    closed, streamed, gathered = part.closed, part.streamed, part.gathered
    if new_segment or not part.segment_open:
        closed += part.segment_blocks(block)
        streamed, gathered = 0, 0
    gathered += item.other
    for size in item.media:
        if size >= block:
            streamed += -(-(size + block) // largest)
            gathered += block  # at most a block's tail (and the head it took) stays gathered
        else:
            gathered += size
    return _Part(part.items + 1, closed, streamed, gathered, True)
