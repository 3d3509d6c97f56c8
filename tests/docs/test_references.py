"""The files, folders and Python names the documentation quotes exist, so a move or a rename shows up here."""

from __future__ import annotations

from pathlib import Path

from tests.docs.references import code_spans, missing_name, missing_path

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def test_every_quoted_path_and_name_exists() -> None:
    problems = []
    checked = 0
    for reference in (r for d in DOCUMENTS for r in code_spans(d)):
        reason = missing_path(reference.text, ROOT) or missing_name(reference.text)
        checked += 1
        if reason:
            problems.append(f"{reference.source.relative_to(ROOT)}:{reference.line}: `{reference.text}`: {reason}")
    assert checked > 0
    assert problems == []


def test_the_checker_finds_moved_paths_and_renamed_names(tmp_path: Path) -> None:
    (tmp_path / "verbatim").mkdir()
    (tmp_path / "verbatim" / "layout.py").write_text("")
    assert missing_path("verbatim/layout.py", tmp_path) is None
    assert missing_path("verbatim/", tmp_path) is None
    assert missing_path("verbatim/*.py", tmp_path) is None
    assert missing_path("verbatim/callrecords/times.py", tmp_path) == "no such path: verbatim/callrecords/times.py"
    assert (
        missing_path("tests/funchost/test_durable*.py", tmp_path) == "nothing matches tests/funchost/test_durable*.py"
    )
    assert missing_path("recordings/<id>/manifest.json", tmp_path) is None  # a blob name, not a repo path
    assert missing_name("verbatim.contracts") is None
    assert missing_name("verbatim.contracts.recorder.CaptureManifest") is None
    assert missing_name("recorder_vm.launch_argv(host=, port=)") is None
    assert missing_name("verbatim.contracts.recorder.NoSuchModel") == "verbatim.contracts.recorder has no NoSuchModel"
    assert missing_name("verbatim.no_such_module.thing") == "verbatim has no no_such_module.thing"
    assert missing_name("verbatim up --demo") is None  # a command, not a name
    assert missing_name("functions.log") is None  # a log file, not a name
    assert missing_name("verbatim.contoso.com/verbatim/ledger") is None  # a host and path, not a name
