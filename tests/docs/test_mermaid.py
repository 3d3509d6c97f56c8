"""Every Mermaid diagram in the README and docs/ is valid Mermaid: parsed and rendered to SVG by the mermaid npm
package (pinned in package.json) in Debian chromium, as GitHub renders it in the browser."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from markdown_it import MarkdownIt

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
MERMAID_JS = ROOT / "node_modules" / "mermaid" / "dist" / "mermaid.min.js"
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

# Resolves to the SVG, or rejects with mermaid's own message (the line and what it expected).
RENDER = """async ([id, text]) => {
  try {
    const { svg } = await mermaid.render(id, text);
    return { svg };
  } catch (error) {
    return { error: String(error && error.message ? error.message : error) };
  }
}"""


def mermaid_blocks(path: Path) -> list[tuple[int, str]]:
    """(line, source) of every ```mermaid fence."""
    tokens = MarkdownIt("commonmark").parse(path.read_text(encoding="utf-8"))
    return [
        (token.map[0] + 1 if token.map else 0, token.content)
        for token in tokens
        if token.type == "fence" and token.info.strip() == "mermaid"
    ]


@pytest.fixture(scope="module")
def mermaid_page(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip("Debian chromium is not installed (scripts/apt-packages.txt)")
    assert MERMAID_JS.exists(), "npm ci installs mermaid (package.json)"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("mermaid") / "profile"),
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
            headless=True,
        )
        try:
            page = context.pages[0] if context.pages else context.new_page()
            page.set_content("<!doctype html><html><body></body></html>")
            page.add_script_tag(path=str(MERMAID_JS))
            page.evaluate("() => mermaid.initialize({ startOnLoad: false })")
            yield page
        finally:
            context.close()


def render(page: Any, text: str, name: str = "diagram") -> dict[str, str]:
    result: dict[str, str] = page.evaluate(RENDER, [name, text])
    return result


def test_the_docs_have_diagrams() -> None:
    assert mermaid_blocks(ROOT / "README.md"), "the README shows the two flows as a Mermaid diagram"


def test_every_mermaid_diagram_renders(mermaid_page: Any) -> None:
    failures = []
    count = 0
    for document in DOCUMENTS:
        for line, text in mermaid_blocks(document):
            count += 1
            result = render(mermaid_page, text, f"d{count}")
            if "error" in result or "<svg" not in result.get("svg", ""):
                failures.append(f"{document.relative_to(ROOT)}:{line}: {result.get('error', 'no SVG')}")
    assert count > 0
    assert failures == []


def test_the_readme_diagram_shows_both_flows(mermaid_page: Any) -> None:
    (_, text), *_ = mermaid_blocks(ROOT / "README.md")
    svg = render(mermaid_page, text, "readme")["svg"]
    for label in (
        "Teams",
        "recorder bot",
        "lifecycle orchestration",
        "sealed evidence",
        "Microsoft Graph",
        "webhook",
        "ingestion",
        "reconciliation",
        "verdicts",
    ):
        assert label in svg


def test_an_invalid_diagram_is_refused(mermaid_page: Any) -> None:
    result = render(mermaid_page, "flowchart LR\n  a -- b --> \n  end --> c[", "broken")
    assert "error" in result
    assert "Parse error" in result["error"]
