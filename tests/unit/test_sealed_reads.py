"""`verbatim.evidence.sealed` on the in-memory blob store, which keeps versions as Azure does (Azurite keeps
none): a new current version written over a sealed name is never what is read, the sealed version is; and
every byte read is checked against the seal — the whole object's hash, or the hashes of the chunks a range
covers."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from verbatim.contracts.evidence import BlobRef
from verbatim.evidence.sealed import (
    ChunkHasher,
    EvidenceTampered,
    IntegrityChecker,
    chunk_digests,
    read_sealed,
    verify_sealed,
)
from verbatim.platform.blobs import InMemoryBlobStore


def _sealed(store: InMemoryBlobStore, name: str, data: bytes, chunk_bytes: int = 1024) -> BlobRef:
    version = store.write(name, data)
    return BlobRef(
        blob_name=name,
        version_id=version,
        bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        chunks=chunk_digests(data, chunk_bytes),
    )


DATA = bytes(range(256)) * 20  # 5120 bytes: five 1 KiB chunks


def test_a_new_current_version_over_the_sealed_name_is_not_what_is_read() -> None:
    store = InMemoryBlobStore()
    ref = _sealed(store, "r/access.ogg", DATA)
    store.write("r/access.ogg", b"a substitute" * 100)  # the recorder's identity may write the name
    assert read_sealed(store, ref) == DATA
    assert read_sealed(store, ref, 1000, 2100) == DATA[1000:3100]
    verify_sealed(store, ref)
    assert IntegrityChecker(store).check_ref(ref) is None


def test_without_versions_a_substitute_is_refused_whole_and_by_range() -> None:
    store = InMemoryBlobStore()
    ref = _sealed(store, "r/access.ogg", DATA).model_copy(update={"version_id": None})
    forged = bytearray(DATA)
    forged[3000] ^= 1  # chunk 2
    store.write("r/access.ogg", bytes(forged))
    with pytest.raises(EvidenceTampered, match="hashes to"):
        read_sealed(store, ref)
    with pytest.raises(EvidenceTampered, match="chunk 2"):
        read_sealed(store, ref, 2900, 200)
    assert read_sealed(store, ref, 0, 2048) == DATA[:2048]  # chunks 0 and 1 are untouched
    assert "hashing to" in str(IntegrityChecker(store).check_ref(ref))


def test_a_missing_sealed_version_is_tampered_not_not_found() -> None:
    store = InMemoryBlobStore()
    ref = _sealed(store, "r/evidence.flac", DATA)
    store.delete("r/evidence.flac")
    with pytest.raises(EvidenceTampered, match="missing"):
        read_sealed(store, ref, 0, 10)
    with pytest.raises(EvidenceTampered, match="missing"):
        verify_sealed(store, ref)


def test_an_object_sealed_without_chunk_hashes_is_checked_whole_for_a_range() -> None:
    store = InMemoryBlobStore()
    ref = _sealed(store, "old/access.ogg", DATA).model_copy(update={"chunks": None, "version_id": None})
    assert read_sealed(store, ref, 10, 20) == DATA[10:30]
    store.write("old/access.ogg", DATA[:-1] + b"x")
    with pytest.raises(EvidenceTampered):
        read_sealed(store, ref, 10, 20)  # the change is far from the range, and still caught


@given(st.binary(max_size=5000), st.lists(st.integers(min_value=1, max_value=700), max_size=12), st.integers(1, 999))
def test_chunk_hashes_do_not_depend_on_how_the_stream_was_cut(data: bytes, cuts: list[int], chunk: int) -> None:
    hasher = ChunkHasher(chunk)
    position = 0
    for cut in cuts:
        hasher.update(data[position : position + cut])
        position += cut
    hasher.update(data[position:])
    expected = [hashlib.sha256(data[i : i + chunk]).hexdigest() for i in range(0, len(data), chunk)]
    assert hasher.digests().sha256 == expected


@given(st.integers(0, len(DATA)), st.integers(0, len(DATA)))
def test_every_range_of_an_intact_object_reads_back_exactly(start: int, length: int) -> None:
    store = InMemoryBlobStore()
    ref = _sealed(store, "r/a", DATA)
    start = min(start, len(DATA))
    assert read_sealed(store, ref, start, length) == DATA[start : start + length]
