"""Every cmdlet and parameter the generator can emit is in the committed table taken from Microsoft's docs.

The corpus (`tests/policy/corpus.py`) drives the generator through every line of
`verbatim/policy/powershell.py` (traced here, so a new branch without a case fails), and every command of
every script is parsed with tree-sitter-powershell and checked against `tests/policy/data/cmdlet-table.csv`
(built by `devstack/cmdlet_table.py` from MicrosoftDocs/office-docs-powershell and PowerShell-Docs).
"""

from __future__ import annotations

import inspect
import sys
import textwrap
import types
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from devstack.cmdlet_table import COLUMNS, POWERSHELL_CMDLETS, POWERSHELL_VERSIONS, TEAMS_CMDLETS, rows
from tests.policy import corpus
from tests.policy.cmdlet_table import table
from tests.policy.ps_tree import commands, functions
from verbatim.policy import powershell


def test_every_row_names_its_source_page_and_doc_commit() -> None:
    documented = table()

    assert documented.rows
    assert {tuple(row) for row in documented.rows} == {COLUMNS}
    for row in documented.rows:
        assert row["source"].startswith(("MicrosoftDocs/office-docs-powershell:", "MicrosoftDocs/PowerShell-Docs:"))
        assert row["source"].endswith(f"/{row['cmdlet']}.md")
        assert len(row["commit"]) == 40


def test_the_table_holds_every_cmdlet_the_builder_lists_and_nothing_else() -> None:
    sources = {(row["cmdlet"], row["source"]) for row in table().rows}

    expected = {
        (cmdlet, f"MicrosoftDocs/office-docs-powershell:teams/teams-ps/MicrosoftTeams/{cmdlet}.md")
        for cmdlet in TEAMS_CMDLETS
    } | {
        (cmdlet, f"MicrosoftDocs/PowerShell-Docs:reference/{version}/{module}/{cmdlet}.md")
        for version in POWERSHELL_VERSIONS
        for module, cmdlet in POWERSHELL_CMDLETS
    }
    assert sources == expected


# The builder's parser, on pages shaped like Microsoft's, with the quirks the real pages have.
PAGE = textwrap.dedent(
    """\
    # Set-CsExample

    ## SYNTAX

    ### Identity (Default)
    ```
    Set-CsExample [-Identity <XdsIdentity>] [-Banner <Guid>] [-Size <Unlimited>] [-Rank <Int32>]
     [-Force] [-WhatIf] [<CommonParameters>]
    ```

    ### Instance
    ```
    Set-CsExample [-Instance <PSObject>] [-Force] [<CommonParameters>]
    ```

    ## PARAMETERS

    ### -Identity
    The policy.

    ```yaml
    Type: XdsIdentity
    Parameter Sets: Identity
    ```

    ### Banner
    A heading without its hyphen.

    ```yaml
    Type: Guid
    Parameter Sets: (All)
    ```

    ### -Size

    > Applicable: Microsoft Teams

    **Note**: Starting with version 4.0 and later, "-Size" type has been changed to uint32.

    ```yaml
    Type: Unlimited
    Parameter Sets: (All)
    ```

    ### -Rank
    ```yaml
    Type: String
    Parameter Sets: (All)
    ```

    ### -Rank
    Described twice; the first description counts.
    ```yaml
    Type: Boolean
    ```

    ### -Legacy (Removed from version 2.3.2-preview)
    ```yaml
    Type: String
    ```

    ### CommonParameters
    This cmdlet supports the common parameters: -Debug, -ErrorAction, -ErrorVariable. For more information, see
    [about_CommonParameters](https://go.microsoft.com/fwlink/?LinkID=113216).
    """
)


def test_the_builder_reads_syntax_parameters_notes_and_common_parameters() -> None:
    found = {row["parameter"]: row for row in rows("Set-CsExample", PAGE, "src", "c" * 40)}

    assert set(found) == {
        "Identity", "Banner", "Size", "Rank", "Force", "WhatIf", "Instance", "Legacy", "Debug", "ErrorAction",
        "ErrorVariable",
    }  # fmt: skip
    assert (found["Identity"]["type"], found["Identity"]["parameter_sets"]) == ("XdsIdentity", "Identity")
    assert found["Banner"]["type"] == "Guid"
    assert (
        found["Size"]["note"] == 'Note: Starting with version 4.0 and later, "-Size" type has been changed to uint32.'
    )
    assert (found["Rank"]["type"], found["Rank"]["syntax_type"]) == ("String", "Int32")
    assert found["Force"]["syntax_type"] == "SwitchParameter"
    assert found["Legacy"]["note"] == "Removed from version 2.3.2-preview"
    assert found["ErrorAction"]["type"] == "CommonParameter"


def _documented(page: str = PAGE) -> Callable[[str], list[str]]:
    from tests.policy.cmdlet_table import CmdletTable

    example = CmdletTable(rows("Set-CsExample", page, "src", "c" * 40))
    return lambda line: [p for c in commands(line) for p in example.problems(c)]


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("Set-CsMissing -Identity 'x'", "no documented cmdlet"),
        ("Set-CsExample -Identity 'x' -Colour 'red'", "-Colour is not a documented parameter"),
        ("Set-CsExample -Identity 'x' -Banner $null", "-Banner $null: not a Guid value"),
        ("Set-CsExample -Identity 'x' -Banner 'banner-1'", "not a Guid value"),
        ("Set-CsExample -Identity 'x' -Size Unlimited", "-Size Unlimited: not a UInt32 value"),
        ("Set-CsExample -Identity 'x' -Size -1", "not a UInt32 value"),
        ("Set-CsExample -Identity 'x' -Legacy 'a'", "Removed from version"),
        ("Set-CsExample -Identity 'x' -Instance $p", "in no common parameter set"),
        ("Set-CsExample -Identity 'x' -Rank", "-Rank has no value"),
        ("Set-CsExample -Identity 'x' -Force:1", "not a SwitchParameter value"),
    ],
)
def test_the_check_rejects_what_the_docs_do_not_support(line: str, problem: str) -> None:
    found = _documented()(line)

    assert any(problem in p for p in found), found


def test_the_check_accepts_documented_commands() -> None:
    check = _documented()

    assert check("Set-CsExample -Identity 'Tag:x' -Banner '6f1c2a3b-0000-4000-8000-000000000001' -Size 10") == []
    assert check("Set-CsExample -Identity $id -Rank 2 -Force -WhatIf:$false -ErrorAction Stop") == []


# --- the generator, driven through every line -------------------------------------------------------------


def _function_lines(code: types.CodeType) -> Iterator[int]:
    """The lines of the functions (and everything nested in them) that `code` defines; module- and
    class-level code runs at import and is not the generator's work."""
    for constant in code.co_consts:
        if not isinstance(constant, types.CodeType):
            continue
        if constant.co_name.startswith("<"):  # a module-level comprehension or lambda
            continue
        if constant.co_flags & inspect.CO_NEWLOCALS:  # a function
            yield from _all_lines(constant)
        else:  # a class body: its methods
            yield from _function_lines(constant)


def _all_lines(code: types.CodeType) -> Iterator[int]:
    yield from (line for _, _, line in code.co_lines() if line is not None)
    for constant in code.co_consts:
        if isinstance(constant, types.CodeType):
            yield from _all_lines(constant)


def test_the_corpus_runs_every_line_of_the_generator() -> None:
    path = Path(powershell.__file__)
    module_code = compile(path.read_text(encoding="utf-8"), str(path), "exec")
    executable = set(_function_lines(module_code))
    executed: set[int] = set()

    def trace(frame: types.FrameType, event: str, arg: object) -> Callable[..., object] | None:
        if frame.f_code.co_filename != str(path):
            return None
        executed.add(frame.f_lineno)
        return trace

    sys.settrace(trace)
    try:
        corpus.scripts()
    finally:
        sys.settrace(None)

    source = path.read_text(encoding="utf-8").splitlines()
    missed = [f"{line}: {source[line - 1].strip()}" for line in sorted(executable - executed)]
    assert missed == [], "lines of powershell.py no corpus script runs:\n" + "\n".join(missed)


@pytest.mark.parametrize("name", sorted(corpus.scripts()))
def test_every_command_the_generator_emits_is_documented(name: str) -> None:
    script = corpus.scripts()[name]
    defined = functions(script)

    problems = [p for c in commands(script) if c.name not in defined for p in table().problems(c)]

    assert problems == []
