"""Checking generated commands against the committed table of documented cmdlets and parameters.

The table (`tests/policy/data/cmdlet-table.csv`) is built by `devstack/cmdlet_table.py` from Microsoft's
cmdlet reference. A command passes when its cmdlet has a page, every named parameter is on that page (in
every source: built-in cmdlets are checked in Windows PowerShell 5.1 and PowerShell 7.4), no parameter is
one Microsoft reserves or removed, the parameters share a parameter set, and every literal value fits the
documented type — where the page says the type changed ("-ResultSize type has been changed to uint32"),
the changed type.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from devstack.cmdlet_table import TABLE, normalise_type
from tests.policy.ps_tree import Argument, Command, ParameterName

GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_CHANGED_TYPE = re.compile(r"type has been changed to ([A-Za-z0-9]+(?:\.[A-Za-z0-9]+)*)", re.IGNORECASE)
_FORBIDDEN_NOTES = ("reserved for internal Microsoft use", "has been removed", "removed from version")
_INTEGERS = {"Int32": (-(2**31), 2**31 - 1), "UInt32": (0, 2**32 - 1), "Int64": (-(2**63), 2**63 - 1)}


@dataclass(frozen=True)
class DocumentedParameter:
    cmdlet: str
    name: str
    types: tuple[str, ...]  # every type the page gives (yaml block, syntax), or the changed type
    parameter_sets: frozenset[str] | None  # None: all sets
    note: str
    source: str
    commit: str

    @property
    def switch(self) -> bool:
        return "SwitchParameter" in self.types


def _parameter(row: dict[str, str]) -> DocumentedParameter:
    changed = _CHANGED_TYPE.search(row["note"])
    if changed:
        types: tuple[str, ...] = (normalise_type(changed.group(1)),)
    else:
        types = tuple(dict.fromkeys(t for t in (row["type"], row["syntax_type"]) if t))
    # The sets of the syntax blocks when the page has several, else those of the yaml block.
    sets = row["syntax_sets"].strip() or row["parameter_sets"].strip()
    names = frozenset(s.strip().strip("()") for s in sets.split(",")) if sets else frozenset()
    return DocumentedParameter(
        cmdlet=row["cmdlet"],
        name=row["parameter"],
        types=types,
        parameter_sets=None if not names or "All" in names else names,
        note=row["note"],
        source=row["source"],
        commit=row["commit"],
    )


class CmdletTable:
    def __init__(self, rows: list[dict[str, str]]) -> None:
        self.rows = rows
        # cmdlet -> source page -> parameter -> documented parameter (names case-folded, as PowerShell binds)
        self.pages: dict[str, dict[str, dict[str, DocumentedParameter]]] = {}
        for row in rows:
            parameter = _parameter(row)
            page = self.pages.setdefault(row["cmdlet"].casefold(), {}).setdefault(row["source"], {})
            page[parameter.name.casefold()] = parameter

    def has(self, cmdlet: str) -> bool:
        return cmdlet.casefold() in self.pages

    def problems(self, command: Command) -> list[str]:
        """What in `command` the docs do not support; empty when all of it is documented."""
        where = f"line {command.line}: {command.name}"
        pages = self.pages.get(command.name.casefold())
        if pages is None:
            return [f"{where}: no documented cmdlet of that name in the table"]
        found: list[str] = []
        for source, page in sorted(pages.items()):
            found += [f"{where} ({source}): {p}" for p in _page_problems(command, page)]
        return found


def _page_problems(command: Command, page: dict[str, DocumentedParameter]) -> list[str]:
    found: list[str] = []
    used: list[DocumentedParameter] = []
    elements = list(command.elements)
    for index, element in enumerate(elements):
        if not isinstance(element, ParameterName):
            continue
        documented = page.get(element.name.casefold())
        if documented is None:
            found.append(f"-{element.name} is not a documented parameter")
            continue
        used.append(documented)
        if any(note.casefold() in documented.note.casefold() for note in _FORBIDDEN_NOTES):
            found.append(f"-{element.name}: {documented.note}")
        following = elements[index + 1] if index + 1 < len(elements) else None
        value = following if isinstance(following, Argument) else None
        if documented.switch and not element.colon:
            continue  # a switch takes no value; anything after it is positional
        if value is None:
            found.append(f"-{element.name} has no value")
            continue
        for documented_type in documented.types:
            if "CommonParameter" not in documented.types and not accepts(documented_type, value):
                found.append(f"-{element.name} {value.text}: not a {documented_type} value")
    sets = [p.parameter_sets for p in used if p.parameter_sets is not None]
    if sets and not frozenset.intersection(*sets):
        names = ", ".join(f"-{p.name}" for p in used if p.parameter_sets is not None)
        found.append(f"{names} are in no common parameter set")
    return found


def accepts(documented_type: str, value: Argument) -> bool:
    """Whether a literal can bind to a parameter of `documented_type`; values computed when the script runs
    (variables, expressions, expandable strings) cannot be judged here and pass."""
    kind = value.kind
    if kind in ("variable", "expression") or (kind == "string" and value.value is None):
        return True
    if documented_type == "SwitchParameter":
        return kind == "bool" and value.colon
    if documented_type == "Boolean":
        return kind == "bool"
    if documented_type == "Guid":
        return kind == "string" and isinstance(value.value, str) and GUID.match(value.value) is not None
    if documented_type in _INTEGERS:
        low, high = _INTEGERS[documented_type]
        return kind == "int" and isinstance(value.value, int) and low <= value.value <= high
    if documented_type.endswith("[]"):
        return kind in ("array", "null") or accepts(documented_type[:-2], value)
    if documented_type == "Unlimited":
        return kind == "int" or (isinstance(value.value, str) and value.value.casefold() == "unlimited")
    if documented_type == "String":
        return kind in ("string", "int", "null", "bareword")
    if documented_type in ("Object", "PSObject"):
        return True
    # Identities and enumerations (XdsIdentity, UserIdParameter, Fqdn, ActionPreference, ...) take text.
    return kind in ("string", "bareword")


@lru_cache(maxsize=1)
def table(path: Path = TABLE) -> CmdletTable:
    with path.open(encoding="utf-8", newline="") as source:
        return CmdletTable(list(csv.DictReader(source)))
