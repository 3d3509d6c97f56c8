"""C2SP tlog-tiles (c2sp.org/tlog-tiles): the immutable files a log is stored and served as (no I/O).

- A tile at level L, index N holds up to 256 consecutive node hashes of tree level 8*L: hash i is the root
  of leaves [(N*256 + i) * 256**L, (N*256 + i + 1) * 256**L). A full tile is 256 hashes (8,192 bytes); the
  rightmost tiles of a tree are partial (1..255 hashes, path suffix `.p/<W>`), and a partial tile is never
  hashed into the level above. The hash of a full tile (its 256 hashes as a perfect subtree) is the
  corresponding hash of the tile above.
- Paths: `tile/<L>/<N>[.p/<W>]` and, for entries, `tile/entries/<N>[.p/<W>]`; N in zero-padded 3-digit
  groups, all but the last prefixed `x` (1234067 -> `x001/x234/067`).
- An entry bundle is its entries, each prefixed with its length as a big-endian uint16.

`TileNodes` serves any perfect node from tiles, so `merkle`'s roots and proofs run over blob storage as
they run over memory.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from verbatim.ledger.merkle import HASH_SIZE, NodeSource, leaf_hash, node_hash

TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT
MAX_LEVEL = 63
MAX_ENTRY_BYTES = 0xFFFF


class TileError(ValueError):
    """A tile path, tile or entry bundle that is malformed. `code` is stable, for machines."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def encode_index(index: int) -> str:
    if index < 0:
        raise TileError("tile.bad_path", f"tile index {index} is negative")
    groups = []
    while True:
        groups.append(f"{index % 1000:03d}")
        index //= 1000
        if index == 0:
            break
    groups.reverse()
    return "/".join([*(f"x{g}" for g in groups[:-1]), groups[-1]])


def _suffix(width: int) -> str:
    if not 1 <= width <= TILE_WIDTH:
        raise TileError("tile.bad_path", f"tile width {width} is not between 1 and {TILE_WIDTH}")
    return "" if width == TILE_WIDTH else f".p/{width}"


@dataclass(frozen=True, order=True)
class TileRef:
    """Tile `index` at `level` holding `width` hashes (256 = full)."""

    level: int
    index: int
    width: int = TILE_WIDTH

    @property
    def path(self) -> str:
        if not 0 <= self.level <= MAX_LEVEL:
            raise TileError("tile.bad_path", f"tile level {self.level} is not between 0 and {MAX_LEVEL}")
        return f"tile/{self.level}/{encode_index(self.index)}{_suffix(self.width)}"

    @property
    def is_full(self) -> bool:
        return self.width == TILE_WIDTH


@dataclass(frozen=True, order=True)
class BundleRef:
    """Entry bundle `index` holding `width` entries (256 = full): entries [index*256, index*256 + width)."""

    index: int
    width: int = TILE_WIDTH

    @property
    def path(self) -> str:
        return f"tile/entries/{encode_index(self.index)}{_suffix(self.width)}"

    @property
    def first_entry(self) -> int:
        return self.index * TILE_WIDTH


_INDEX = re.compile(r"((?:x[0-9]{3}/)*)([0-9]{3})(?:\.p/([1-9][0-9]{0,2}))?")
_LEVEL = re.compile(r"0|[1-9][0-9]?")


def parse_index(text: str) -> tuple[int, int]:
    """`x001/x234/067.p/89` -> (1234067, 89); a full tile's width is 256."""
    match = _INDEX.fullmatch(text)
    if match is None:
        raise TileError("tile.bad_path", f"{text!r} is not a tile index")
    prefix, last, width = match.groups()
    groups = [g[1:] for g in prefix.split("/") if g] + [last]
    if len(groups) > 7:  # 2**64 has 20 digits
        raise TileError("tile.bad_path", f"tile index {text!r} is too large")
    index = int("".join(groups))
    if index >= 1 << 64:
        raise TileError("tile.bad_path", f"tile index {text!r} is too large")
    if width is not None and int(width) >= TILE_WIDTH:
        raise TileError("tile.bad_path", f"a partial tile is 1..255 wide, not {width}")
    return index, int(width) if width is not None else TILE_WIDTH


def parse_path(path: str) -> TileRef | BundleRef:
    """A tile or entry-bundle path, strictly (no leading zeroes in levels and widths, 3-digit groups)."""
    head, _, rest = path.partition("/")
    level_text, _, index_text = rest.partition("/")
    if head != "tile" or not index_text:
        raise TileError("tile.bad_path", f"{path!r} is not a tile path")
    if level_text == "entries":
        return BundleRef(*parse_index(index_text))
    if not _LEVEL.fullmatch(level_text) or int(level_text) > MAX_LEVEL:
        raise TileError("tile.bad_path", f"tile level {level_text!r} is not between 0 and {MAX_LEVEL}")
    return TileRef(int(level_text), *parse_index(index_text))


def tiles_for_size(size: int) -> list[TileRef]:
    """Every tile a tree of `size` leaves is stored as: its full tiles and the partial tile of each level."""
    tiles: list[TileRef] = []
    level = 0
    while level == 0 or size >> (TILE_HEIGHT * level) > 0:
        hashes = size >> (TILE_HEIGHT * level)  # node hashes at tree level 8*level
        tiles.extend(TileRef(level, n) for n in range(hashes // TILE_WIDTH))
        if hashes % TILE_WIDTH:
            tiles.append(TileRef(level, hashes // TILE_WIDTH, hashes % TILE_WIDTH))
        level += 1
        if hashes < TILE_WIDTH:
            break
    return tiles


def bundles_for_size(size: int) -> list[BundleRef]:
    bundles = [BundleRef(n) for n in range(size // TILE_WIDTH)]
    if size % TILE_WIDTH:
        bundles.append(BundleRef(size // TILE_WIDTH, size % TILE_WIDTH))
    return bundles


def tile_for(level: int, index: int, size: int) -> TileRef:
    """The tile (full, or partial as of tree `size`) holding hash `index` of tile level `level`."""
    hashes = size >> (TILE_HEIGHT * level)
    if index >= hashes:
        raise TileError("tile.out_of_tree", f"hash {index} of tile level {level} is not in a tree of size {size}")
    n = index // TILE_WIDTH
    return TileRef(level, n, min(TILE_WIDTH, hashes - n * TILE_WIDTH))


def bundle_for(entry_index: int, size: int) -> BundleRef:
    ref = tile_for(0, entry_index, size)
    return BundleRef(ref.index, ref.width)


def tile_bytes(ref: TileRef, node: NodeSource) -> bytes:
    """The content of a tile, from any source of perfect nodes (e.g. `merkle.MemoryTree.node`)."""
    level = TILE_HEIGHT * ref.level
    return b"".join(node(level, ref.index * TILE_WIDTH + i) for i in range(ref.width))


def split_tile(data: bytes, width: int = TILE_WIDTH) -> list[bytes]:
    if len(data) != width * HASH_SIZE:
        raise TileError("tile.wrong_size", f"a tile of {width} hashes is {width * HASH_SIZE} bytes, not {len(data)}")
    return [data[i : i + HASH_SIZE] for i in range(0, len(data), HASH_SIZE)]


def perfect_root(hashes: Sequence[bytes]) -> bytes:
    """The root of a perfect subtree given its 2**k lowest hashes."""
    if not hashes or len(hashes) & (len(hashes) - 1):
        raise ValueError(f"{len(hashes)} hashes do not form a perfect subtree")
    level = list(hashes)
    while len(level) > 1:
        level = [node_hash(level[i], level[i + 1]) for i in range(0, len(level), 2)]
    return level[0]


def tile_root(data: bytes) -> bytes:
    """The hash a full tile contributes to the tile above it."""
    return perfect_root(split_tile(data))


# --- entry bundles ---


def encode_bundle(entries: Sequence[bytes]) -> bytes:
    if not 1 <= len(entries) <= TILE_WIDTH:
        raise TileError("bundle.malformed", f"a bundle holds 1..{TILE_WIDTH} entries, not {len(entries)}")
    parts = []
    for position, entry in enumerate(entries):
        if len(entry) > MAX_ENTRY_BYTES:
            raise TileError("bundle.entry_too_large", f"entry {position} is {len(entry)} bytes, over {MAX_ENTRY_BYTES}")
        parts.append(len(entry).to_bytes(2, "big") + entry)
    return b"".join(parts)


def decode_bundle(data: bytes, width: int | None = None) -> list[bytes]:
    """The entries of a bundle; with `width`, exactly that many."""
    entries: list[bytes] = []
    offset = 0
    while offset < len(data):
        if offset + 2 > len(data):
            raise TileError("bundle.malformed", f"the bundle ends inside the length of entry {len(entries)}")
        length = int.from_bytes(data[offset : offset + 2], "big")
        if offset + 2 + length > len(data):
            raise TileError("bundle.malformed", f"entry {len(entries)} runs past the end of the bundle")
        entries.append(data[offset + 2 : offset + 2 + length])
        offset += 2 + length
    if width is not None and len(entries) != width:
        raise TileError("bundle.malformed", f"the bundle holds {len(entries)} entries, not {width}")
    return entries


# --- reading a tree from its tiles ---

TileReader = Callable[[TileRef], bytes]
"""Reads a tile's bytes; raises TileError (code `tile.missing`) for a tile that is not there."""


class TileNodes:
    """Perfect nodes of the tree of `size` leaves, read from its tiles (each tile read once, then cached):
    node (8*L + r, i) is the root of 2**r consecutive hashes in a level-L tile."""

    def __init__(self, size: int, read: TileReader) -> None:
        self.size = size
        self._read = read
        self._cache: dict[TileRef, list[bytes]] = {}

    def hashes(self, ref: TileRef) -> list[bytes]:
        if ref not in self._cache:
            self._cache[ref] = split_tile(self._read(ref), ref.width)
        return self._cache[ref]

    def node(self, level: int, index: int) -> bytes:
        tile_level, height = divmod(level, TILE_HEIGHT)
        first = index << height  # the node's first hash in tile level `tile_level`
        last = first + (1 << height) - 1
        ref = tile_for(tile_level, last, self.size)
        offset = first - ref.index * TILE_WIDTH
        return perfect_root(self.hashes(ref)[offset : offset + (1 << height)])


@dataclass(frozen=True)
class TileFinding:
    code: str
    message: str
    path: str


def check_tiles(size: int, read_tile: TileReader, read_bundle: Callable[[BundleRef], bytes]) -> Iterator[TileFinding]:
    """Re-derive every tile of a tree of `size` from its entry bundles and the tiles below it; yields one
    finding per tile or bundle that does not match (the caller compares the root with the checkpoint)."""
    for bundle in bundles_for_size(size):
        tile = TileRef(0, bundle.index, bundle.width)
        entries: list[bytes] | None = None
        stored: list[bytes] | None = None
        try:
            entries = decode_bundle(read_bundle(bundle), bundle.width)
        except TileError as error:
            yield TileFinding(error.code, str(error), bundle.path)
        try:
            stored = split_tile(read_tile(tile), tile.width)
        except TileError as error:
            yield TileFinding(error.code, str(error), tile.path)
        if entries is None or stored is None:
            continue
        for position, (entry, stored_hash) in enumerate(zip(entries, stored, strict=True)):
            if leaf_hash(entry) != stored_hash:
                yield TileFinding(
                    "tile.leaf_mismatch",
                    f"entry {bundle.first_entry + position} does not hash to the leaf hash stored for it in "
                    f"{tile.path} (the entry or the tile was altered)",
                    bundle.path,
                )
    for tile in tiles_for_size(size):
        if tile.level == 0:
            continue
        try:
            stored = split_tile(read_tile(tile), tile.width)
        except TileError as error:
            yield TileFinding(error.code, str(error), tile.path)
            continue
        for position, stored_hash in enumerate(stored):
            below = TileRef(tile.level - 1, tile.index * TILE_WIDTH + position)
            try:
                computed = tile_root(read_tile(below))
            except TileError as error:
                yield TileFinding(error.code, str(error), below.path)
                continue
            if computed != stored_hash:
                yield TileFinding(
                    "tile.node_mismatch",
                    f"hash {position} of {tile.path} is not the hash of the full tile {below.path}",
                    tile.path,
                )


__all__ = [
    "MAX_ENTRY_BYTES",
    "TILE_HEIGHT",
    "TILE_WIDTH",
    "BundleRef",
    "TileError",
    "TileFinding",
    "TileNodes",
    "TileReader",
    "TileRef",
    "bundle_for",
    "bundles_for_size",
    "check_tiles",
    "decode_bundle",
    "encode_bundle",
    "encode_index",
    "parse_index",
    "parse_path",
    "perfect_root",
    "split_tile",
    "tile_bytes",
    "tile_for",
    "tile_root",
    "tiles_for_size",
]
