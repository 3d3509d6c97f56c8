"""Every relative link and anchor in the README, docs/ and the pages they link to resolves in the repository."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.docs.links import anchors_of, dead_links, github_slug, links_in

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "benchmarks" / "README.md"]


def test_the_documentation_has_no_dead_links() -> None:
    assert (ROOT / "docs").is_dir()
    assert all(d.exists() for d in DOCUMENTS)
    dead = dead_links(DOCUMENTS, ROOT)
    assert dead == [], "dead links:\n" + "\n".join(str(d) for d in dead)


def test_the_readme_links_every_docs_page() -> None:
    linked = {(ROOT / link.target).resolve() for link in links_in(ROOT / "README.md")}
    missing = [p.name for p in sorted((ROOT / "docs").glob("*.md")) if p.resolve() not in linked]
    assert missing == []


def test_the_readme_fits_on_a_screen_or_two() -> None:
    assert (ROOT / "README.md").stat().st_size <= 12 * 1024


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / "docs").mkdir()
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "run.sh").write_text("echo\n")
    (tmp_path / "docs" / "guide.md").write_text(
        "# Guide\n\n## Set up `make run`\n\n## The recorder's ports\n\n## Notes\n\n## Notes\n\n"
        "Back to [the README](../README.md#start).\n"
    )
    return tmp_path


def test_the_checker_finds_dead_files_and_anchors(repo: Path) -> None:
    (repo / "README.md").write_text(
        "# Start\n\n"
        "[ok](docs/guide.md) [ok anchor](docs/guide.md#set-up-make-run) [ok](docs/guide.md#the-recorders-ports)\n"
        "[repeat](docs/guide.md#notes-1) [self](#start) [script](scripts/run.sh#L1) [dir](scripts/)\n"
        "[web](https://example.com/missing.md) ![logo](docs/logo.png)\n\n"
        "| page | link |\n|---|---|\n| gone | [gone](docs/gone.md) |\n\n"
        "[bad anchor](docs/guide.md#nowhere) [bad self](#missing) [outside](../elsewhere.md) [abs](/docs/guide.md)\n\n"
        "`[not a link](docs/absent.md)`\n\n```\n[not a link either](docs/absent.md)\n```\n"
    )
    dead = dead_links([repo / "README.md"], repo)
    assert sorted((d.link.target, d.link.line) for d in dead) == [
        ("#missing", 11),
        ("../elsewhere.md", 11),
        ("/docs/guide.md", 11),
        ("docs/gone.md", 9),
        ("docs/guide.md#nowhere", 11),
        ("docs/logo.png", 5),
    ]
    assert "no such file: docs/gone.md" in {d.reason for d in dead}


def test_the_checker_follows_links_into_linked_pages(repo: Path) -> None:
    (repo / "README.md").write_text("# Elsewhere\n\nSee [the guide](docs/guide.md).\n")
    dead = dead_links([repo / "README.md"], repo)
    assert [(d.link.source.name, d.link.target) for d in dead] == [("guide.md", "../README.md#start")]


def test_slugs_are_githubs(repo: Path) -> None:
    assert github_slug("Local Functions host: HTTP (benchmarks/devhost_http.py)") == (
        "local-functions-host-http-benchmarksdevhost_httppy"
    )
    assert github_slug("Deploy to Azure and day-2 operations") == "deploy-to-azure-and-day-2-operations"
    assert anchors_of(repo / "docs" / "guide.md") == {
        "guide",
        "set-up-make-run",
        "the-recorders-ports",
        "notes",
        "notes-1",
    }
