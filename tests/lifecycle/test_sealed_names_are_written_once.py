"""Issue 14: nothing sealed is ever rewritten. The recorder cannot reach a sealed name (it writes the captures
container only: it never names `recordings`, and rbac.bicep gives it no role there,
tests/infra/test_bicep_policy.py), and every write of the lifecycle, retention and the triggers into a blob
store is create-only (`overwrite=False`, or `write_stream`, which never overwrites) unless it is one of the
stores below that hold no sealed evidence. `tests/lifecycle/test_service.py` checks the same at run time: every
name in `recordings` has exactly one version after a stop, a salvage and a continuation."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CHECKED = ["verbatim/evidence", "verbatim/lifecycle", "verbatim/retention", "functions"]
WRITES = {"write", "upload_blob", "commit_blocks", "stage_block", "commit_block_list"}
# (file, receiver) of writes that may replace a blob: none of these stores holds sealed evidence.
NOT_EVIDENCE = {
    ("verbatim/evidence/access_copy.py", "scratch"),  # encoded chunks between the transcoding activities
    ("verbatim/evidence/salvage.py", "captures"),  # the fence marker, in the recorder's staging container
    ("verbatim/evidence/salvage.py", "container"),  # salvage commits the staged blocks in captures
    ("verbatim/evidence/finalise.py", "container"),  # commits what the recorder staged, in captures
    ("verbatim/evidence/finalise.py", "spool"),  # a local temporary file
    ("verbatim/evidence/capture.py", "container"),  # the recorder's capture manifest, in captures
    ("verbatim/lifecycle/activities.py", "deps.scratch"),  # activity results in lifecycle-scratch
}


def replacing_writes(path: Path, source: str) -> list[tuple[str, int, str]]:
    """Calls that may write over an existing blob: (receiver, line, method)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in WRITES):
            continue
        receiver = ast.unparse(node.func.value)
        create_only = any(
            k.arg == "overwrite" and isinstance(k.value, ast.Constant) and k.value.value is False for k in node.keywords
        )
        if create_only:
            continue
        found.append((receiver, node.lineno, node.func.attr))
    return found


def offending(root: Path = REPO) -> list[str]:
    problems = []
    for folder in CHECKED:
        for path in sorted((root / folder).rglob("*.py")):
            relative = path.relative_to(root).as_posix()
            for receiver, line, method in replacing_writes(path, path.read_text()):
                if (relative, receiver) not in NOT_EVIDENCE:
                    problems.append(f"{relative}:{line}: {receiver}.{method}(...) may write over a blob")
    return problems


def test_every_write_that_could_reach_a_sealed_name_is_create_only() -> None:
    assert offending() == []


def test_the_check_finds_a_write_that_would_replace_a_sealed_blob(tmp_path: Path) -> None:
    folder = tmp_path / "verbatim" / "evidence"
    folder.mkdir(parents=True)
    (folder / "reseal.py").write_text(
        "def reseal(recordings, name, body):\n"
        "    recordings.write(name, body)\n"
        "    recordings.write(name, body, overwrite=False)\n"
    )
    for other in CHECKED[1:]:
        (tmp_path / other).mkdir(parents=True, exist_ok=True)
    assert offending(tmp_path) == ["verbatim/evidence/reseal.py:2: recordings.write(...) may write over a blob"]


def test_the_recorder_never_names_the_sealed_evidence_container() -> None:
    for path in sorted((REPO / "recorder_vm").rglob("*.py")):
        source = path.read_text()
        for name in ("recordings_container", "RECORDINGS_BLOBS", "RECORDINGS_CONTAINER"):
            assert name not in source, f"{path.relative_to(REPO)} names {name}: the recorder writes captures only"
