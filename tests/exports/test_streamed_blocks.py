"""Large members streamed into blocks of their own: a package of long calls or video is bounded by Azure's block
size (4,000 MiB x 50,000 blocks), not by 50,000 x the 8 MiB an activity gathers in memory. Exercised on Azurite
with the sizes scaled down (blocks of 16 KiB gathered, at most 40 KiB per block), so that the test's recordings'
evidence is "large": it is streamed as blocks of its own, split where it is longer than a block may be, the bytes
gathered before it at the head of its first block; the package is the same ZIP and verifies offline."""

from __future__ import annotations

import zipfile
from datetime import timedelta
from pathlib import Path

import pytest

from devstack.testkit.records import T0, TRADER
from tests.api.world import seal_recording
from tests.exports.conftest import OFFICER, REASON, ExportWorld
from tests.exports.test_package import run_verifier
from tests.ledger.test_standalone_verifier import isolated_python  # noqa: F401 - the fixture
from verbatim.contracts.exports import ExportRequest
from verbatim.exports import blocks
from verbatim.exports.sealed_media import SealMismatch
from verbatim.platform.blobs import ChunkReader, InMemoryBlobStore
from verbatim.wiring import container_for

pytestmark = pytest.mark.integration
GATHERED, LARGEST = 16 * 1024, 40 * 1024


def test_large_media_is_streamed_into_blocks_of_its_own_and_the_package_verifies(
    export_world: ExportWorld,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    isolated_python: Path,  # noqa: F811
) -> None:
    monkeypatch.setattr(blocks, "BLOCK_BYTES", GATHERED)
    monkeypatch.setattr(blocks, "MAX_BLOCK_BYTES", LARGEST)
    service = container_for(export_world.settings).exports.service
    ids = [r.recording_id for r in export_world.recordings]
    export = service.create(ExportRequest(recording_ids=ids, title="streamed"), OFFICER, REASON)
    result = service.run_inline(export.id, batch=2)
    package = tmp_path / "streamed.zip"
    package.write_bytes(service.work_store.read(result.package_blob))

    with zipfile.ZipFile(package) as archive:
        flac = [i for i in archive.infolist() if i.filename.endswith(".flac")]
        assert archive.testzip() is None
    assert flac and all(i.file_size > LARGEST for i in flac)  # each evidence file is split over blocks
    committed, _ = service.work_store.blocks(result.package_blob)
    sizes = [b.size for b in committed]
    assert max(sizes) <= LARGEST and sum(sizes) == result.package_bytes
    assert sum(1 for size in sizes if size == LARGEST) >= len(flac)  # full streamed blocks
    segments: dict[str, list[int]] = {}
    for block in committed:  # ids: an 8-character segment tag and a number
        segments.setdefault(block.id[:8], []).append(block.size)
    assert len(segments) == (len(ids) + 1) // 2 + 1  # a segment per batch of two, and the end
    assert all(size >= GATHERED for run in segments.values() for size in run[:-1])  # only a segment's last is short
    verified = run_verifier(isolated_python, package, "--quiet")
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_a_large_sealed_object_of_another_length_in_storage_fails_the_export_naming_it(
    export_world: ExportWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(blocks, "BLOCK_BYTES", GATHERED)
    settings = export_world.settings
    sealed = seal_recording(settings, seconds=2.0, started_at=T0 + timedelta(hours=5), user=TRADER)
    container = container_for(settings)
    record = container.recording_finder.get(sealed.recording_id)
    assert record is not None and record.seal is not None
    blob = record.seal.evidence_blob
    data = container.recording_blobs.read(blob)
    assert len(data) > GATHERED
    container.recording_blobs.write(blob, data[:-100])  # shorter than sealed: its block would be short

    service = container.exports.service
    export = service.create(ExportRequest(recording_ids=[sealed.recording_id]), OFFICER, REASON)
    with pytest.raises(SealMismatch) as caught:
        service.run_inline(export.id)
    assert blob in caught.value.detail and f"has {len(data) - 100} bytes, not the {len(data)}" in caught.value.detail


def test_a_block_stream_of_another_length_than_declared_is_refused() -> None:
    assert ChunkReader([b"abc", b"de"], 5).read() == b"abcde"
    with pytest.raises(ValueError, match="ended after 5 of its 6 bytes"):
        ChunkReader([b"abc", b"de"], 6).read()
    with pytest.raises(ValueError, match="more than its 4 bytes"):
        ChunkReader([b"abc", b"de"], 4).read()


def test_a_streamed_member_takes_the_gathered_bytes_at_its_head_and_leaves_a_short_tail_gathered() -> None:
    store = InMemoryBlobStore()
    sink = blocks.BlockSink(store, "p.zip", "s0000000", block_bytes=16, max_block_bytes=40)
    sink.write(b"a" * 5)
    assert sink.streams(16) and not sink.streams(15)
    sink.stream([b"b" * 30, b"c" * 70], 100)  # 5 gathered + 35, then 40, then 25 (still a block's worth)
    sink.stream([b"e" * 20], 20)  # 20 >= 16: its own block ...
    sink.write(b"d" * 3)
    sink.stream([b"f" * 17], 17)  # ... 3 gathered + 17
    sink.write(b"g" * 2)
    ids = sink.close()
    staged = store.blocks("p.zip")[1]
    by_id = {block.id: block.size for block in staged}
    assert [by_id[i] for i in ids] == [40, 40, 25, 20, 20, 2]
    store.commit_blocks("p.zip", ids)
    assert store.read("p.zip") == b"a" * 5 + b"b" * 30 + b"c" * 70 + b"e" * 20 + b"d" * 3 + b"f" * 17 + b"g" * 2

    with pytest.raises(ValueError, match="ended after"):
        blocks.BlockSink(store, "q.zip", "s0000000", block_bytes=16).stream([b"x" * 20], 30)
