"""Orchestration versioning, as the Durable Functions extension does it (public preview).

Each instance keeps, for good, the version it was started with: the client's explicit one, else host.json's
`extensions.durableTask.defaultVersion`. Before a worker runs an episode it compares the instance's version with
its own `defaultVersion` (`versionMatchStrategy`: `None` ignores versions, `Strict` wants the same, `CurrentOrOlder`,
the default, wants the same or older) and, when they do not match, `versionFailureStrategy` decides: `Reject`, the
default, leaves the instance as it is for a worker that can run it; `Fail` fails it.

Comparison rules (MicrosoftDocs azure-docs, articles/azure-functions/durable/durable-functions-orchestration-
versioning.md, "Version comparison rules"): empty and null versions are equal and older than any defined version;
two versions that both parse as .NET's `System.Version` (two to four dot-separated non-negative integers) compare
component by component, an absent component being older than any present one (`1.0` < `1.0.0`); anything else
compares as case-insensitive strings.
"""

from __future__ import annotations

import re
from typing import Literal

MatchStrategy = Literal["None", "Strict", "CurrentOrOlder"]
FailureStrategy = Literal["Reject", "Fail"]
MATCH_STRATEGIES: tuple[MatchStrategy, ...] = ("None", "Strict", "CurrentOrOlder")
FAILURE_STRATEGIES: tuple[FailureStrategy, ...] = ("Reject", "Fail")

_SYSTEM_VERSION = re.compile(r"^\s*\d+(\s*\.\s*\d+){1,3}\s*$")
_INT32_MAX = 2**31 - 1


def _system_version(version: str) -> tuple[int, ...] | None:
    """`System.Version.TryParse`: 2-4 components, each 0..Int32.MaxValue; absent build/revision are -1."""
    if not _SYSTEM_VERSION.match(version):
        return None
    parts = [int(part) for part in version.split(".")]
    if any(part > _INT32_MAX for part in parts):
        return None
    return tuple(parts + [-1] * (4 - len(parts)))


def compare(left: str | None, right: str | None) -> int:
    """-1, 0 or 1 as `left` is older than, the same as or newer than `right`."""
    if not left or not right:
        return (1 if left else 0) - (1 if right else 0)
    parsed_left, parsed_right = _system_version(left), _system_version(right)
    if parsed_left is not None and parsed_right is not None:
        return (parsed_left > parsed_right) - (parsed_left < parsed_right)
    folded_left, folded_right = left.casefold(), right.casefold()
    return (folded_left > folded_right) - (folded_left < folded_right)


def matches(instance_version: str | None, worker_version: str | None, strategy: MatchStrategy) -> bool:
    """Whether a worker whose defaultVersion is `worker_version` may run an episode of the instance."""
    if strategy == "None":
        return True
    order = compare(instance_version, worker_version)
    return order == 0 if strategy == "Strict" else order <= 0
