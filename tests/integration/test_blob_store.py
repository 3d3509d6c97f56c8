"""The `BlobStore` port: the in-memory fake and the Azure adapter (on Azurite) answer the same way to what the
lifecycle and the evidence code ask — reads and ranges, no-overwrite writes, staged and committed blocks,
listing with uncommitted blobs, deletes, and missing blobs."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from azure.storage.blob import BlobServiceClient

from tests.conftest import Azurite
from verbatim.platform.blobs import AzureBlobStore, BlobExists, BlobNotFound, BlobStore, InMemoryBlobStore


@pytest.fixture(params=["memory", "azurite"])
def store(request: pytest.FixtureRequest) -> Iterator[BlobStore]:
    if request.param == "memory":
        yield InMemoryBlobStore()
        return
    azurite: Azurite = request.getfixturevalue("azurite_service")
    container = BlobServiceClient.from_connection_string(azurite.connection_string).get_container_client(
        f"port-{uuid.uuid4().hex[:12]}"
    )
    container.create_container()
    yield AzureBlobStore(container)
    container.delete_container()


def test_reads_ranges_and_versions_of_what_was_written(store: BlobStore) -> None:
    store.write("a/one.bin", b"0123456789", content_type="application/octet-stream")
    assert store.read("a/one.bin") == b"0123456789"
    assert store.read("a/one.bin", offset=2, length=3) == b"234"
    assert store.read("a/one.bin", offset=8) == b"89"
    assert b"".join(store.chunks("a/one.bin")) == b"0123456789"
    assert store.read_versioned("a/one.bin").data == b"0123456789"
    assert store.exists("a/one.bin") and not store.exists("a/two.bin")


def test_a_write_that_must_not_overwrite_is_refused_and_leaves_the_blob(store: BlobStore) -> None:
    store.write("m.json", b"first", overwrite=False)
    with pytest.raises(BlobExists):
        store.write("m.json", b"second", overwrite=False)
    assert store.read("m.json") == b"first"
    store.write("m.json", b"third")
    assert store.read("m.json") == b"third"


def test_staged_blocks_are_listed_as_uncommitted_until_a_commit_names_them(store: BlobStore) -> None:
    store.stage_block("rec/audio.flac", "QUFB", b"aaa")
    store.stage_block("rec/audio.flac", "QkJC", b"bbbb")
    assert store.names("rec/") == []
    assert store.names("rec/", uncommitted=True) == ["rec/audio.flac"]
    committed, uncommitted = store.blocks("rec/audio.flac")
    assert committed == [] and sorted((b.id, b.size) for b in uncommitted) == [("QUFB", 3), ("QkJC", 4)]

    store.commit_blocks("rec/audio.flac", ["QUFB", "QkJC"], content_type="audio/flac", metadata={"salvaged": "true"})

    assert store.read("rec/audio.flac") == b"aaabbbb"
    committed, uncommitted = store.blocks("rec/audio.flac")
    assert [(b.id, b.size) for b in committed] == [("QUFB", 3), ("QkJC", 4)] and uncommitted == []
    # A shorter commit of already committed blocks (what salvage does when a tail does not decode).
    store.commit_blocks("rec/audio.flac", ["QUFB"])
    assert store.read("rec/audio.flac") == b"aaa"


def test_listing_deleting_and_missing_blobs(store: BlobStore) -> None:
    for name in ("p/b", "p/a", "q/c"):
        store.write(name, name.encode())
    assert store.names("p/") == ["p/a", "p/b"]
    assert store.delete("p/a") is True
    assert store.delete("p/a") is False
    assert store.names("p/") == ["p/b"]
    with pytest.raises(BlobNotFound):
        store.read("p/a")
    with pytest.raises(BlobNotFound):
        store.blocks("nowhere")
    with pytest.raises(BlobNotFound):
        store.version_of("nowhere")


def test_properties_name_the_size_etag_and_version_of_what_was_written(store: BlobStore) -> None:
    first = store.write("p/blob", b"one")
    props = store.properties("p/blob")
    assert (props.size, props.version_id) == (3, first)
    second = store.write("p/blob", b"three")
    changed = store.properties("p/blob")
    assert changed.size == 5 and changed.etag != props.etag  # a write changes the ETag
    if first is not None:  # a store that keeps versions answers for the old one too
        assert store.properties("p/blob", version_id=first).size == 3
        assert second != first
    with pytest.raises(BlobNotFound):
        store.properties("p/missing")
