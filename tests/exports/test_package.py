"""An export package, made by the export service's own steps from recordings the lifecycle sealed in the emulators,
verified as a recipient verifies it: the verifier shipped inside the package, run with `python -I` in a fresh venv
that holds only `cryptography`. Then every tampering the issue lists is made to a copy and must be caught and named.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from tests.exports.conftest import REASON, ExportWorld
from tests.ledger.test_standalone_verifier import isolated_python  # noqa: F401 - the fixture
from verbatim.exports import names

pytestmark = pytest.mark.timeout(300)


def unpack(world: ExportWorld, target: Path) -> Path:
    with zipfile.ZipFile(world.package) as archive:
        archive.extractall(target)
    return target


def run_verifier(python: Path, package: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The package's own verifier (unpacked beside it), as a recipient runs it."""
    verifier_dir = package / "verify" if package.is_dir() else None
    if verifier_dir is None:
        scratch = package.parent / f"{package.stem}-verifier"
        if not scratch.exists():
            with zipfile.ZipFile(package) as archive:
                for name in (names.VERIFIER, names.LEDGER_VERIFIER):
                    archive.extract(name, scratch)
        verifier_dir = scratch / "verify"
    return run_shipped_verifier(python, verifier_dir, package, *args)


def run_shipped_verifier(
    python: Path, verifier_dir: Path, target: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    """`verify_export.py` of an unpacked `verify/` folder on `target` (a package, or a multi-part package's
    folder), in `python` isolated from this environment, as a recipient runs it."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
    return subprocess.run(
        [str(python), "-I", str(verifier_dir / "verify_export.py"), str(target), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )


def findings(done: subprocess.CompletedProcess[str]) -> list[dict[str, str]]:
    report = json.loads(done.stdout)
    found: list[dict[str, str]] = report["findings"]
    return found


def flip(path: Path, offset: int = -1) -> None:
    data = bytearray(path.read_bytes())
    data[offset if offset >= 0 else len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.fixture
def copy(export_world: ExportWorld, tmp_path: Path) -> Path:
    return unpack(export_world, tmp_path / "package")


def folder_of(world: ExportWorld, n: int) -> str:
    return names.recording_folder(n, world.recordings[n].recording_id)


# --- the package as made -----------------------------------------------------------------------------------------


def test_the_package_is_a_zip64_archive_holding_every_recording_exactly_as_sealed(export_world: ExportWorld) -> None:
    with zipfile.ZipFile(export_world.package) as archive:
        assert archive.testzip() is None
        listed = archive.namelist()
        assert listed[:4] == [names.README, names.INDEX_HTML, names.PACKAGE_MANIFEST, names.PACKAGE_SIGNATURE]
        for n, sealed in enumerate(export_world.recordings):
            folder = folder_of(export_world, n)
            assert archive.read(f"{folder}/media/evidence-mixed.flac") == sealed.evidence_bytes
            assert archive.read(f"{folder}/media/access-copy.ogg") == sealed.access_bytes
            for name in ("manifest.json", "recording.json", "audit-trail.jsonl", "media/capture.json"):
                assert f"{folder}/{name}" in listed
        manifest = json.loads(archive.read(names.PACKAGE_MANIFEST))
    assert manifest["reason"] == REASON and len(manifest["recordings"]) == 3
    assert {f["path"] for f in manifest["files"]} == set(listed) - {names.PACKAGE_MANIFEST, names.PACKAGE_SIGNATURE}


def test_the_first_recordings_audit_trail_holds_its_seal_its_reads_and_its_export(export_world: ExportWorld) -> None:
    with zipfile.ZipFile(export_world.package) as archive:
        lines = archive.read(f"{folder_of(export_world, 0)}/audit-trail.jsonl").splitlines()
    entries = [json.loads(line) for line in lines]
    kinds = [e["kind"] for e in entries]
    assert kinds[0] == "sealed" and kinds[-1] == "exported"
    assert [e["details"]["reason"] for e in entries if e["kind"] == "accessed"] == ["complaint 42", "quality review"]
    exported = entries[-1]["details"]
    assert exported["export_id"] == export_world.export.id and exported["reason"] == REASON
    assert exported["trail"]["count"] == len(entries) - 1


def test_the_load_files_carry_one_row_per_recording_with_concordance_delimiters(export_world: ExportWorld) -> None:
    with zipfile.ZipFile(export_world.package) as archive:
        dat = archive.read(names.LOADFILE_DAT).decode("utf-8")
        csv_text = archive.read(names.LOADFILE_CSV).decode("utf-8-sig")
    assert dat.startswith("\ufeff\xfeCONTROLNUMBER\xfe\x14\xfeRECORDINGID\xfe")
    rows = dat.lstrip("\ufeff").split("\r\n")[:-1]
    assert len(rows) == 4 and all(r.count("\x14") == rows[0].count("\x14") for r in rows)
    assert "\xfeVBX0000001\xfe" in rows[1] and export_world.recordings[0].recording_id in rows[1]
    header = csv_text.splitlines()[0].split(",")
    assert header[0] == "CONTROLNUMBER" and "NATIVEPATH" in header and "SHA256" in header
    native = csv_text.splitlines()[1].split(",")[header.index("NATIVEPATH")]
    assert native == folder_of(export_world, 0).replace("/", "\\") + "\\media\\evidence-mixed.flac"


def test_the_shipped_verifier_passes_the_zip_in_a_python_with_only_cryptography(
    export_world: ExportWorld,
    isolated_python: Path,  # noqa: F811
) -> None:
    done = run_verifier(isolated_python, export_world.package)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().endswith("VERIFIED")
    # sealed, access_copy.sealed (the access copy is sealed after the evidence) + two reads, before its exported entry
    assert "audit trail of 4 entries complete" in done.stdout
    quiet = run_verifier(isolated_python, export_world.package, "--quiet")
    assert quiet.returncode == 0 and quiet.stdout == "" and quiet.stderr == ""


def test_the_shipped_verifier_passes_the_unpacked_folder(copy: Path, isolated_python: Path) -> None:  # noqa: F811
    done = run_verifier(isolated_python, copy, "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout)["verified"] is True


# --- every tampering is caught and named ----------------------------------------------------------------------------


def expect(done: subprocess.CompletedProcess[str], code: str, *words: str) -> None:
    assert done.returncode == 1, done.stdout + done.stderr
    found = findings(done)
    matching = [f for f in found if f["code"] == code]
    assert matching, found
    assert any(all(w in f["message"] for w in words) for f in matching), matching


def test_a_flipped_byte_in_a_media_file_is_named(
    export_world: ExportWorld,
    copy: Path,
    isolated_python: Path,  # noqa: F811
) -> None:
    media = f"{folder_of(export_world, 1)}/media/evidence-mixed.flac"
    flip(copy / media)
    done = run_verifier(isolated_python, copy, "--json")
    expect(done, "file.hash_mismatch", media)
    expect(done, "evidence.media_mismatch", media, "sealed ledger entry")


def test_a_flipped_byte_in_a_manifest_is_named(
    export_world: ExportWorld,
    copy: Path,
    isolated_python: Path,  # noqa: F811
) -> None:
    manifest = f"{folder_of(export_world, 0)}/manifest.json"
    flip(copy / manifest)
    done = run_verifier(isolated_python, copy, "--json")
    expect(done, "file.hash_mismatch", manifest)
    expect(done, "evidence.manifest_mismatch", manifest, export_world.recordings[0].recording_id)


def test_a_flipped_byte_in_the_audit_trail_is_named(
    export_world: ExportWorld,
    copy: Path,
    isolated_python: Path,  # noqa: F811
) -> None:
    trail = copy / folder_of(export_world, 0) / "audit-trail.jsonl"
    lines = trail.read_bytes().split(b"\n")
    read = next(n for n, line in enumerate(lines) if b"complaint 42" in line)  # a read, after the seals
    lines[read] = lines[read].replace(b"complaint 42", b"complaint 43")
    trail.write_bytes(b"\n".join(lines))
    done = run_verifier(isolated_python, copy, "--json")
    expect(done, "trail.entry_mismatch", "audit-trail.jsonl")
    expect(done, "trail.entry_unproven", f"line {read + 1}")


def test_a_flipped_byte_in_a_proof_is_named(
    export_world: ExportWorld,
    copy: Path,
    isolated_python: Path,  # noqa: F811
) -> None:
    proofs = sorted((copy / folder_of(export_world, 2) / "proofs").iterdir())
    proof = proofs[0]
    lines = proof.read_text().split("\n")
    hash_line = next(i for i, line in enumerate(lines) if i > 1 and line and not line.startswith(("index", "extra")))
    lines[hash_line] = ("B" if lines[hash_line][0] != "B" else "C") + lines[hash_line][1:]
    proof.write_text("\n".join(lines))
    done = run_verifier(isolated_python, copy, "--json")
    expect(done, "proof.root_mismatch", proof.name)


def test_a_flipped_byte_in_a_checkpoint_is_named(copy: Path, isolated_python: Path) -> None:  # noqa: F811
    checkpoint = copy / names.CHECKPOINT
    text = checkpoint.read_text().split("\n")
    text[1] = str(int(text[1]) + 1)  # the tree size
    checkpoint.write_text("\n".join(text))
    done = run_verifier(isolated_python, copy, "--json")
    expect(done, "note.signature_invalid", "ledger/checkpoint")


def test_a_deleted_file_is_named(export_world: ExportWorld, copy: Path, isolated_python: Path) -> None:  # noqa: F811
    gone = f"{folder_of(export_world, 2)}/media/access-copy.ogg"
    (copy / gone).unlink()
    done = run_verifier(isolated_python, copy, "--json")
    expect(done, "file.missing", gone)
    expect(done, "evidence.media_missing", gone)


def test_an_added_file_is_named_in_the_zip(
    export_world: ExportWorld,
    tmp_path: Path,
    isolated_python: Path,  # noqa: F811
) -> None:
    package = tmp_path / "added.zip"
    shutil.copy(export_world.package, package)
    with zipfile.ZipFile(package, "a") as archive:
        archive.writestr(f"{folder_of(export_world, 0)}/media/extra.flac", b"not evidence")
    done = run_verifier(isolated_python, package, "--json")
    expect(done, "file.unlisted", "media/extra.flac", "added")


def test_two_recordings_with_swapped_media_are_named(
    export_world: ExportWorld,
    copy: Path,
    isolated_python: Path,  # noqa: F811
) -> None:
    first = copy / folder_of(export_world, 0) / "media" / "evidence-mixed.flac"
    second = copy / folder_of(export_world, 1) / "media" / "evidence-mixed.flac"
    a, b = first.read_bytes(), second.read_bytes()
    first.write_bytes(b)
    second.write_bytes(a)
    done = run_verifier(isolated_python, copy, "--json")
    other = export_world.recordings[1].recording_id
    expect(done, "evidence.media_mismatch", "evidence-mixed.flac", f"the evidence of recording {other}")


def test_one_dropped_audit_entry_is_named_by_its_index(
    export_world: ExportWorld,
    copy: Path,
    isolated_python: Path,  # noqa: F811
) -> None:
    folder = copy / folder_of(export_world, 0)
    trail = folder / "audit-trail.jsonl"
    lines = trail.read_bytes().split(b"\n")
    dropped = json.loads(lines[2])  # the second read
    assert dropped["kind"] == "accessed"
    # The entry's line and its proof both go: nothing in the folder mentions it any more.
    proof = next(p for p in (folder / "proofs").iterdir() if _entry_of(p) == lines[2])
    index = int(proof.name.split(".")[0])
    proof.unlink()
    trail.write_bytes(b"\n".join(line for n, line in enumerate(lines) if n != 2))
    done = run_verifier(isolated_python, copy, "--json")
    expect(done, "trail.entry_missing", f"ledger entry {index}", "exported")


def _entry_of(proof: Path) -> bytes:
    import base64

    for line in proof.read_text().split("\n"):
        if line.startswith("extra "):
            return base64.b64decode(line[6:])
    return b""
