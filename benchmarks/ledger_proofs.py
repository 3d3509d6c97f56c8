"""Ledger v2 proofs at scale: inclusion and consistency proof sizes and verification times in a log of
1,000,000 entries (RFC 9162 tree built in memory by `verbatim.ledger.merkle`), beside the v1 hash chain's
inclusion proofs measured in the same run. Targets (issue 17): proof <= ~20 hashes, verify < 1 ms.

Each run samples fresh random entries (seeded per run); a row's figure is the median over the run's proofs,
and the table gives the median of the runs and their spread (lowest-highest run). Verification times are
in-process (no interpreter start): the Merkle check alone, then what an auditor's verifier does per proof
(parse the tlog proof, check the checkpoint's signature, hash the entry, check the path).

    .venv/bin/python benchmarks/ledger_proofs.py [--entries 1000000] [--proofs 1000] [--runs 3] [--no-write]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from cryptography.hazmat.primitives.asymmetric import ec, ed25519  # noqa: E402

from verbatim.contracts.evidence import InclusionProof  # noqa: E402
from verbatim.ledger import chain, merkle  # noqa: E402
from verbatim.ledger import standalone_verifier as sv  # noqa: E402
from verbatim.ledger.checkpoint import Checkpoint, TlogProof, sign_checkpoint  # noqa: E402
from verbatim.ledger.note import note_signer  # noqa: E402
from verbatim.ledger.signing import LocalKeySigner, fingerprint  # noqa: E402

README = Path(__file__).resolve().parent / "README.md"
START, END = "<!-- ledger_proofs:start -->", "<!-- ledger_proofs:end -->"
ORIGIN = "verbatim.example/ledger"
AT = datetime(2026, 11, 1, tzinfo=UTC)


def entry(index: int) -> bytes:
    """A ledger-sized entry (~230 bytes of canonical JSON), reproducible from its index."""
    return json.dumps(
        {
            "actor": None,
            "at": f"2026-11-01T08:{index % 60:02d}:00.000000Z",
            "details": {"manifest_sha256": f"{index:064x}", "objects": 3},
            "idempotency_key": f"seal:{index:012d}",
            "kind": "sealed",
            "schema_version": 2,
            "subject": f"recording:{index:012d}",
        },
        sort_keys=True,
        separators=(",", ":"),
    ).encode()


def timed(check: Callable[[], object]) -> float:
    started = time.perf_counter_ns()
    check()
    return (time.perf_counter_ns() - started) / 1000  # microseconds


def v2_run(tree: merkle.MemoryTree, size: int, proofs: int, seed: int, notes: dict[str, bytes], vkeys: dict[str, str]):  # type: ignore[no-untyped-def]
    rng = random.Random(seed)
    root = tree.root(size)
    sizes, merkle_us, rfc_us = [], [], []
    full_us: dict[str, list[float]] = {name: [] for name in notes}
    files: dict[str, list[int]] = {name: [] for name in notes}
    keys = {name: [sv.parse_vkey(vkey)] for name, vkey in vkeys.items()}
    for _ in range(proofs):
        index = rng.randrange(size)
        proof = tree.inclusion_proof(index, size)
        leaf = merkle.leaf_hash(entry(index))
        sizes.append(len(proof))
        merkle_us.append(timed(lambda: merkle.verify_inclusion(index, size, leaf, proof, root)))  # noqa: B023
        rfc_us.append(timed(lambda: sv.verify_inclusion(index, size, leaf, proof, root)))  # noqa: B023
        for name, note in notes.items():
            encoded = TlogProof(index, tuple(proof), note, entry(index)).encode()
            files[name].append(len(encoded))

            def auditor(encoded: bytes = encoded, name: str = name) -> None:
                parsed = sv.parse_tlog_proof(encoded)
                checkpoint = sv.open_checkpoint(parsed.checkpoint, keys[name], ORIGIN)
                assert parsed.extra is not None
                sv.verify_inclusion(parsed.index, checkpoint.size, sv.leaf_hash(parsed.extra), parsed.hashes, root)

            full_us[name].append(timed(auditor))
    consistency_sizes, consistency_us = [], []
    for _ in range(proofs):
        old = rng.randrange(1, size)
        proof = tree.consistency_proof(old, size)
        old_root = tree.root(old)
        consistency_sizes.append(len(proof))
        consistency_us.append(timed(lambda: merkle.verify_consistency(old, size, old_root, root, proof)))  # noqa: B023
    return {
        "inclusion proof, hashes (median / max)": (statistics.median(sizes), max(sizes)),
        **{
            f"tlog-proof file with entry and {name} checkpoint, bytes": statistics.median(sizes)
            for name, sizes in files.items()
        },
        "verify inclusion: Merkle path only (verbatim.ledger.merkle)": statistics.median(merkle_us),
        "verify inclusion: Merkle path only (standalone verifier, RFC 9162 loop)": statistics.median(rfc_us),
        **{
            f"verify inclusion: whole tlog proof, {name} checkpoint (standalone verifier)": statistics.median(times)
            for name, times in full_us.items()
        },
        "consistency proof, hashes (median / max)": (statistics.median(consistency_sizes), max(consistency_sizes)),
        "verify consistency (verbatim.ledger.merkle)": statistics.median(consistency_us),
    }


def v1_chain(length: int):  # type: ignore[no-untyped-def]
    """The v1 hash chain of `length` entries (same entry content), built with `verbatim.ledger.chain`."""
    entries, previous = [], chain.GENESIS_HASH
    for seq in range(1, length + 1):
        built = chain.build_entry(
            chain="main",
            seq=seq,
            kind="sealed",
            subject=f"recording:{seq:012d}",
            details={"manifest_sha256": f"{seq:064x}", "objects": 3},
            at=AT,
            prev_hash=previous,
            idempotency_key=f"seal:{seq:012d}",
        )
        entries.append(built)
        previous = built.hash
    return entries


def v1_run(entries, signer: LocalKeySigner, distances: list[int], proofs: int, seed: int):  # type: ignore[no-untyped-def]
    rng = random.Random(seed)
    trusted = {fingerprint(signer.public_key_pem())}
    results = {}
    for distance in distances:
        times, sizes = [], []
        for _ in range(max(3, proofs // distance)):  # fewer samples for the long ones: each is O(distance)
            first = rng.randrange(0, len(entries) - distance)
            checkpoint = chain.sign_checkpoint(entries[first + distance], signer, AT)
            proof = InclusionProof(
                entry=entries[first],
                links=chain.links_after(entries[first + 1 : first + distance + 1]),
                checkpoint=checkpoint,
            )
            sizes.append(len(proof.model_dump_json()))
            times.append(timed(lambda: chain.verify_inclusion(proof, trusted)))  # noqa: B023
        results[distance] = (statistics.median(times), statistics.median(sizes))
    return results


def fmt_us(value: float) -> str:
    if value >= 1_000_000:
        return f"{value / 1_000_000:.2f} s"
    return f"{value / 1000:.2f} ms" if value >= 1000 else f"{value:.1f} µs"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--proofs", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--chain", type=int, default=100_001, help="v1 chain length for the baseline")
    parser.add_argument("--no-write", action="store_true", help="print only; do not update benchmarks/README.md")
    args = parser.parse_args()
    load_start = os.getloadavg()

    started = time.perf_counter()
    tree = merkle.MemoryTree(merkle.leaf_hash(entry(i)) for i in range(args.entries))
    build_seconds = time.perf_counter() - started
    print(f"built a {args.entries:,}-entry tree in {build_seconds:.1f} s", flush=True)
    ed_signer = note_signer(ORIGIN, LocalKeySigner(ed25519.Ed25519PrivateKey.generate(), "file:ed"))
    ec_signer = note_signer(ORIGIN, LocalKeySigner(ec.generate_private_key(ec.SECP256R1()), "file:ec"))
    checkpoint = Checkpoint(ORIGIN, args.entries, tree.root())
    notes = {
        "Ed25519": sign_checkpoint(checkpoint, [ed_signer]),
        "ECDSA P-256": sign_checkpoint(checkpoint, [ec_signer]),
    }
    vkeys = {"Ed25519": ed_signer.verifier.vkey(), "ECDSA P-256": ec_signer.verifier.vkey()}

    started = time.perf_counter()
    v1_entries = v1_chain(args.chain)
    print(f"built a {args.chain:,}-entry v1 chain in {time.perf_counter() - started:.1f} s", flush=True)
    v1_signer = LocalKeySigner(ed25519.Ed25519PrivateKey.generate(), "file:v1")
    distances = [d for d in (50, 1_000, 10_000, 100_000) if d < args.chain]

    v2_runs, v1_runs = [], []
    for run in range(args.runs):
        v2_runs.append(v2_run(tree, args.entries, args.proofs, seed=run, notes=notes, vkeys=vkeys))
        v1_runs.append(v1_run(v1_entries, v1_signer, distances, args.proofs, seed=run))
        print(f"run {run + 1}/{args.runs} done", flush=True)
    load_end = os.getloadavg()

    rows = []
    for name in v2_runs[0]:
        values = [r[name] for r in v2_runs]
        if isinstance(values[0], tuple):
            medians, maxima = [v[0] for v in values], [v[1] for v in values]
            value, spread = f"{statistics.median(medians):g} / {max(maxima)}", f"{min(medians):g} to {max(medians):g}"
        elif name.startswith("verify"):
            value, spread = fmt_us(statistics.median(values)), f"{fmt_us(min(values))} to {fmt_us(max(values))}"
        else:
            value, spread = f"{statistics.median(values):,.0f}", f"{min(values):,.0f} to {max(values):,.0f}"
        rows.append((f"v2: {name}", value, spread))
    for distance in distances:
        times = [r[distance][0] for r in v1_runs]
        kib = statistics.median(r[distance][1] for r in v1_runs) / 1024
        name = f"v1 chain: verify inclusion, checkpoint {distance:,} entries after the entry ({kib:,.0f} KiB proof)"
        rows.append((name, fmt_us(statistics.median(times)), f"{fmt_us(min(times))} to {fmt_us(max(times))}"))
    table = "\n".join(
        ["| figure | median of runs | spread (runs) |", "|---|---:|---|"] + [f"| {a} | {b} | {c} |" for a, b, c in rows]
    )
    header = (
        f"Machine: {platform.machine()}, {len(os.sched_getaffinity(0))} cores, Python {platform.python_version()}; "
        f"`benchmarks/ledger_proofs.py --entries {args.entries} --proofs {args.proofs} --runs {args.runs}`, "
        f"{date.today().isoformat()}; 1-minute load average {load_start[0]:.2f} at the start, {load_end[0]:.2f} at "
        f"the end. Tree of {args.entries:,} entries built in memory in {build_seconds:.1f} s; v1 chain of "
        f"{args.chain:,} entries."
    )
    section = f"{START}\n{header}\n\n{table}\n{END}"
    print(section)
    if not args.no_write:
        text = README.read_text()
        if START in text:
            text = text[: text.index(START)] + section + text[text.index(END) + len(END) :]
        else:
            text = text.rstrip() + "\n\n## Ledger v2 proofs (`ledger_proofs.py`)\n\n" + section + "\n"
        README.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
