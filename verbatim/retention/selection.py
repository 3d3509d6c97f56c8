"""Which retention class a recording gets at seal time, and until when it is kept.

The candidates are the class of the observed user's effective recording policy at call time (the policy
snapshot store), and the class mapped to the group through which that policy is assigned
(RETENTION_GROUP_CLASSES). When several apply — two candidates, or a call inside a policy change window —
the longest wins: a recording is kept for the longest obligation that may apply to it. With no candidate the
default class applies. A class name no class exists for is ignored (and logged), never guessed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from verbatim.contracts.evidence import RecordingFacts, RetentionTerm
from verbatim.contracts.policy import EffectivePolicy
from verbatim.contracts.retention import RetentionClass
from verbatim.policy.snapshots import PolicySnapshotStore
from verbatim.retention.common import utc

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetentionDecision:
    retention_class: RetentionClass
    rule: str  # in words: what chose the class
    until: datetime

    def term(self) -> RetentionTerm:
        return RetentionTerm(
            retention_class=self.retention_class.name, until=self.until, basis=self.retention_class.legal_basis
        )


def retention_until(facts_start: datetime | None, sealed_at: datetime, days: int) -> datetime:
    """Retention runs from the start of the call (the seal time when the start is unknown)."""
    return utc(facts_start or sealed_at) + timedelta(days=days)


class ClassRetention:
    """The lifecycle's `RetentionPolicy` port, backed by the retention classes in force."""

    def __init__(
        self,
        classes: Callable[[], Mapping[str, RetentionClass]],
        default_class: str,
        *,
        snapshots: PolicySnapshotStore | None = None,
        group_classes: Mapping[str, str] | None = None,
    ) -> None:
        self._classes = classes
        self._default = default_class
        self._snapshots = snapshots
        self._groups = dict(group_classes or {})

    def decide(self, facts: RecordingFacts, sealed_at: datetime) -> RetentionDecision:
        classes = self._classes()
        candidates: list[tuple[RetentionClass, str]] = []
        for policy, when in self._policies(facts, sealed_at):
            if policy.retention_class:
                self._add(candidates, classes, policy.retention_class, f"policy {policy.policy_name!r}{when}")
            if policy.group_id and policy.group_id in self._groups:
                self._add(candidates, classes, self._groups[policy.group_id], f"group {policy.group_id}{when}")
        if candidates:
            chosen, rule = max(candidates, key=lambda c: c[0].days)
        else:
            default = classes.get(self._default)
            if default is None:
                raise LookupError(f"the default retention class {self._default!r} is not defined")
            chosen, rule = default, "default class"
        return RetentionDecision(chosen, rule, retention_until(facts.started_at, sealed_at, chosen.days))

    def term_for(self, facts: RecordingFacts, sealed_at: datetime) -> RetentionTerm:
        return self.decide(facts, sealed_at).term()

    def _policies(self, facts: RecordingFacts, sealed_at: datetime) -> list[tuple[EffectivePolicy, str]]:
        user = facts.observed_user
        if self._snapshots is None or user is None or not user.id:
            return []
        answer = self._snapshots.effective_at(user.id, facts.started_at or sealed_at)
        found = []
        if answer.snapshot is not None:
            found.append((answer.snapshot.effective, ""))
        if answer.pending is not None:
            found.append((answer.pending.effective, " (policy change window)"))
        return found

    @staticmethod
    def _add(
        candidates: list[tuple[RetentionClass, str]], classes: Mapping[str, RetentionClass], name: str, rule: str
    ) -> None:
        value = classes.get(name)
        if value is None:
            log.warning("retention class %r of %s is not defined; ignored", name, rule)
            return
        candidates.append((value, rule))
