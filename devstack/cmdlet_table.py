"""The table of cmdlets and parameters the generated PowerShell may use, built from Microsoft's own docs.

Reads the platyPS markdown of the cmdlet reference from local git clones, at their HEAD commits:
`MicrosoftDocs/office-docs-powershell` (`teams/teams-ps/MicrosoftTeams/<cmdlet>.md`) for the MicrosoftTeams
module, and `MicrosoftDocs/PowerShell-Docs` (`reference/<version>/<module>/<cmdlet>.md`) for the few built-in
cmdlets the scripts call, in Windows PowerShell 5.1 and PowerShell 7.4 (the scripts must run in both).
It writes one row per cmdlet, parameter and source page, with the doc commit, to
`tests/policy/data/cmdlet-table.csv`; `tests/policy/test_cmdlet_table.py` checks every command the
generator can emit against it. Refresh it with

    git clone https://github.com/MicrosoftDocs/office-docs-powershell
    git clone https://github.com/MicrosoftDocs/PowerShell-Docs
    .venv/bin/python -m devstack.cmdlet_table --teams-docs office-docs-powershell \
        --powershell-docs PowerShell-Docs

and review the diff. A cmdlet listed below without a page at that commit is an error: it has no documented
existence, so the generator must not use it.
"""

from __future__ import annotations

import argparse
import csv
import re
import subprocess
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

TABLE = Path(__file__).resolve().parent.parent / "tests" / "policy" / "data" / "cmdlet-table.csv"
COLUMNS = ("cmdlet", "parameter", "type", "syntax_type", "parameter_sets", "syntax_sets", "note", "source", "commit")

TEAMS_DIR = "teams/teams-ps/MicrosoftTeams"
# The MicrosoftTeams cmdlets of compliance recording administration: those the scripts call, and their
# siblings, so that a new step can only use what is here (add a name, refresh, review).
TEAMS_CMDLETS = (
    "Get-CsTenant",
    "Get-CsOnlineUser",
    "Get-CsUserPolicyAssignment",
    "Get-CsOnlineApplicationInstance",
    "New-CsOnlineApplicationInstance",
    "Set-CsOnlineApplicationInstance",
    "Sync-CsOnlineApplicationInstance",
    "Get-CsTeamsComplianceRecordingPolicy",
    "New-CsTeamsComplianceRecordingPolicy",
    "Set-CsTeamsComplianceRecordingPolicy",
    "Remove-CsTeamsComplianceRecordingPolicy",
    "Grant-CsTeamsComplianceRecordingPolicy",
    "Get-CsTeamsComplianceRecordingApplication",
    "New-CsTeamsComplianceRecordingApplication",
    "Set-CsTeamsComplianceRecordingApplication",
    "Remove-CsTeamsComplianceRecordingApplication",
    "New-CsTeamsComplianceRecordingPairedApplication",
    "Get-CsGroupPolicyAssignment",
    "New-CsGroupPolicyAssignment",
    "Remove-CsGroupPolicyAssignment",
    "Get-CsTeamsCallingPolicy",
    "New-CsTeamsCallingPolicy",
    "Set-CsTeamsCallingPolicy",
    "Grant-CsTeamsCallingPolicy",
)
POWERSHELL_VERSIONS = ("5.1", "7.4")
POWERSHELL_CMDLETS = (
    ("Microsoft.PowerShell.Core", "Get-Command"),
    ("Microsoft.PowerShell.Core", "Set-StrictMode"),
    ("Microsoft.PowerShell.Core", "ForEach-Object"),
    ("Microsoft.PowerShell.Core", "Where-Object"),
    ("Microsoft.PowerShell.Management", "Set-Content"),
    ("Microsoft.PowerShell.Utility", "ConvertTo-Json"),
    ("Microsoft.PowerShell.Utility", "Get-Date"),
    ("Microsoft.PowerShell.Utility", "Write-Host"),
    ("Microsoft.PowerShell.Utility", "Write-Warning"),
)

# A parameter name in a syntax block: after a blank or "[", so the hyphen of a cmdlet name never matches.
_SYNTAX_PARAMETER = re.compile(r"(?:(?<=\s)|(?<=\[))-([A-Za-z][A-Za-z0-9]*)\]?(?:\s*<([^>]+)>)?")
_NAME = re.compile(r"-?([A-Za-z][A-Za-z0-9]*)\s*(.*)")
# Sentences of a parameter's description that change what the yaml block says, or say it must not be used.
_NOTES = (
    re.compile(r"type has been changed to [A-Za-z0-9.]+", re.IGNORECASE),
    re.compile(r"reserved for internal Microsoft use", re.IGNORECASE),
    re.compile(r"has been removed", re.IGNORECASE),
)


@dataclass
class Parameter:
    name: str
    type: str = ""
    syntax_type: str = ""
    parameter_sets: str = ""
    syntax_sets: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


_ACCELERATORS = {
    "bool": "Boolean",
    "boolean": "Boolean",
    "guid": "Guid",
    "int": "Int32",
    "long": "Int64",
    "object": "Object",
    "pscredential": "PSCredential",
    "psobject": "PSObject",
    "scriptblock": "ScriptBlock",
    "string": "String",
    "switch": "SwitchParameter",
    "uint32": "UInt32",
    "uri": "Uri",
}


def normalise_type(text: str) -> str:
    """One spelling per type: the docs write `System.Int32`, `Int32` and `int`, `System.Guid` and `guid`."""
    text = text.strip()
    array = text.endswith("[]")
    name = text.removesuffix("[]").rsplit(".", 1)[-1]
    name = _ACCELERATORS.get(name.casefold(), name)
    return name + ("[]" if array else "")


def _sections(markdown: str, level: str) -> Iterator[tuple[str, str]]:
    """(heading, body) for each heading of exactly `level` ("## " or "### ")."""
    heading: str | None = None
    body: list[str] = []
    for line in markdown.splitlines():
        if line.startswith(level) and not line.startswith(level + "#"):
            if heading is not None:
                yield heading, "\n".join(body)
            heading, body = line[len(level) :].strip(), []
        elif heading is not None:
            body.append(line)
    if heading is not None:
        yield heading, "\n".join(body)


def _top(markdown: str, name: str) -> str:
    return next((body for heading, body in _sections(markdown, "## ") if heading.upper() == name), "")


def _code_blocks(text: str) -> Iterator[tuple[str, str]]:
    """(info string, content) of each fenced block."""
    for match in re.finditer(r"^```([^\n]*)\n(.*?)^```", text, re.MULTILINE | re.DOTALL):
        yield match.group(1).strip(), match.group(2)


def parse_cmdlet_page(markdown: str) -> tuple[dict[str, Parameter], bool]:
    """The parameters of one platyPS cmdlet page, and whether it supports the common parameters.

    The syntax blocks say which parameters exist and in which parameter sets (the headings of the blocks);
    the `## PARAMETERS` sections add the type of the yaml block, its parameter sets and notes. Pages have
    quirks that are kept, not corrected: a heading without its hyphen (`### CustomBanner`), a parameter
    described twice, a yaml type that differs from the syntax (both are recorded).
    """
    parameters: dict[str, Parameter] = {}
    common = False
    syntax = _top(markdown, "SYNTAX")
    named_sets = [(heading, body) for heading, body in _sections(syntax, "### ")] or [("", syntax)]
    for heading, section in named_sets:
        set_name = heading.removesuffix("(Default)").strip()
        for _info, block in _code_blocks(section):
            common = common or "<CommonParameters>" in block
            for match in _SYNTAX_PARAMETER.finditer(block):
                name, syntax_type = match.group(1), normalise_type(match.group(2) or "SwitchParameter")
                parameter = parameters.setdefault(name.casefold(), Parameter(name))
                if not parameter.syntax_type:
                    parameter.syntax_type = syntax_type
                if set_name and set_name not in parameter.syntax_sets:
                    parameter.syntax_sets.append(set_name)
    for heading, body in _sections(_top(markdown, "PARAMETERS"), "### "):
        named = _NAME.match(heading)
        if named is None or named.group(1) == "CommonParameters":
            continue
        name, suffix = named.group(1), named.group(2).strip()
        parameter = parameters.setdefault(name.casefold(), Parameter(name))
        yaml = next((content for info, content in _code_blocks(body) if info == "yaml"), "")
        if yaml and not parameter.type:
            for line in yaml.splitlines():
                key, _, value = line.partition(":")
                if key.strip() == "Type":
                    parameter.type = normalise_type(value)
                elif key.strip() == "Parameter Sets":
                    parameter.parameter_sets = value.strip()
        prose = re.sub(r"^> Applicable:.*$", "", re.sub(r"```.*?```", "", body, flags=re.DOTALL), flags=re.MULTILINE)
        for note in [suffix.strip("()")] if suffix else []:
            if note not in parameter.notes:
                parameter.notes.append(note)
        for sentence in re.split(r"(?<=[.!?])\s+", " ".join(prose.replace("*", "").split())):
            if any(pattern.search(sentence) for pattern in _NOTES) and sentence not in parameter.notes:
                parameter.notes.append(sentence)
    return parameters, common


def _common_parameters(markdown: str) -> list[str]:
    """The common parameters the page's `### CommonParameters` section names."""
    for heading, body in _sections(_top(markdown, "PARAMETERS"), "### "):
        if heading == "CommonParameters":
            return re.findall(r"(?<![\w-])-([A-Za-z]+)", body.split("For more information")[0])
    return []


def rows(cmdlet: str, markdown: str, source: str, commit: str) -> list[dict[str, str]]:
    parameters, common = parse_cmdlet_page(markdown)
    found = [
        {
            "cmdlet": cmdlet,
            "parameter": p.name,
            "type": p.type,
            "syntax_type": p.syntax_type,
            "parameter_sets": p.parameter_sets,
            "syntax_sets": ", ".join(p.syntax_sets),
            "note": " | ".join(p.notes),
            "source": source,
            "commit": commit,
        }
        for p in parameters.values()
    ]
    if common:
        known = {p.casefold() for p in parameters}
        found += [
            {
                "cmdlet": cmdlet,
                "parameter": name,
                "type": "CommonParameter",
                "syntax_type": "",
                "parameter_sets": "(All)",
                "syntax_sets": "",
                "note": "",
                "source": source,
                "commit": commit,
            }
            for name in _common_parameters(markdown)
            if name.casefold() not in known
        ]
    return found


class DocsRepository:
    """A git clone (bare or not), read at HEAD without a work tree."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.commit = self._git("rev-parse", "HEAD").strip()

    def _git(self, *args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(self.path), *args], check=True, capture_output=True, text=True, encoding="utf-8"
        ).stdout

    def read(self, path: str) -> str:
        try:
            return self._git("show", f"{self.commit}:{path}")
        except subprocess.CalledProcessError as error:
            raise SystemExit(f"{path} does not exist at {self.commit} in {self.path}") from error


def build(teams_docs: DocsRepository, powershell_docs: DocsRepository) -> list[dict[str, str]]:
    table: list[dict[str, str]] = []
    for cmdlet in TEAMS_CMDLETS:
        source = f"MicrosoftDocs/office-docs-powershell:{TEAMS_DIR}/{cmdlet}.md"
        table += rows(cmdlet, teams_docs.read(f"{TEAMS_DIR}/{cmdlet}.md"), source, teams_docs.commit)
    for version in POWERSHELL_VERSIONS:
        for module, cmdlet in POWERSHELL_CMDLETS:
            path = f"reference/{version}/{module}/{cmdlet}.md"
            source = f"MicrosoftDocs/PowerShell-Docs:{path}"
            table += rows(cmdlet, powershell_docs.read(path), source, powershell_docs.commit)
    return sorted(table, key=lambda r: (r["cmdlet"].casefold(), r["parameter"].casefold(), r["source"]))


def write(table: Iterable[dict[str, str]], path: Path) -> None:
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--teams-docs", type=Path, required=True, help="clone of MicrosoftDocs/office-docs-powershell")
    parser.add_argument("--powershell-docs", type=Path, required=True, help="clone of MicrosoftDocs/PowerShell-Docs")
    parser.add_argument("-o", "--output", type=Path, default=TABLE)
    args = parser.parse_args(argv)
    table = build(DocsRepository(args.teams_docs), DocsRepository(args.powershell_docs))
    write(table, args.output)
    print(f"{len(table)} rows written to {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
