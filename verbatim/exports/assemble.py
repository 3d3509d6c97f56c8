"""The end of a package: once every recording's segment is staged, write the files that describe the whole export
(README, index.html, load files, the export's own ledger entries, the checkpoint, the keys, the verifiers), then
`package-manifest.json` listing every file with its size and SHA-256 and its detached signature, then the ZIP's
central directory; and commit the block list, which makes the package appear whole in one step."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization

from verbatim.contracts.exports import (
    INDEX_SIGNATURE_HEADER,
    SIGNATURE_HEADER,
    ExportRecord,
    ExportResult,
    IndexPart,
    PackagedChat,
    PackagedRecording,
    PackageFile,
    PackageIndex,
    PackageManifest,
    PackagePart,
    PartOf,
)
from verbatim.exports import names
from verbatim.exports.blocks import BlockSink
from verbatim.exports.html import index_html
from verbatim.exports.loadfiles import concordance_dat, csv_file
from verbatim.exports.readme import readme_text, verifier_readme
from verbatim.exports.work import ExportWork, PlanFile, SegmentRecord
from verbatim.exports.zip64 import SegmentWriter, ZipEntry, central_directory
from verbatim.ledger.log.service import TransparencyLog
from verbatim.ledger.note import NoteVerifier, sign_note
from verbatim.platform.errors import DependencyUnavailable, VerbatimError

FINAL_SEGMENT = "z0000000"
MAX_BLOCKS = 50_000  # committed blocks of one block blob (Azure Blob storage scalability targets)


class PackageTooLarge(VerbatimError):
    """The package would need more blocks than one block blob takes."""

    status = 413
    title = "Export too large for one package"


FIRST = (names.README, names.INDEX_HTML, names.PACKAGE_MANIFEST, names.PACKAGE_SIGNATURE)


def verifier_sources() -> dict[str, bytes]:
    """The standalone verifiers shipped in every package (they need Python and `cryptography`, nothing else)."""
    here = Path(__file__).resolve().parent
    return {
        names.VERIFIER: (here / "standalone_export_verifier.py").read_bytes(),
        names.LEDGER_VERIFIER: (here.parent / "ledger" / "standalone_verifier.py").read_bytes(),
    }


def key_fingerprint(verifier: NoteVerifier) -> str:
    """SHA-256 of the key's DER SubjectPublicKeyInfo (as `openssl pkey -pubout -outform DER | sha256sum` prints)."""
    der = verifier.public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def signature_text(export_id: str, manifest_sha256: str) -> str:
    return f"{SIGNATURE_HEADER}\n{export_id}\n{manifest_sha256}\n"


def index_signature_text(export_id: str, index_sha256: str) -> str:
    return f"{INDEX_SIGNATURE_HEADER}\n{export_id}\n{index_sha256}\n"


def _json(value: object) -> bytes:
    return (json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def export_header(log: TransparencyLog, export: ExportRecord, checkpoint_size: int) -> dict[str, Any]:
    """The fields of `ExportHeader` a part's manifest and the package index both take from the export and the log."""
    return {
        "export_id": export.id,
        "title": export.title,
        "created_at": export.created_at,
        "requested_by": export.requested_by,
        "reason": export.reason,
        "selection": export.selection,
        "options": export.options,
        "log_origin": log.origin,
        "checkpoint_size": checkpoint_size,
        "created_entry": export.created_seq,
    }


@dataclass(frozen=True)
class Assembled:
    result: ExportResult
    manifest: PackageManifest


def assemble_package(
    log: TransparencyLog,
    work: ExportWork,
    export: ExportRecord,
    plan: PlanFile,
    segments: Sequence[SegmentRecord],
    checkpoint_size: int,
    at: datetime,
    part: PartOf | None = None,
) -> Assembled:
    """Write the end of the package (or of part `part` of a multi-part one) after `segments` and commit it."""
    signer = log.keys.signer
    if signer is None:
        raise DependencyUnavailable("the ledger has no signing key: a package cannot be signed")
    parts = [item for segment in segments for item in segment.items]
    rows: list[PackagedRecording] = [part.recording for part in parts if part.recording is not None]
    chats: list[PackagedChat] = [part.chat for part in parts if part.chat is not None]
    base = sum(segment.length for segment in segments)
    blob = work.part_blob(part.number if part is not None else 0)
    sink = BlockSink(work.store, blob, FINAL_SEGMENT)
    writer = SegmentWriter(sink.write, at)
    checkpoint = log.checkpoint_at(checkpoint_size)
    verifiers = list(log.keys.verifiers)
    manifest = PackageManifest(
        **export_header(log, export, checkpoint_size),
        recordings=rows,
        chats=chats,
        files=[],
        part=part,
    )
    fingerprints = [(v, key_fingerprint(v)) for v in verifiers]
    writer.add_bytes(names.README, readme_text(manifest, [(v.vkey(), f) for v, f in fingerprints]))
    writer.add_bytes(names.INDEX_HTML, index_html(manifest, rows, chats))
    writer.add_bytes(names.LOADFILE_DAT, concordance_dat(rows, export.id, chats))
    writer.add_bytes(names.LOADFILE_CSV, csv_file(rows, export.id, chats))
    writer.add_bytes(
        names.EXPORT_JSON,
        _json(
            {
                "export": export.model_dump(mode="json", by_alias=True, exclude={"progress", "result"}),
                "excluded": [e.model_dump(mode="json") for e in plan.excluded],
            }
        ),
    )
    if export.created_seq is not None:
        entry = log.entry_bytes(export.created_seq)
        if entry is not None:
            writer.add_bytes(names.EXPORT_TRAIL, entry + b"\n")
            writer.add_bytes(
                f"{names.EXPORT_PROOFS}/{export.created_seq}.tlog-proof",
                log.tlog_proof(export.created_seq, checkpoint_size),
            )
    writer.add_bytes(names.CHECKPOINT, checkpoint)
    writer.add_bytes(names.VKEYS, "".join(f"{v.vkey()}\n" for v in verifiers).encode())
    writer.add_bytes(
        names.FINGERPRINTS,
        "".join(f"{f}  {v.name} key {v.key_id:08x}\n" for v, f in fingerprints).encode(),
    )
    for path, data in verifier_sources().items():
        writer.add_bytes(path, data)
    writer.add_bytes(names.VERIFIER_README, verifier_readme())

    listed = [entry for part in parts for entry in part.entries] + list(writer.entries)
    manifest.files = sorted(
        (PackageFile(path=e.name, bytes=e.size, sha256=e.sha256) for e in listed), key=lambda f: f.path
    )
    dumped = manifest.model_dump(mode="json", by_alias=True)
    if part is None:
        del dumped["part"]  # a single package's manifest keeps the shape it always had
    manifest_bytes = _json(dumped)
    manifest_sha256 = hashlib.sha256(manifest_bytes).hexdigest()
    writer.add_bytes(names.PACKAGE_MANIFEST, manifest_bytes)
    writer.add_bytes(names.PACKAGE_SIGNATURE, sign_note(signature_text(export.id, manifest_sha256), [signer]))

    placed: list[tuple[ZipEntry, int]] = []
    offset = 0
    for segment in segments:  # entries' offsets count from the start of their segment
        placed += [(entry, offset) for item in segment.items for entry in item.entries]
        offset += segment.length
    placed += [(entry, base) for entry in writer.entries]
    placed.sort(key=lambda p: (FIRST.index(p[0].name) if p[0].name in FIRST else len(FIRST), p[0].name))
    directory = central_directory(placed, base + writer.position)
    sink.write(directory)
    blocks = [block for segment in segments for block in segment.blocks] + sink.close()
    if len(blocks) > MAX_BLOCKS:
        what = "the package" if part is None else f"part {part.number} of the package"
        raise PackageTooLarge(
            f"{what} would need {len(blocks)} blocks (small files are gathered into blocks of "
            f"{sink.block_bytes} bytes); one block blob takes {MAX_BLOCKS}: the parts were split by an estimate "
            "that fell short; lower EXPORT_PART_BLOCKS, or export fewer recordings at a time"
        )
    size = base + writer.position + len(directory)
    work.store.commit_blocks(
        blob,
        blocks,
        content_type="application/zip",
        metadata={"export_id": export.id, "package_manifest_sha256": manifest_sha256},
    )
    result = ExportResult(
        package_blob=blob,
        package_bytes=size,
        files=len(placed),
        recordings=len(rows),
        chats=len(chats),
        media_bytes=sum(part.media_bytes for part in parts),
        package_manifest_sha256=manifest_sha256,
        checkpoint_size=checkpoint_size,
    )
    return Assembled(result, manifest)


def write_index(
    log: TransparencyLog, work: ExportWork, export: ExportRecord, parts: Sequence[PackagePart], checkpoint_size: int
) -> tuple[PackageIndex, bytes, bytes]:
    """`package-index.json` (every part with its size, its manifest's SHA-256 and its items) and its signature,
    written beside the parts; returns the index, its bytes and the signature's."""
    signer = log.keys.signer
    if signer is None:
        raise DependencyUnavailable("the ledger has no signing key: a package cannot be signed")
    index = PackageIndex(
        **export_header(log, export, checkpoint_size),
        recordings=sum(len(p.recordings) for p in parts),
        chats=sum(len(p.chats) for p in parts),
        parts=[IndexPart.model_validate(p.model_dump(exclude={"blob"})) for p in parts],  # not where it is stored
    )
    data = _json(index.model_dump(mode="json", by_alias=True))
    signature = sign_note(index_signature_text(export.id, hashlib.sha256(data).hexdigest()), [signer])
    work.store.write(work.top_blob(names.PACKAGE_INDEX), data, content_type="application/json")
    work.store.write(work.top_blob(names.PACKAGE_INDEX_SIGNATURE), signature, content_type="text/plain")
    return index, data, signature
