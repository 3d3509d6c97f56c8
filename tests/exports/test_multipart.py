"""Very large exports: a package past what one block blob holds (50,000 blocks) is written as a multi-part
package — numbered part ZIPs, each a package that verifies on its own, and a signed `package-index.json` listing
every part with its size and the SHA-256 of its signed manifest — and the whole directory verifies offline with
the shipped verifier. Exercised with the limits scaled down (a handful of blocks per blob, a part per recording
or two), never with hundreds of GiB."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.exports.conftest import OFFICER, REASON, ExportWorld
from tests.exports.test_package import expect, run_shipped_verifier, run_verifier
from tests.ledger.test_standalone_verifier import isolated_python  # noqa: F401 - the fixture
from verbatim.contracts.exports import ExportRequest
from verbatim.exports import assemble, names
from verbatim.exports.service import ExportService
from verbatim.ledger.note import sign_note
from verbatim.wiring import container_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def download_directory(service: ExportService, export_id: str, target: Path) -> Path:
    """Every object of the export's directory (the index, its signature, the parts) into `target`."""
    target.mkdir(parents=True)
    record = service.store.get(export_id)
    assert record is not None and record.result is not None
    for item in service.objects(record):
        (target / item.name).write_bytes(service.work_store.read(item.blob))
    return target


def verifier_of(directory: Path, scratch: Path) -> Path:
    """The verifier a part ships, taken out of its ZIP (as a recipient does) and run on the whole directory."""
    part = sorted(directory.glob("part-*.zip"))[0]
    with zipfile.ZipFile(part) as archive:
        for name in (names.VERIFIER, names.LEDGER_VERIFIER):
            archive.extract(name, scratch)
    return scratch


def run_on_directory(python: Path, directory: Path, scratch: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The shipped verifier on the whole directory, in a Python holding only `cryptography`."""
    verify_dir = verifier_of(directory, scratch) if not (scratch / names.VERIFIER).exists() else scratch
    return run_shipped_verifier(python, verify_dir / "verify", directory, *args)


@pytest.fixture(scope="module")
def multipart(export_world: ExportWorld, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """An export of the world's three recordings through a blob that takes only 3 blocks: one ZIP cannot hold it
    (it failed before its block list was committed, before multi-part packages); it becomes several parts."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(assemble, "MAX_BLOCKS", 3)
        service = container_for(export_world.settings).exports.service
        ids = [r.recording_id for r in export_world.recordings]
        export = service.create(ExportRequest(recording_ids=ids, title="multi-part"), OFFICER, REASON)
        service.run_inline(export.id, batch=1)
    root = tmp_path_factory.mktemp("multipart")
    return export.id, download_directory(service, export.id, root / "package")


def test_an_export_past_one_blobs_blocks_is_a_multi_part_package_that_verifies_whole(
    export_world: ExportWorld,
    multipart: tuple[str, Path],
    tmp_path: Path,
    isolated_python: Path,  # noqa: F811
) -> None:
    export_id, directory = multipart
    service = container_for(export_world.settings).exports.service
    record = service.store.get(export_id)
    assert record is not None and record.status == "completed" and record.result is not None
    parts = record.result.parts
    assert len(parts) >= 2
    listed = [r for part in parts for r in part.recordings]
    assert sorted(listed) == sorted(r.recording_id for r in export_world.recordings)  # each exactly once
    committed = [service.work_store.blocks(part.blob)[0] for part in parts]
    assert all(0 < len(blocks) <= 3 for blocks in committed)  # every part within the (lowered) block limit
    assert not service.work_store.exists(f"{export_id}/package.zip")
    (completed,) = [
        e for e in service.log.entries_for_subject(f"export:{export_id}", limit=20) if e.kind == "export.completed"
    ]
    assert completed.details["parts"] == len(parts)
    assert completed.details["package_manifest_sha256"] == record.result.package_manifest_sha256

    index_bytes = (directory / names.PACKAGE_INDEX).read_bytes()
    assert hashlib.sha256(index_bytes).hexdigest() == record.result.package_manifest_sha256
    index = json.loads(index_bytes)
    assert index["format"] == "verbatim-export-index/1" and index["exportId"] == export_id
    assert [p["manifestSha256"] for p in index["parts"]] == [p.manifest_sha256 for p in parts]
    assert [p["name"] for p in index["parts"]] == [f"part-{n:04d}.zip" for n in range(1, len(parts) + 1)]

    done = run_on_directory(isolated_python, directory, tmp_path / "v")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().endswith("VERIFIED")
    assert f"{len(parts)} parts" in done.stdout


def test_each_part_verifies_on_its_own(
    multipart: tuple[str, Path],
    isolated_python: Path,  # noqa: F811
) -> None:
    _, directory = multipart
    for part in sorted(directory.glob("part-*.zip")):
        done = run_verifier(isolated_python, part)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "part " in done.stdout and "of export" in done.stdout
        with zipfile.ZipFile(part) as archive:
            readme = archive.read(names.README).decode()
        assert f"THIS IS PART {int(part.stem.split('-')[1])} OF " in readme and "package-index.sig" in readme


@dataclass(frozen=True)
class DirectoryCopy:
    """A copy of the multi-part directory for a test to alter, and the shipped verifier (taken out of its first
    part before any change) to run on it."""

    directory: Path
    python: Path
    scratch: Path

    def verify(self) -> subprocess.CompletedProcess[str]:
        return run_on_directory(self.python, self.directory, self.scratch, "--json")


@pytest.fixture
def altered(
    multipart: tuple[str, Path],
    tmp_path: Path,
    isolated_python: Path,  # noqa: F811
) -> DirectoryCopy:
    copy = tmp_path / "copy"
    shutil.copytree(multipart[1], copy)
    return DirectoryCopy(copy, isolated_python, verifier_of(copy, tmp_path / "v"))


def test_a_tampered_part_is_named(altered: DirectoryCopy) -> None:
    part = altered.directory / "part-0002.zip"
    with zipfile.ZipFile(part) as archive:
        info = next(i for i in archive.infolist() if i.filename.endswith("evidence-mixed.flac"))
    data = bytearray(part.read_bytes())
    header = info.header_offset
    name_length = int.from_bytes(data[header + 26 : header + 28], "little")
    extra_length = int.from_bytes(data[header + 28 : header + 30], "little")
    start = header + 30 + name_length + extra_length
    data[start + info.file_size // 2] ^= 0x01
    part.write_bytes(bytes(data))
    done = altered.verify()
    expect(done, "file.hash_mismatch", "part-0002.zip", info.filename)
    expect(done, "evidence.media_mismatch", "part-0002.zip", info.filename)


def test_a_dropped_part_is_named(altered: DirectoryCopy) -> None:
    index = json.loads((altered.directory / names.PACKAGE_INDEX).read_bytes())
    last = index["parts"][-1]
    (altered.directory / last["name"]).unlink()
    done = altered.verify()
    expect(done, "part.missing", last["name"])
    for recording in last["recordings"]:
        expect(done, "export.item_missing", recording)


def test_an_item_in_two_parts_is_named_even_when_the_index_is_signed(
    export_world: ExportWorld, multipart: tuple[str, Path], altered: DirectoryCopy
) -> None:
    """A producer that put a recording into two parts (the index listing it twice, signed with the ledger's own
    key): the signature holds, the duplicate is still named."""
    export_id = multipart[0]
    copy = altered.directory
    index = json.loads((copy / names.PACKAGE_INDEX).read_bytes())
    shutil.copy(copy / index["parts"][0]["name"], copy / "part-0009.zip")
    duplicate = {**index["parts"][0], "number": 9, "name": "part-0009.zip"}
    index["parts"].append(duplicate)
    data = (json.dumps(index, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()
    (copy / names.PACKAGE_INDEX).write_bytes(data)
    signer = container_for(export_world.settings).ledger.keys.signer
    assert signer is not None
    text = assemble.index_signature_text(export_id, hashlib.sha256(data).hexdigest())
    (copy / names.PACKAGE_INDEX_SIGNATURE).write_bytes(sign_note(text, [signer]))
    done = altered.verify()
    recording = index["parts"][0]["recordings"][0]
    expect(done, "export.item_duplicated", recording, "part-0001.zip", "part-0009.zip")


def test_a_part_not_in_the_index_is_named(altered: DirectoryCopy) -> None:
    shutil.copy(altered.directory / "part-0001.zip", altered.directory / "part-0042.zip")
    expect(altered.verify(), "part.unlisted", "part-0042.zip")


def test_an_export_within_one_blob_stays_the_single_package_it_was(export_world: ExportWorld) -> None:
    """No index, no parts, and a manifest of the shape it always had (no `part` key): what exists is unchanged."""
    record = export_world.export
    assert record.result is not None and record.result.parts == []
    assert record.result.package_blob == f"{record.id}/package.zip"
    service = container_for(export_world.settings).exports.service
    assert service.work_store.names(f"{record.id}/") == [f"{record.id}/package.zip"]  # the work area is gone
    with zipfile.ZipFile(export_world.package) as archive:
        manifest = json.loads(archive.read(names.PACKAGE_MANIFEST))
        assert names.PACKAGE_INDEX not in archive.namelist()
    assert "part" not in manifest and manifest["format"] == "verbatim-export/1"
    assert [o.name for o in service.objects(record)] == ["package.zip"]


def test_a_part_of_another_export_in_its_place_is_named(export_world: ExportWorld, altered: DirectoryCopy) -> None:
    """Two productions mixed up: another export's package where part 2 should be. It verifies as a package of its
    own, but it is not the part the signed index lists."""
    shutil.copy(export_world.package, altered.directory / "part-0002.zip")
    done = altered.verify()
    expect(done, "part.size_mismatch", "part-0002.zip")
    expect(done, "part.manifest_mismatch", "part-0002.zip")
    expect(done, "part.wrong_export", "part-0002.zip", export_world.export.id)
    expect(done, "part.items_mismatch", "part-0002.zip", "holds recording")
    expect(done, "export.item_duplicated")  # its recordings are the ones the other parts hold
