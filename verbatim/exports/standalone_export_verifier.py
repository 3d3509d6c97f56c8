#!/usr/bin/env python3
"""Verify a Verbatim export package offline: one file beside standalone_verifier.py, the Python standard library
and `cryptography` (a progress bar from `tqdm` when it happens to be installed).

    python3 verify_export.py PACKAGE [--key VKEY ...] [--key-file FILE] [--fingerprint SHA256 ...] [--quiet] [--json]

PACKAGE is the ZIP, or the folder it was unpacked into. Checked, each problem reported with a stable code:

  package   package-manifest.json is signed (package-manifest.sig, a C2SP signed note) by a trusted key; every file
            it lists is there with its size and SHA-256, and no other file is
  ledger    ledger/checkpoint and every proof's checkpoint are signed by a trusted key; every entry of every audit
            trail is in the log (its C2SP tlog-proof leads to the checkpoint's root) and is the entry the proof holds
  evidence  each recording's manifest.json is the one its `sealed` ledger entry records, and each media file is the
            one the entry (evidence, access copy) or the sealed manifest (capture) records — byte for byte
  chat      each chat's sealed bundles are the ones its `exported` entry lists, each bundle's manifest.json and
            messages.ndjson are the ones its `chat.sealed` ledger entry records (an altered line is named by its
            message id), and each inline image is the one the bundle manifest records
  trail     each recording's and chat's audit trail is complete up to this export: the `exported` entry lists every
            earlier entry about it (by index, with a digest) and each must be in the package

Trust: keys given with --key/--key-file; else the package's keys/log.vkey, limited to --fingerprint when given (the
SHA-256 of the key's DER public key). Keys taken from the package itself are reported as such: they show the package
is consistent, not who made it — compare their fingerprints with ones obtained separately.

Exit status: 0 verified; 1 not verified; 2 could not verify (arguments, unreadable package, malformed key).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import time
import types
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from cryptography.hazmat.primitives import serialization


def _ledger_verifier() -> Any:
    """standalone_verifier.py beside this file (as shipped in a package), else the one in Verbatim's source tree.
    Compiled from its source and nothing written: run from inside an unpacked package, a `__pycache__` folder
    would be a file the package does not list."""
    if "standalone_verifier" in sys.modules:
        return sys.modules["standalone_verifier"]
    here = Path(__file__).resolve()
    for candidate in (here.with_name("standalone_verifier.py"), here.parents[1] / "ledger" / "standalone_verifier.py"):
        if candidate.exists():
            module = types.ModuleType("standalone_verifier")
            module.__file__ = str(candidate)
            sys.modules["standalone_verifier"] = module  # dataclasses look their module up while it runs
            exec(compile(candidate.read_bytes(), str(candidate), "exec"), module.__dict__)  # noqa: S102 - the verifier beside this one
            return module
    raise ImportError("standalone_verifier.py is not beside verify_export.py")


sv = _ledger_verifier()
Failed: Any = sv.Failed
Unusable: Any = sv.Unusable

MANIFEST = "package-manifest.json"
SIGNATURE = "package-manifest.sig"
SIGNATURE_HEADER = "verbatim-export-manifest/v1"
FORMAT = "verbatim-export/1"
INDEX = "package-index.json"
INDEX_SIGNATURE = "package-index.sig"
INDEX_SIGNATURE_HEADER = "verbatim-export-index/v1"
INDEX_FORMAT = "verbatim-export-index/1"
_PART_NAME = re.compile(r"part-[0-9]{4,}(\.zip)?")
READ = 1024 * 1024
EXIT_VERIFIED, EXIT_NOT_VERIFIED, EXIT_UNUSABLE = 0, 1, 2
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe(text: str, limit: int = 80) -> str:
    """The package's rule for a path component made from an id (verbatim.exports.names.safe)."""
    cleaned = _UNSAFE.sub("_", text).strip(".")[:limit]
    return cleaned or "_"


# --- reading a package: a ZIP or a folder ---


class Package:
    def names(self) -> list[str]:
        raise NotImplementedError

    def open(self, name: str) -> IO[bytes]:
        raise NotImplementedError

    def size(self, name: str) -> int:
        raise NotImplementedError

    def read(self, name: str) -> bytes:
        with self.open(name) as handle:
            return handle.read()


class ZipPackage(Package):
    def __init__(self, path: Path) -> None:
        try:
            self.zip = zipfile.ZipFile(path)
        except (OSError, zipfile.BadZipFile) as error:
            raise Unusable(f"cannot open {path} as a ZIP: {error}") from None
        self._infos = {i.filename: i for i in self.zip.infolist() if not i.is_dir()}

    def names(self) -> list[str]:
        return sorted(self._infos)

    def open(self, name: str) -> IO[bytes]:
        handle = self.zip.open(self._infos[name])
        # The SHA-256 the manifest lists is the check: a changed byte is named by it (file.hash_mismatch), not
        # stopped by zipfile's CRC-32 check at the end of the member (BadZipFile) before it could be named.
        handle._expected_crc = None  # type: ignore[attr-defined]
        return handle

    def size(self, name: str) -> int:
        return self._infos[name].file_size


class FolderPackage(Package):
    def __init__(self, root: Path) -> None:
        self.root = root

    def names(self) -> list[str]:
        return sorted(p.relative_to(self.root).as_posix() for p in self.root.rglob("*") if p.is_file())

    def open(self, name: str) -> IO[bytes]:
        return (self.root / name).open("rb")

    def size(self, name: str) -> int:
        return (self.root / name).stat().st_size


def open_package(path: Path) -> Package:
    if path.is_dir():
        return FolderPackage(path)
    if path.is_file():
        return ZipPackage(path)
    raise Unusable(f"{path} is neither a file nor a folder")


# --- progress ---


class Progress:
    """Bytes hashed so far: tqdm's bar when tqdm is installed, else a line on stderr now and then."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.total, self.done, self.enabled = total, 0, enabled
        self._bar: Any = None
        self._last = 0.0
        if enabled:
            try:
                from tqdm import tqdm  # optional: the verifier needs only cryptography

                self._bar = tqdm(total=total, unit="B", unit_scale=True, desc="hashing", file=sys.stderr)
            except ImportError:
                self._bar = None

    def add(self, count: int) -> None:
        self.done += count
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.update(count)
            return
        now = time.monotonic()
        if now - self._last >= 1.0:
            self._last = now
            share = self.done / self.total if self.total else 1.0
            print(f"hashing: {share:6.1%} of {self.total / 1e6:.1f} MB", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


# --- the report ---


@dataclass
class Report:
    findings: list[Any] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)

    def fail(self, code: str, message: str) -> None:
        self.findings.append(Failed(code, message))

    @property
    def verified(self) -> bool:
        return not self.findings

    def as_text(self, quiet: bool) -> str:
        out = [] if quiet else [f"ok    {line}" for line in self.lines]
        out += [f"FAIL  {f.code}: {f.message}" for f in self.findings]
        if not quiet or not self.verified:
            out.append("VERIFIED" if self.verified else f"NOT VERIFIED ({len(self.findings)} finding(s))")
        return "\n".join(out)

    def as_json(self) -> str:
        return json.dumps(
            {
                "verifier": "verbatim-export-verifier/1",
                "verified": self.verified,
                "findings": [{"code": f.code, "message": f.message} for f in self.findings],
                **self.facts,
            },
            indent=2,
        )


# --- keys ---


def fingerprint(key: Any) -> str:
    der = key.public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def trusted_keys(args: argparse.Namespace, package: Package, report: Report) -> list[Any]:
    texts = list(args.key or [])
    for path in args.key_file or []:
        try:
            texts += [line for line in Path(path).read_text().splitlines() if line.strip()]
        except OSError as error:
            raise Unusable(f"cannot read {path}: {error.strerror}") from None
    source = "given"
    if not texts:
        source = "package"
        try:
            texts = [line for line in package.read("keys/log.vkey").decode().splitlines() if line.strip()]
        except (KeyError, OSError, UnicodeDecodeError):
            raise Unusable("no trusted key: the package has no keys/log.vkey; pass --key VKEY") from None
    keys = [sv.parse_vkey(text) for text in texts]
    pins = {p.lower() for p in args.fingerprint or []}
    if pins:
        keys = [k for k in keys if fingerprint(k) in pins]
        if not keys:
            raise Unusable("none of the keys has a fingerprint given with --fingerprint")
        source = "pinned"
    for key in keys:
        report.lines.append(f"trusted key {key.describe()}, fingerprint {fingerprint(key)} ({source})")
    if source == "package":
        report.lines.append(
            "the keys come from the package itself: compare their fingerprints with ones the producer published"
        )
    report.facts["keys"] = [{"vkey": k.text, "fingerprint": fingerprint(k), "source": source} for k in keys]
    return keys


# --- the checks ---


class Verifier:
    def __init__(self, package: Package, keys: list[Any], report: Report, progress: Callable[[int], Progress]) -> None:
        self.package = package
        self.keys = keys
        self.report = report
        self.make_progress = progress
        self.present = set(package.names())
        # Names by their first two path components (a recording's or chat's folder, export/proofs): each item's
        # files are found without scanning the whole package once per item (quadratic in a large package).
        self._by_folder: dict[str, list[str]] = {}
        for name in sorted(self.present):
            self._by_folder.setdefault("/".join(name.split("/")[:2]), []).append(name)
        self.hashes: dict[str, tuple[int, str]] = {}
        self.sealed_hashes: dict[str, str] = {}  # SHA-256 of every sealed media object -> which recording's what
        self.checkpoints: dict[bytes, Any] = {}
        self.leaves: dict[int, bytes] = {}  # leaf hash of every proven entry, by index
        self.manifest: dict[str, Any] | None = None
        self.manifest_sha256: str | None = None
        self.checkpoint_root: bytes | None = None

    def fail(self, code: str, message: str) -> None:
        self.report.fail(code, message)

    def under(self, prefix: str) -> list[str]:
        """The names under the folder `prefix` (ending in `/`), sorted."""
        key = "/".join(prefix.rstrip("/").split("/")[:2])
        return [name for name in self._by_folder.get(key, ()) if name.startswith(prefix)]

    # files

    def hash_files(self, names: list[str]) -> None:
        todo = [n for n in names if n in self.present and n not in self.hashes]
        progress = self.make_progress(sum(self.package.size(n) for n in todo))
        try:
            for name in todo:
                digest, size = hashlib.sha256(), 0
                with self.package.open(name) as handle:
                    while chunk := handle.read(READ):
                        digest.update(chunk)
                        size += len(chunk)
                        progress.add(len(chunk))
                self.hashes[name] = (size, digest.hexdigest())
        finally:
            progress.close()

    def check_manifest_signature(self) -> dict[str, Any] | None:
        if MANIFEST not in self.present:
            self.fail("package.manifest_missing", f"{MANIFEST} is not in the package")
            return None
        data = self.package.read(MANIFEST)
        digest = hashlib.sha256(data).hexdigest()
        self.manifest_sha256 = digest
        try:
            manifest = json.loads(data)
        except ValueError:
            self.fail("package.manifest_malformed", f"{MANIFEST} is not JSON")
            return None
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            self.fail("package.manifest_malformed", f"{MANIFEST} is not a {FORMAT} manifest")
            return None
        if SIGNATURE not in self.present:
            self.fail("package.unsigned", f"{SIGNATURE} is not in the package")
            return manifest
        try:
            text, signers = sv.open_note(self.package.read(SIGNATURE), self.keys)
        except Failed as finding:
            self.fail(f"package.{finding.code}", f"{SIGNATURE}: {finding.message}")
            return manifest
        expected = f"{SIGNATURE_HEADER}\n{manifest.get('exportId')}\n{digest}\n"
        if text != expected:
            self.fail(
                "package.signature_mismatch",
                f"{SIGNATURE} signs another manifest (it names {text.splitlines()[1:3]}; "
                f"{MANIFEST} hashes to {digest})",
            )
        else:
            who = ", ".join(k.describe() for k in signers)
            self.report.lines.append(f"{MANIFEST} (SHA-256 {digest}) is signed by {who}")
        return manifest

    def check_files(self, manifest: dict[str, Any]) -> None:
        listed = {f["path"]: f for f in manifest.get("files", []) if isinstance(f, dict) and "path" in f}
        self.hash_files(sorted(listed))
        for path, entry in sorted(listed.items()):
            if path not in self.present:
                self.fail("file.missing", f"{path} is listed in {MANIFEST} but not in the package")
                continue
            size, digest = self.hashes[path]
            if size != entry.get("bytes"):
                self.fail("file.size_mismatch", f"{path} has {size} bytes; {MANIFEST} lists {entry.get('bytes')}")
            elif digest != entry.get("sha256"):
                self.fail("file.hash_mismatch", f"{path} hashes to {digest}; {MANIFEST} lists {entry.get('sha256')}")
        for path in sorted(self.present - set(listed) - {MANIFEST, SIGNATURE}):
            self.fail("file.unlisted", f"{path} is in the package but not listed in {MANIFEST} (it was added)")
        self.report.lines.append(f"{len(listed)} files listed in {MANIFEST} checked")

    # ledger

    def open_checkpoint(self, note: bytes, where: str) -> Any | None:
        if note in self.checkpoints:
            return self.checkpoints[note]
        try:
            checkpoint = sv.open_checkpoint(note, self.keys, None)
        except Failed as finding:
            self.fail(finding.code, f"{where}: {finding.message}")
            checkpoint = None
        self.checkpoints[note] = checkpoint
        return checkpoint

    def proven_entries(self, trail_path: str, proofs_dir: str, subject: str) -> dict[int, dict[str, Any]]:
        """The entries of an audit trail that their proofs lead to a trusted checkpoint from, by index."""
        lines: list[bytes] = []
        if trail_path in self.present:
            lines = [line for line in self.package.read(trail_path).split(b"\n") if line]
        else:
            self.fail("trail.missing", f"{trail_path} is not in the package")
        by_bytes = {line: n for n, line in enumerate(lines, 1)}
        seen_lines: set[bytes] = set()
        proven: dict[int, dict[str, Any]] = {}
        prefix = proofs_dir + "/"
        for name in [n for n in self.under(prefix) if n.endswith(".tlog-proof")]:
            try:
                proof = sv.parse_tlog_proof(self.package.read(name))
            except Failed as finding:
                self.fail(finding.code, f"{name}: {finding.message}")
                continue
            if name != f"{prefix}{proof.index}.tlog-proof":
                self.fail("proof.misnamed", f"{name} proves entry {proof.index}")
            checkpoint = self.open_checkpoint(proof.checkpoint, name)
            if checkpoint is None or proof.extra is None:
                if proof.extra is None:
                    self.fail("proof.no_entry", f"{name} carries no entry")
                continue
            try:
                sv.verify_inclusion(
                    proof.index, checkpoint.size, sv.leaf_hash(proof.extra), proof.hashes, checkpoint.root
                )
            except Failed as finding:
                self.fail(finding.code, f"{name}: {finding.message} (the proof or its entry was altered)")
                continue
            if proof.extra not in by_bytes:
                self.fail(
                    "trail.entry_mismatch",
                    f"{trail_path} has no line equal to ledger entry {proof.index} (proven by {name}): the line was "
                    "altered or removed",
                )
            seen_lines.add(proof.extra)
            try:
                entry = json.loads(proof.extra)
            except ValueError:
                self.fail("entry.malformed", f"ledger entry {proof.index} ({name}) is not JSON")
                continue
            if entry.get("subject") != subject:
                self.fail("trail.wrong_subject", f"ledger entry {proof.index} is about {entry.get('subject')!r}")
                continue
            proven[proof.index] = entry
            self.leaves[proof.index] = sv.leaf_hash(proof.extra)
        for line, number in by_bytes.items():
            if line not in seen_lines:
                self.fail(
                    "trail.entry_unproven",
                    f"{trail_path} line {number} is not a ledger entry any proof in {proofs_dir}/ proves (altered, "
                    "or its proof was removed)",
                )
        return proven

    # recordings

    def check_recording(self, row: dict[str, Any], export_id: str, options: dict[str, Any]) -> None:
        recording_id, folder = row.get("recordingId"), row.get("folder")
        if not isinstance(recording_id, str) or not isinstance(folder, str):
            self.fail("package.manifest_malformed", "a recording without recordingId or folder")
            return
        what = f"recording {recording_id}"
        entries = self.proven_entries(f"{folder}/audit-trail.jsonl", f"{folder}/proofs", f"recording:{recording_id}")
        self.check_trail(what, folder, entries, export_id)
        sealed = {i: e for i, e in entries.items() if e.get("kind") == "sealed"}
        if not sealed:
            self.fail("evidence.not_sealed", f"{what}: no proven `sealed` entry in its audit trail")
            return
        part = re.compile(re.escape(folder) + r"/part-[0-9]+/manifest\.json")
        manifests = [n for n in self.under(folder + "/") if n == f"{folder}/manifest.json" or part.fullmatch(n)]
        self.hash_files(manifests)
        matched: set[int] = set()
        for name in manifests:
            digest = self.hashes[name][1]
            index = next((i for i, e in sealed.items() if _manifest_sha(e) == digest), None)
            if index is None:
                recorded = ", ".join(f"{_manifest_sha(e)} (entry {i})" for i, e in sorted(sealed.items()))
                self.fail(
                    "evidence.manifest_mismatch",
                    f"{what}: {name} hashes to {digest}; the sealed ledger entries record {recorded}",
                )
                continue
            matched.add(index)
            # The access copies of a part sealed with manifest v2 are sealed after it: the `access_copy.sealed`
            # entry that names this manifest's hash.
            access = next(
                (
                    e
                    for e in entries.values()
                    if e.get("kind") == "access_copy.sealed"
                    and (e.get("details", {}).get("recording_manifest") or {}).get("sha256") == digest
                ),
                None,
            )
            self.check_media(what, name.rsplit("/", 1)[0], self.package.read(name), sealed[index], options, access)
        for index in sorted(set(sealed) - matched):
            if not any(self.hashes[m][1] == _manifest_sha(sealed[index]) for m in manifests):
                self.fail(
                    "evidence.manifest_missing",
                    f"{what}: the manifest sealed by ledger entry {index} ({_manifest_sha(sealed[index])}) is not in "
                    "the package",
                )

    def check_media(
        self,
        what: str,
        base: str,
        data: bytes,
        sealed: dict[str, Any],
        options: dict[str, Any],
        access_sealed: dict[str, Any] | None = None,
    ) -> None:
        try:
            manifest = json.loads(data)
        except ValueError:
            self.fail("evidence.manifest_malformed", f"{what}: {base}/manifest.json is not JSON")
            return
        details = sealed.get("details", {})
        expected: list[tuple[str, Any, str]] = []  # (path, sha256, by)
        if options.get("evidence", True):
            for track in details.get("evidence", []):
                # audio tracks are FLAC; camera and screen-share streams keep their H.264 (their sealed blob's name)
                extension = "h264" if str(track.get("blob", "")).endswith(".h264") else "flac"
                name = f"{base}/media/evidence-{safe(str(track.get('track')))}.{extension}"
                expected.append((name, track.get("sha256"), "ledger"))
            capture = manifest.get("capture_manifest")
            if isinstance(capture, dict):
                expected.append((f"{base}/media/capture.json", capture.get("sha256"), "manifest"))
        copies = details
        if details.get("access_copy_sealing") == "separate":
            # Manifest v2: the copies are in the `access_copy.sealed` entry, with the access manifest's hash.
            copies = (access_sealed or {}).get("details", {})
            if options.get("accessCopies", True) and access_sealed is None:
                self.fail(
                    "evidence.access_copy_unsealed",
                    f"{what}: {base}/manifest.json was sealed without its access copies and the audit trail has no "
                    "proven `access_copy.sealed` entry for it",
                )
            recorded = copies.get("manifest")
            if options.get("accessCopies", True) and isinstance(recorded, dict):
                expected.append((f"{base}/access.json", recorded.get("sha256"), "access"))
        access = copies.get("access_copy")
        if options.get("accessCopies", True) and isinstance(access, dict):
            expected.append((f"{base}/media/access-copy.ogg", access.get("sha256"), "ledger"))
        video_access = copies.get("video_access_copy")
        if options.get("accessCopies", True) and isinstance(video_access, dict):
            expected.append((f"{base}/media/access-copy.mp4", video_access.get("sha256"), "ledger"))
            for stream in video_access.get("streams") or []:  # each stream's own MP4 (audio + that stream)
                if isinstance(stream, dict):
                    name = f"{base}/media/access-copy-{safe(str(stream.get('track')))}.mp4"
                    expected.append((name, stream.get("sha256"), "ledger"))
        self.hash_files([path for path, _, _ in expected])
        for path, sha, by in expected:
            if path not in self.present:
                self.fail("evidence.media_missing", f"{what}: {path} is not in the package")
                continue
            size, digest = self.hashes[path]
            if digest == sha:
                continue
            source = {"ledger": "its sealed ledger entry", "access": "its `access_copy.sealed` entry"}.get(
                by, "its sealed manifest"
            )
            other = self.sealed_hashes.get(digest)
            hint = f" — it is {other}" if other else ""
            self.fail(
                "evidence.media_mismatch",
                f"{what}: {path} ({size} bytes) hashes to {digest}; {source} records {sha}{hint}",
            )

    def check_trail(self, what: str, folder: str, entries: dict[int, dict[str, Any]], export_id: str) -> None:
        exported = sorted(
            i
            for i, e in entries.items()
            if e.get("kind") == "exported" and e.get("details", {}).get("export_id") == export_id
        )
        if not exported:
            self.fail(
                "trail.no_export_entry",
                f"{what}: the audit trail has no proven `exported` entry of export {export_id} to check it against",
            )
            return
        last = exported[-1]
        attested = entries[last].get("details", {}).get("trail", {})
        ours = set(exported)
        before = sorted(i for i in entries if i < last and i not in ours)
        listed = attested.get("indexes")
        if isinstance(listed, list):
            for index in sorted(set(listed) - set(before)):
                self.fail(
                    "trail.entry_missing",
                    f"{what}: ledger entry {index}, listed in the audit trail by the `exported` entry {last}, "
                    f"is not in {folder}/audit-trail.jsonl with its proof",
                )
            for index in sorted(set(before) - set(listed)):
                self.fail("trail.entry_unattested", f"{what}: entry {index} is not among those entry {last} lists")
        digest = hashlib.sha256()
        for index in before:
            digest.update(index.to_bytes(8, "big") + self.leaves[index])
        count_ok = attested.get("count") == len(before)
        if not count_ok:
            self.fail(
                "trail.count_mismatch",
                f"{what}: {len(before)} entries before the `exported` entry {last}, "
                f"which records {attested.get('count')}",
            )
        elif count_ok and digest.hexdigest() != attested.get("sha256"):
            self.fail(
                "trail.digest_mismatch",
                f"{what}: the audit trail before entry {last} does not hash to the digest that entry records",
            )
        else:
            self.report.lines.append(
                f"{what}: audit trail of {len(before)} entries complete up to its `exported` entry {last}"
            )

    # chats

    def check_chat(self, row: dict[str, Any], export_id: str) -> None:
        chat_id, folder = row.get("chatId"), row.get("folder")
        if not isinstance(chat_id, str) or not isinstance(folder, str):
            self.fail("package.manifest_malformed", "a chat without chatId or folder")
            return
        what = f"chat {chat_id}"
        entries = self.proven_entries(f"{folder}/audit-trail.jsonl", f"{folder}/proofs", f"chat:{chat_id}")
        self.check_trail(what, folder, entries, export_id)
        exported = sorted(
            i
            for i, e in entries.items()
            if e.get("kind") == "exported" and e.get("details", {}).get("export_id") == export_id
        )
        if not exported:
            return  # check_trail named it
        listed = entries[exported[-1]].get("details", {}).get("bundles")
        if not isinstance(listed, list) or not listed:
            self.fail("chat.no_bundles", f"{what}: its `exported` entry {exported[-1]} lists no sealed bundle")
            return
        sealed = {
            str(e.get("details", {}).get("bundle_id")): (i, e)
            for i, e in entries.items()
            if e.get("kind") == "chat.sealed"
        }
        expected: set[str] = set()
        for bundle_id in [str(b) for b in listed]:
            if bundle_id not in sealed:
                self.fail(
                    "chat.not_sealed",
                    f"{what}: bundle {bundle_id}, listed by the `exported` entry {exported[-1]}, has no proven "
                    "`chat.sealed` entry in the audit trail",
                )
                continue
            index, entry = sealed[bundle_id]
            details = entry.get("details", {})
            base = f"{folder}/bundles/{safe(str(details.get('day')))}-part-{int(details.get('part', 0)):03d}"
            expected.update({f"{base}/manifest.json", f"{base}/messages.ndjson"})
            self.check_bundle(what, bundle_id, index, base, folder, details)
        prefix = f"{folder}/bundles/"
        for name in [n for n in self.under(prefix) if n not in expected]:
            self.fail("chat.bundle_unexpected", f"{what}: {name} belongs to no bundle the `exported` entry lists")

    def check_bundle(
        self, what: str, bundle_id: str, index: int, base: str, folder: str, details: dict[str, Any]
    ) -> None:
        manifest_path, messages_path = f"{base}/manifest.json", f"{base}/messages.ndjson"
        self.hash_files([manifest_path, messages_path])
        recorded: dict[str, Any] = details["manifest"] if isinstance(details.get("manifest"), dict) else {}
        if manifest_path not in self.present:
            self.fail("chat.manifest_missing", f"{what}: {manifest_path} (bundle {bundle_id}) is not in the package")
            return
        digest = self.hashes[manifest_path][1]
        if digest != recorded.get("sha256"):
            self.fail(
                "chat.manifest_mismatch",
                f"{what}: {manifest_path} hashes to {digest}; its `chat.sealed` ledger entry {index} records "
                f"{recorded.get('sha256')}",
            )
            return
        try:
            manifest = json.loads(self.package.read(manifest_path))
        except ValueError:
            self.fail("chat.manifest_malformed", f"{what}: {manifest_path} is not JSON")
            return
        sealed_messages: dict[str, Any] = details["messages"] if isinstance(details.get("messages"), dict) else {}
        if messages_path not in self.present:
            self.fail("chat.messages_missing", f"{what}: {messages_path} (bundle {bundle_id}) is not in the package")
        elif self.hashes[messages_path][1] != sealed_messages.get("sha256"):
            lines = self.package.read(messages_path).splitlines(keepends=True)
            refs = [v for v in manifest.get("versions", []) if isinstance(v, dict)]
            changed = [
                f"line {int(v.get('line', 0)) + 1} (message {v.get('messageId')}, version {v.get('etag')})"
                for v in refs
                if int(v.get("line", -1)) >= len(lines)
                or hashlib.sha256(lines[int(v.get("line", 0))]).hexdigest() != v.get("lineSha256")
            ]
            extra = f"; {len(lines) - len(refs)} line(s) more than sealed" if len(lines) > len(refs) else ""
            self.fail(
                "chat.message_mismatch",
                f"{what}: {messages_path} hashes to {self.hashes[messages_path][1]}; its `chat.sealed` ledger entry "
                f"{index} records {sealed_messages.get('sha256')}: "
                + (", ".join(changed[:10]) if changed else "no line matches its sealed hash")
                + " altered"
                + extra,
            )
        else:
            self.report.lines.append(
                f"{what}: bundle {bundle_id} ({len(manifest.get('versions', []))} versions) as sealed by entry {index}"
            )
        hosted = [h for h in manifest.get("hostedContents", []) if isinstance(h, dict)]
        paths = {str(h.get("sha256")): f"{folder}/hosted/{safe(str(h.get('sha256')))}" for h in hosted}
        self.hash_files(sorted(paths.values()))
        for sha, path in sorted(paths.items()):
            if path not in self.present:
                self.fail(
                    "chat.hosted_missing", f"{what}: inline image {path} (bundle {bundle_id}) is not in the package"
                )
            elif self.hashes[path][1] != sha:
                self.fail(
                    "chat.hosted_mismatch",
                    f"{what}: {path} hashes to {self.hashes[path][1]}; the sealed manifest of bundle {bundle_id} "
                    f"records {sha}",
                )

    def check_export_entry(self, manifest: dict[str, Any]) -> None:
        export_id = manifest.get("exportId")
        if manifest.get("createdEntry") is None:
            return
        entries = self.proven_entries("export/audit-trail.jsonl", "export/proofs", f"export:{export_id}")
        created = entries.get(manifest["createdEntry"])
        if created is None:
            self.fail(
                "export.entry_missing",
                f"the export's `export.created` ledger entry {manifest['createdEntry']} is not proven",
            )
        elif created.get("details", {}).get("reason") != manifest.get("reason"):
            self.fail(
                "export.reason_mismatch", "the reason in package-manifest.json is not the one the ledger recorded"
            )

    def run(self) -> None:
        manifest = self.check_manifest_signature()
        if manifest is None:
            return
        self.manifest = manifest
        export_id = manifest.get("exportId")
        self.report.facts["exportId"] = export_id
        part = manifest.get("part")
        if isinstance(part, dict):
            self.report.lines.append(
                f"part {part.get('number')} of {part.get('of')} of export {export_id}: this part is checked on its "
                f"own; verify the whole with the folder holding every part and {part.get('index', INDEX)}"
            )
        self.check_files(manifest)
        if "ledger/checkpoint" in self.present:
            checkpoint = self.open_checkpoint(self.package.read("ledger/checkpoint"), "ledger/checkpoint")
            if checkpoint is not None:
                self.checkpoint_root = checkpoint.root
                self.report.lines.append(
                    f"checkpoint of {checkpoint.origin}: {checkpoint.size} entries, signed by "
                    + ", ".join(k.describe() for k in checkpoint.signed_by)
                )
        else:
            self.fail("ledger.checkpoint_missing", "ledger/checkpoint is not in the package")
        rows = [r for r in manifest.get("recordings", []) if isinstance(r, dict)]
        for row in rows:  # every sealed hash first, to name swapped media
            self.index_sealed(row)
        options: dict[str, Any] = manifest["options"] if isinstance(manifest.get("options"), dict) else {}
        for row in rows:
            self.check_recording(row, str(export_id), options)
        chats = [c for c in manifest.get("chats", []) if isinstance(c, dict)]
        for chat in chats:
            self.check_chat(chat, str(export_id))
        self.check_export_entry(manifest)
        self.report.facts["recordings"] = len(rows)
        self.report.facts["chats"] = len(chats)
        self.report.lines.append(f"{len(rows)} recording(s) checked")
        if chats:
            self.report.lines.append(f"{len(chats)} chat(s) checked")

    def index_sealed(self, row: dict[str, Any]) -> None:
        folder = row.get("folder")
        path = f"{folder}/audit-trail.jsonl"
        if path not in self.present:
            return
        for line in self.package.read(path).split(b"\n"):
            try:
                entry = json.loads(line) if line else None
            except ValueError:
                continue
            if isinstance(entry, dict) and entry.get("kind") in ("sealed", "access_copy.sealed"):
                details = entry.get("details", {})
                for track in details.get("evidence", []):
                    self.sealed_hashes[str(track.get("sha256"))] = f"the evidence of recording {row.get('recordingId')}"
                access = details.get("access_copy")
                if isinstance(access, dict):
                    self.sealed_hashes[str(access.get("sha256"))] = (
                        f"the access copy of recording {row.get('recordingId')}"
                    )


def _manifest_sha(entry: dict[str, Any]) -> str | None:
    manifest = entry.get("details", {}).get("manifest")
    return manifest.get("sha256") if isinstance(manifest, dict) else None


# --- a multi-part package: a folder of parts and the signed index listing them ---


def _part_path(root: Path, name: str) -> Path | None:
    """A part as downloaded (`part-0001.zip`) or unpacked into a folder (`part-0001`)."""
    for candidate in (root / name, root / name.removesuffix(".zip")):
        if candidate.exists():
            return candidate
    return None


class MultiPartVerifier:
    """The whole of a multi-part package: `package-index.json` is signed by a trusted key; every part it lists is
    there, verifies as a package on its own (every check above) and is the part the index lists (its signed
    manifest's SHA-256, export, number, checkpoint and items); no part is there that the index does not list;
    every item of the export is in exactly one part."""

    def __init__(
        self, root: Path, args: argparse.Namespace, report: Report, progress: Callable[[int], Progress]
    ) -> None:
        self.root, self.args, self.report, self.make_progress = root, args, report, progress

    def fail(self, code: str, message: str) -> None:
        self.report.fail(code, message)

    def keys(self) -> list[Any]:
        """Given keys, else those of the first part there (each part carries the same)."""
        if self.args.key or self.args.key_file:
            return trusted_keys(self.args, FolderPackage(self.root), self.report)
        for path in sorted(p for p in self.root.iterdir() if _PART_NAME.fullmatch(p.name)):
            return trusted_keys(self.args, open_package(path), self.report)
        raise Unusable(f"no part in {self.root} to take the ledger's key from; pass --key VKEY")

    def index(self, keys: list[Any]) -> dict[str, Any] | None:
        path = self.root / INDEX
        data = path.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        try:
            index = json.loads(data)
        except ValueError:
            index = None
        if (
            not isinstance(index, dict)
            or index.get("format") != INDEX_FORMAT
            or not isinstance(index.get("parts"), list)
        ):
            self.fail("index.malformed", f"{INDEX} is not a {INDEX_FORMAT} index")
            return None
        signature = self.root / INDEX_SIGNATURE
        if not signature.exists():
            self.fail("index.unsigned", f"{INDEX_SIGNATURE} is not in {self.root}")
            return index
        try:
            text, signers = sv.open_note(signature.read_bytes(), keys)
        except Failed as finding:
            self.fail(f"index.{finding.code}", f"{INDEX_SIGNATURE}: {finding.message}")
            return index
        if text != f"{INDEX_SIGNATURE_HEADER}\n{index.get('exportId')}\n{digest}\n":
            self.fail(
                "index.signature_mismatch",
                f"{INDEX_SIGNATURE} signs another index (it names {text.splitlines()[1:3]}; {INDEX} hashes to "
                f"{digest})",
            )
        else:
            who = ", ".join(k.describe() for k in signers)
            self.report.lines.append(f"{INDEX} (SHA-256 {digest}) is signed by {who}")
        return index

    def run(self) -> None:
        keys = self.keys()
        index = self.index(keys)
        if index is None:
            return
        export_id = index.get("exportId")
        self.report.facts["exportId"] = export_id
        listed = [p for p in index["parts"] if isinstance(p, dict) and isinstance(p.get("name"), str)]
        names = {str(p["name"]) for p in listed}
        for path in sorted(self.root.iterdir()):
            if _PART_NAME.fullmatch(path.name) and path.name not in names and f"{path.name}.zip" not in names:
                self.fail("part.unlisted", f"{path.name} is in {self.root} but not listed in {INDEX} (it was added)")
        where: dict[tuple[str, str], list[str]] = {}  # (kind, id) -> the parts holding it (index and manifests)
        roots: dict[bytes, str] = {}
        checked = 0
        for number, part in enumerate(listed, 1):
            name = str(part["name"])
            items = [("recording", str(r)) for r in part.get("recordings", [])]
            items += [("chat", str(c)) for c in part.get("chats", [])]
            for item in items:
                where.setdefault(item, []).append(name)
            found = _part_path(self.root, name)
            if found is None:
                self.fail("part.missing", f"{name}, part {part.get('number')} of {len(listed)}, is not in {self.root}")
                for kind, item_id in items:
                    self.fail("export.item_missing", f"{kind} {item_id} is in {name}, which is missing")
                continue
            if found.is_file() and found.stat().st_size != part.get("bytes"):
                self.fail(
                    "part.size_mismatch", f"{name} has {found.stat().st_size} bytes; {INDEX} lists {part.get('bytes')}"
                )
            verifier = self.verify_part(name, found, keys)
            if verifier is None:
                continue
            checked += 1
            self.check_part(name, part, number, len(listed), index, verifier, where)
            if verifier.checkpoint_root is not None:
                roots.setdefault(verifier.checkpoint_root, name)
        if len(roots) > 1:
            self.fail(
                "part.checkpoint_mismatch",
                f"the parts lead to {len(roots)} different checkpoints: {sorted(roots.values())}",
            )
        for (kind, item_id), holders in sorted(where.items()):
            unique = sorted(set(holders))
            if len(holders) > 1:
                self.fail("export.item_duplicated", f"{kind} {item_id} is in more than one part: {', '.join(unique)}")
        recordings = sum(1 for kind, _ in where if kind == "recording")
        chats = sum(1 for kind, _ in where if kind == "chat")
        if recordings != index.get("recordings") or chats != index.get("chats", 0):
            self.fail(
                "export.count_mismatch",
                f"the parts list {recordings} recording(s) and {chats} chat(s); {INDEX} counts "
                f"{index.get('recordings')} and {index.get('chats', 0)}",
            )
        self.report.facts.update({"parts": len(listed), "recordings": recordings, "chats": chats})
        self.report.lines.append(
            f"{len(listed)} parts ({checked} checked), {recordings} recording(s) and {chats} chat(s), each in one part"
        )

    def verify_part(self, name: str, path: Path, keys: list[Any]) -> Verifier | None:
        sub = Report()
        try:
            package = open_package(path)
        except Unusable as error:
            self.fail("part.unreadable", f"{name}: {error}")
            return None
        verifier = Verifier(package, keys, sub, self.make_progress)
        verifier.run()
        self.report.lines += [f"{name}: {line}" for line in sub.lines]
        for finding in sub.findings:
            self.fail(finding.code, f"{name}: {finding.message}")
        return verifier

    def check_part(
        self,
        name: str,
        part: dict[str, Any],
        number: int,
        count: int,
        index: dict[str, Any],
        verifier: Verifier,
        where: dict[tuple[str, str], list[str]],
    ) -> None:
        manifest = verifier.manifest
        if manifest is None:
            return  # its findings say why
        if verifier.manifest_sha256 != part.get("manifestSha256"):
            self.fail(
                "part.manifest_mismatch",
                f"{name}: its {MANIFEST} hashes to {verifier.manifest_sha256}; {INDEX} lists "
                f"{part.get('manifestSha256')}",
            )
        if manifest.get("exportId") != index.get("exportId"):
            self.fail(
                "part.wrong_export",
                f"{name} is a part of export {manifest.get('exportId')}, not {index.get('exportId')}",
            )
        of: dict[str, Any] = manifest["part"] if isinstance(manifest.get("part"), dict) else {}
        if of.get("number") != part.get("number") or of.get("number") != number or of.get("of") != count:
            self.fail(
                "part.number_mismatch",
                f"{name} says it is part {of.get('number')} of {of.get('of')}; {INDEX} lists it as part "
                f"{part.get('number')} ({number} of {count})",
            )
        if manifest.get("checkpointSize") != index.get("checkpointSize"):
            self.fail(
                "part.checkpoint_mismatch",
                f"{name}: its proofs are against checkpoint {manifest.get('checkpointSize')}, the index's is "
                f"{index.get('checkpointSize')}",
            )
        for kind, key, rows in (
            ("recording", "recordingId", manifest.get("recordings", [])),
            ("chat", "chatId", manifest.get("chats", [])),
        ):
            held = {str(r.get(key)) for r in rows if isinstance(r, dict)}
            listed = {str(i) for i in part.get(f"{kind}s", [])}
            for item_id in sorted(held - listed):
                self.fail("part.items_mismatch", f"{name} holds {kind} {item_id}, which {INDEX} does not list in it")
                where.setdefault((kind, item_id), []).append(name)
            for item_id in sorted(listed - held):
                self.fail("part.items_mismatch", f"{name} lacks {kind} {item_id}, which {INDEX} lists in it")


def parser() -> argparse.ArgumentParser:
    main_parser = argparse.ArgumentParser(
        prog="verify_export.py",
        description="Verify a Verbatim export package offline (the ZIP or its unpacked folder).",
        epilog="Exit status: 0 verified, 1 not verified (findings printed), 2 could not verify.",
    )
    main_parser.add_argument(
        "package",
        help="the export ZIP, the folder it was unpacked into, or the folder of a multi-part package (its "
        "package-index.json, package-index.sig and parts)",
    )
    main_parser.add_argument("--key", action="append", metavar="VKEY", help="a trusted ledger key (repeatable)")
    main_parser.add_argument("--key-file", action="append", metavar="FILE", help="trusted ledger keys, one per line")
    main_parser.add_argument(
        "--fingerprint", action="append", metavar="SHA256", help="trust only the package key with this fingerprint"
    )
    main_parser.add_argument("--quiet", "-q", action="store_true", help="no progress; print only problems")
    main_parser.add_argument("--json", action="store_true", help="print one JSON object")
    return main_parser


def verify(
    path: Path,
    args: argparse.Namespace,
    progress: Callable[[int], Progress] | None = None,
) -> Report:
    report = Report()
    show = not args.quiet and not args.json
    make_progress = progress or (lambda total: Progress(total, show))
    if path.is_dir() and (path / INDEX).exists():
        MultiPartVerifier(path, args, report, make_progress).run()
        return report
    package = open_package(path)
    keys = trusted_keys(args, package, report)
    Verifier(package, keys, report, make_progress).run()
    return report


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        report = verify(Path(args.package), args)
    except Unusable as error:
        print(f"cannot verify: {error}", file=sys.stderr)
        return EXIT_UNUSABLE
    output = report.as_json() if args.json else report.as_text(args.quiet)
    if output:
        print(output)
    return EXIT_VERIFIED if report.verified else EXIT_NOT_VERIFIED


if __name__ == "__main__":
    sys.exit(main())
