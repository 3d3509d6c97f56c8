"""The maps of the tree stay true: every top-level folder is in the README's map, every folder of tests/ in
docs/testing.md (a new folder without a line there fails here)."""

from __future__ import annotations

from pathlib import Path

from tests.docs.references import code_spans

ROOT = Path(__file__).resolve().parents[2]
# Made by `make setup` or Python, not part of the tree.
NOT_THE_TREE = {"node_modules", "__pycache__"}


def folders(parent: Path) -> set[str]:
    return {
        p.name
        for p in parent.iterdir()
        if p.is_dir() and not p.name.startswith(".") and p.name not in NOT_THE_TREE and not p.name.endswith(".egg-info")
    }


def quoted(page: Path) -> set[str]:
    return {reference.text for reference in code_spans(page)}


def test_every_top_level_folder_is_in_the_readme_map() -> None:
    spans = quoted(ROOT / "README.md")
    assert {"verbatim", "tests", "docs"} <= folders(ROOT)
    assert sorted(f for f in folders(ROOT) if f"{f}/" not in spans) == []


def test_every_test_folder_is_in_the_testing_page() -> None:
    spans = quoted(ROOT / "docs" / "testing.md")
    assert {"unit", "e2e"} <= folders(ROOT / "tests")
    assert sorted(f for f in folders(ROOT / "tests") if f"tests/{f}/" not in spans) == []
