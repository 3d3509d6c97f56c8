"""Every Bicep file parses cleanly (tree-sitter-bicep: no ERROR or MISSING nodes).

No Bicep compiler can be installed here, so this is the syntax gate; `az bicep build` and
`az deployment sub validate` remain the real checks in a networked pipeline.
"""

from __future__ import annotations

import pytest

from tests.infra.bicep_tree import INFRA, Bicep, bicep_files


def test_infra_has_the_templates_azd_needs() -> None:
    names = {path.relative_to(INFRA).as_posix() for path in bicep_files()}
    assert "main.bicep" in names
    assert len(names) >= 8, names


@pytest.mark.parametrize("path", bicep_files(), ids=lambda p: p.relative_to(INFRA).as_posix())
def test_template_parses_without_errors(path) -> None:  # type: ignore[no-untyped-def]
    assert Bicep.load(path).syntax_problems() == []


@pytest.mark.parametrize(
    "broken",
    [
        "resource sa 'Microsoft.Storage/storageAccounts@2023-05-01' = {\n  name: 'x'\n",  # missing }
        "param p string = 'unterminated\n",
        "var v = concat('a', 'b'\n",  # missing )
        "output o string = \n",
        "var v = {\n  scopes: [resourceGroup().id]\n}\n",  # misread by the grammar: must be flagged
    ],
)
def test_syntax_gate_flags_broken_snippets(broken: str) -> None:
    assert Bicep.from_text(broken).syntax_problems() != []


def test_main_template_deploys_at_subscription_scope(main: Bicep) -> None:
    assert main.target_scope() == "subscription"


def test_every_module_says_which_part_of_the_architecture_it_implements() -> None:
    for path in bicep_files():
        head = path.read_text().split("\n\n", 1)[0]
        assert head.startswith("//"), f"{path.name} starts without its purpose comment"
        assert "ARCHITECTURE.md" in head, f"{path.name}: the top comment must trace it to ARCHITECTURE.md"
