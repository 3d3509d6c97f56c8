"""The standalone verifier: run as auditors run it (a fresh venv holding only `cryptography` and what it
needs, `python -I`), on proofs and checkpoints made by the ledger's own modules, on the Tessera test log, and
on tampered copies; and held to the same answers as `merkle`, `note` and `checkpoint` for random inputs."""

from __future__ import annotations

import ast
import base64
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from hypothesis import given, settings
from hypothesis import strategies as st
from packaging.requirements import Requirement

from tests.ledger.test_note import NOTES
from verbatim.ledger import merkle
from verbatim.ledger import standalone_verifier as sv
from verbatim.ledger.checkpoint import Checkpoint, TlogProof, open_checkpoint, parse_tlog_proof, sign_checkpoint
from verbatim.ledger.merkle import MemoryTree, ProofError
from verbatim.ledger.note import KeyNoteSigner, NoteError, NoteVerifier
from verbatim.ledger.signing import LocalKeySigner
from verbatim.ledger.tiles import TileRef

# Hypothesis's per-example deadline would be a timed assertion, and the machine is shared.
untimed = settings(deadline=None)

VERIFIER = Path(sv.__file__)
TESSERA = Path(__file__).parent / "vectors" / "tessera-log"
TESSERA_VKEY = NOTES["tessera_log"]["vkey"]
ORIGIN = "verbatim.example/ledger"


# --- a Python that has cryptography and nothing else ---


def _distribution_closure(name: str) -> list[importlib.metadata.Distribution]:
    """`name` and every distribution it needs at run time on this platform, as pip would install them."""
    found: dict[str, importlib.metadata.Distribution] = {}
    pending = [name]
    while pending:
        dist = importlib.metadata.distribution(pending.pop())
        key = dist.metadata["Name"].lower()
        if key in found:
            continue
        found[key] = dist
        for text in dist.requires or []:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                pending.append(requirement.name)
    return list(found.values())


@pytest.fixture(scope="module")
def isolated_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new venv (no pip) whose site-packages holds links to cryptography and its run-time dependencies only."""
    root = tmp_path_factory.mktemp("verifier-venv")
    venv.EnvBuilder(with_pip=False, symlinks=True).create(root)
    site = next(root.glob("lib/python3*/site-packages"))
    for dist in _distribution_closure("cryptography"):
        top_level = {Path(str(f)).parts[0] for f in dist.files or []}
        for entry in top_level - {"..", "__pycache__"}:
            source = Path(str(dist.locate_file(entry)))
            if source.exists():
                (site / entry).symlink_to(source)
    python = root / "bin" / "python"
    names = sorted(p.name for p in site.iterdir())
    assert any(n.startswith("cryptography-") for n in names) and not any(n.startswith("pydantic") for n in names)
    return python


def run(python: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # -I: no user site, no PYTHONPATH, not the script's directory or the working directory on sys.path.
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
    return subprocess.run(
        [str(python), "-I", str(VERIFIER), *args], capture_output=True, text=True, timeout=60, env=env, check=False
    )


def test_the_isolated_python_has_cryptography_but_not_verbatim_or_its_dependencies(isolated_python: Path) -> None:
    probe = (
        "import importlib.util as u, cryptography; "
        "print([m for m in ('verbatim', 'pydantic', 'azure', 'hypothesis', 'packaging') if u.find_spec(m)])"
    )
    done = subprocess.run([str(isolated_python), "-I", "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_the_verifier_imports_only_the_standard_library_and_cryptography() -> None:
    tree = ast.parse(VERIFIER.read_text())
    imported = {
        alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
    } | {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    assert imported - set(sys.stdlib_module_names) == {"cryptography"}


# --- a small ledger made with the ledger's own modules ---


class Log:
    def __init__(self, size: int = 40, key: ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey | None = None):
        from verbatim.ledger.note import note_signer

        self.entries = [json.dumps({"kind": "sealed", "subject": f"recording:{i}"}).encode() for i in range(size)]
        self.tree = MemoryTree.of_entries(self.entries)
        self.signer = note_signer(ORIGIN, LocalKeySigner(key or ed25519.Ed25519PrivateKey.generate(), "file:k"))
        self.vkey = self.signer.verifier.vkey()

    def checkpoint(self, size: int) -> bytes:
        return sign_checkpoint(Checkpoint(ORIGIN, size, self.tree.root(size)), [self.signer])

    def proof(self, index: int, size: int, extra: bool = True) -> bytes:
        hashes = tuple(self.tree.inclusion_proof(index, size))
        return TlogProof(index, hashes, self.checkpoint(size), self.entries[index] if extra else None).encode()


def _write(tmp_path: Path, name: str, data: bytes) -> str:
    (tmp_path / name).write_bytes(data)
    return str(tmp_path / name)


def test_an_inclusion_proof_verifies_in_the_isolated_python(isolated_python: Path, tmp_path: Path) -> None:
    log = Log()
    done = run(isolated_python, "inclusion", _write(tmp_path, "p.tlog-proof", log.proof(17, 40)), "--key", log.vkey)
    assert done.returncode == 0, done.stderr
    assert "entry 17 is in the log of 40 entries (proof of 6 hashes)" in done.stdout
    assert done.stdout.strip().endswith("VERIFIED")


def test_an_es256_key_vault_style_checkpoint_verifies_in_the_isolated_python(
    isolated_python: Path, tmp_path: Path
) -> None:
    log = Log(key=ec.generate_private_key(ec.SECP256R1()))
    done = run(isolated_python, "inclusion", _write(tmp_path, "p", log.proof(0, 40)), "--key", log.vkey, "--json")
    report = json.loads(done.stdout)
    assert done.returncode == 0 and report["verified"] is True
    assert report["entry"] == {
        "index": 0,
        "sha256": __import__("hashlib").sha256(log.entries[0]).hexdigest(),
        "bytes": len(log.entries[0]),
        "kind": "sealed",
        "subject": "recording:0",
    }
    assert report["checkpoint"]["signedBy"] == ["+".join(log.vkey.split("+")[:2])]


def test_an_altered_entry_is_not_verified(isolated_python: Path, tmp_path: Path) -> None:
    log = Log()
    entry = _write(tmp_path, "entry.json", log.entries[17].replace(b"17", b"18"))
    proof = _write(tmp_path, "p", log.proof(17, 40, extra=False))
    done = run(isolated_python, "inclusion", proof, "--entry", entry, "--key", log.vkey, "--json")
    assert done.returncode == 1
    assert [f["code"] for f in json.loads(done.stdout)["findings"]] == ["proof.root_mismatch"]


def test_an_altered_checkpoint_is_not_verified(isolated_python: Path, tmp_path: Path) -> None:
    log = Log()
    proof = parse_tlog_proof(log.proof(3, 40))
    forged = TlogProof(3, proof.hashes, proof.checkpoint.replace(b"\n40\n", b"\n41\n"), proof.extra).encode()
    done = run(isolated_python, "inclusion", _write(tmp_path, "p", forged), "--key", log.vkey)
    assert done.returncode == 1
    assert "FAIL  note.signature_invalid:" in done.stdout


def test_a_checkpoint_from_another_key_is_not_trusted(isolated_python: Path, tmp_path: Path) -> None:
    log, other = Log(), Log()
    done = run(isolated_python, "inclusion", _write(tmp_path, "p", other.proof(3, 40)), "--key", log.vkey)
    assert done.returncode == 1
    assert "FAIL  note.no_trusted_signature:" in done.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--key", "not-a-key"], "not a verifier key"),
        ([], "no trusted key"),
        (["--key", TESSERA_VKEY.replace("33d7b496", "33d7b497")], "does not match its key"),
    ],
)
def test_a_bad_trusted_key_or_none_cannot_verify(
    isolated_python: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    done = run(isolated_python, "checkpoint", str(TESSERA / "checkpoint"), *args)
    assert done.returncode == 2
    assert message in done.stderr and done.stdout == ""


def test_a_proof_without_the_entry_needs_one(isolated_python: Path, tmp_path: Path) -> None:
    log = Log()
    done = run(isolated_python, "inclusion", _write(tmp_path, "p", log.proof(1, 40, extra=False)), "--key", log.vkey)
    assert done.returncode == 2 and "--entry" in done.stderr


def test_consistency_between_two_checkpoints_and_a_fork_refused(isolated_python: Path, tmp_path: Path) -> None:
    log = Log()
    old, new = _write(tmp_path, "old", log.checkpoint(13)), _write(tmp_path, "new", log.checkpoint(40))
    lines = "".join(base64.b64encode(h).decode() + "\n" for h in log.tree.consistency_proof(13, 40)).encode()
    good = run(isolated_python, "consistency", old, new, _write(tmp_path, "c.txt", lines), "--key", log.vkey)
    assert good.returncode == 0, good.stdout
    assert "the log of 40 entries extends the log of 13" in good.stdout
    # A rewritten history: same key, same sizes, entry 5 changed. Its checkpoint is validly signed, but the
    # log cannot prove it extends the old one.
    forked = MemoryTree.of_entries([b"rewritten" if i == 5 else e for i, e in enumerate(log.entries)])
    fork = _write(tmp_path, "fork", sign_checkpoint(Checkpoint(ORIGIN, 40, forked.root()), [log.signer]))
    as_json = json.dumps({"hashes": [base64.b64encode(h).decode() for h in forked.consistency_proof(13, 40)]})
    bad = run(
        isolated_python, "consistency", old, fork, _write(tmp_path, "c.json", as_json.encode()), "--key", log.vkey
    )
    assert bad.returncode == 1
    assert "FAIL  proof.old_root_mismatch:" in bad.stdout


def test_the_tessera_log_verifies_and_a_tampered_copy_is_found(isolated_python: Path, tmp_path: Path) -> None:
    good = run(isolated_python, "log", str(TESSERA), "--key", TESSERA_VKEY)
    assert good.returncode == 0 and "all 15 entries and their tiles" in good.stdout
    copy = tmp_path / "log"
    shutil.copytree(TESSERA, copy)
    bundle = copy / "tile/entries/000.p/15"
    bundle.write_bytes(bundle.read_bytes().replace(b"nain", b"nine"))
    bad = run(isolated_python, "log", str(copy), "--key", TESSERA_VKEY, "--json")
    assert bad.returncode == 1
    assert [f["code"] for f in json.loads(bad.stdout)["findings"]] == ["tile.leaf_mismatch", "log.root_mismatch"]


# --- the verifier and the ledger's modules agree (in process) ---

SHARED = MemoryTree.of_entries(f"entry {i}".encode() for i in range(700))


def _outcome(check, *args) -> str | None:  # type: ignore[no-untyped-def]
    try:
        check(*args)
    except (ProofError, NoteError, sv.Failed) as error:
        return error.code
    return None


def _flip(value: bytes, bit: int) -> bytes:
    changed = bytearray(value)
    changed[bit // 8 % len(changed)] ^= 1 << (bit % 8)
    return bytes(changed)


MUTATIONS = ["none", "hash", "drop", "extra", "index", "size", "leaf", "root"]


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 700), st.data(), st.sampled_from(MUTATIONS))
def test_inclusion_verdicts_agree(size: int, data: st.DataObject, mutation: str) -> None:
    index = data.draw(st.integers(0, size - 1))
    leaf, proof, root = (
        merkle.leaf_hash(f"entry {index}".encode()),
        SHARED.inclusion_proof(index, size),
        SHARED.root(size),
    )
    bit = data.draw(st.integers(0, 255))
    if mutation == "hash" and proof:
        position = data.draw(st.integers(0, len(proof) - 1))
        proof[position] = _flip(proof[position], bit)
    elif mutation == "drop" and proof:
        del proof[data.draw(st.integers(0, len(proof) - 1))]
    elif mutation == "extra":
        proof.insert(data.draw(st.integers(0, len(proof))), _flip(root, bit))
    elif mutation == "index":
        index = data.draw(st.integers(0, size + 2))
    elif mutation == "size":
        size = data.draw(st.integers(max(1, index), 700))
        root = SHARED.root(size)
    elif mutation == "leaf":
        leaf = _flip(leaf, bit)
    elif mutation == "root":
        root = _flip(root, bit)
    ours = _outcome(merkle.verify_inclusion, index, size, leaf, proof, root)
    assert _outcome(sv.verify_inclusion, index, size, leaf, proof, root) == ours


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 700), st.data(), st.sampled_from(MUTATIONS))
def test_consistency_verdicts_agree(new: int, data: st.DataObject, mutation: str) -> None:
    old = data.draw(st.integers(1, new))
    proof, old_root, new_root = SHARED.consistency_proof(old, new), SHARED.root(old), SHARED.root(new)
    bit = data.draw(st.integers(0, 255))
    if mutation == "hash" and proof:
        position = data.draw(st.integers(0, len(proof) - 1))
        proof[position] = _flip(proof[position], bit)
    elif mutation == "drop" and proof:
        del proof[data.draw(st.integers(0, len(proof) - 1))]
    elif mutation == "extra":
        proof.insert(data.draw(st.integers(0, len(proof))), _flip(old_root, bit))
    elif mutation == "index":
        old = data.draw(st.integers(0, 700))
        old_root = SHARED.root(old)
    elif mutation == "size":
        new = data.draw(st.integers(1, 700))
        new_root = SHARED.root(new)
    elif mutation == "leaf":
        old_root = _flip(old_root, bit)
    elif mutation == "root":
        new_root = _flip(new_root, bit)
    ours = _outcome(merkle.verify_consistency, old, new, old_root, new_root, proof)
    assert _outcome(sv.verify_consistency, old, new, old_root, new_root, proof) == ours


ED_KEY = ed25519.Ed25519PrivateKey.generate()
EC_KEY = ec.generate_private_key(ec.SECP256R1())


def _signer(kind: str) -> KeyNoteSigner:
    from verbatim.ledger.note import note_signer

    return note_signer(ORIGIN, LocalKeySigner(ED_KEY if kind == "ed25519" else EC_KEY, "file:k"))


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(["ed25519", "es256"]), st.integers(0, 700), st.data())
def test_checkpoint_verdicts_agree_for_any_single_byte_change(kind: str, size: int, data: st.DataObject) -> None:
    signer = _signer(kind)
    note = sign_checkpoint(Checkpoint(ORIGIN, size, SHARED.root(size)), [signer])
    if data.draw(st.booleans()):
        position = data.draw(st.integers(0, 10**6)) % len(note)  # ECDSA signatures vary in length: no len() bound
        note = note[:position] + bytes([data.draw(st.integers(0, 255))]) + note[position + 1 :]
    keys = [sv.parse_vkey(signer.verifier.vkey())]
    ours = _outcome(open_checkpoint, note, [NoteVerifier.from_vkey(signer.verifier.vkey())])
    theirs = _outcome(sv.open_checkpoint, note, keys, None)
    assert (ours is None) == (theirs is None), (ours, theirs)
    if ours is None:
        opened, checked = open_checkpoint(note, [signer.verifier]).checkpoint, sv.open_checkpoint(note, keys, None)
        assert (opened.origin, opened.size, opened.root_hash) == (checked.origin, checked.size, checked.root)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 699), st.booleans(), st.data())
def test_tlog_proof_parsing_agrees_for_any_single_byte_change(index: int, extra: bool, data: st.DataObject) -> None:
    encoded = TlogProof(index, tuple(SHARED.inclusion_proof(index, 700)), b"cp\n", b"x" if extra else None).encode()
    if data.draw(st.booleans()):
        position = data.draw(st.integers(0, len(encoded) - 1))
        encoded = encoded[:position] + bytes([data.draw(st.integers(0, 255))]) + encoded[position + 1 :]
    try:
        ours: TlogProof | str = parse_tlog_proof(encoded)
    except NoteError as error:
        ours = error.code
    try:
        parsed = sv.parse_tlog_proof(encoded)
        theirs: TlogProof | str = TlogProof(parsed.index, tuple(parsed.hashes), parsed.checkpoint, parsed.extra)
    except sv.Failed as error:
        theirs = error.code
    assert ours == theirs


@untimed
@given(st.integers(0, 63), st.integers(0, (1 << 64) - 1), st.integers(1, 256))
def test_tile_paths_agree(level: int, index: int, width: int) -> None:
    assert sv.tile_path(level, index, width) == TileRef(level, index, width).path


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (f"{ORIGIN}\n0\n{base64.b64encode(b'1' * 32).decode()}\n", "checkpoint.malformed"),
        (f"{ORIGIN}\n1\n{base64.b64encode(b'1' * 31).decode()}\n", "checkpoint.malformed"),
        (f"{ORIGIN}\n01\n{base64.b64encode(b'1' * 32).decode()}\n", "checkpoint.malformed"),
        (f"{ORIGIN}\n1\n", "checkpoint.malformed"),
        (f"{ORIGIN}\n1\n{base64.b64encode(b'1' * 32).decode()}\nextension\n", None),
        (f"another.example/log\n1\n{base64.b64encode(b'1' * 32).decode()}\n", "checkpoint.origin_mismatch"),
    ],
)
def test_validly_signed_but_wrong_checkpoints_get_the_same_verdict(body: str, code: str | None) -> None:
    from verbatim.ledger.note import sign_note

    signer = _signer("ed25519")
    note = sign_note(body, [signer])
    assert _outcome(open_checkpoint, note, [signer.verifier]) == code
    assert _outcome(sv.open_checkpoint, note, [sv.parse_vkey(signer.verifier.vkey())], None) == code
