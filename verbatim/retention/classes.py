"""Retention classes: configured in settings, stored in Cosmos `control`, and only ever lengthened.

The stored class is what is in force. Settings can add a class or lengthen one (the change is written to the
ledger); a shorter duration in settings is refused — the stored, longer one stays and the refusal is
reported — because shortening a retention period would allow evidence to be deleted earlier than a rule the
firm already committed to.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from azure.core import MatchConditions
from azure.cosmos import ContainerProxy
from azure.cosmos.exceptions import CosmosHttpResponseError, CosmosResourceExistsError

from verbatim.contracts.evidence import EntryKind
from verbatim.contracts.retention import RetentionClass, RetentionClassConfig
from verbatim.ledger.writer import LedgerWriter
from verbatim.platform.errors import DependencyUnavailable, NotFound, RetentionViolation
from verbatim.platform.settings import Settings
from verbatim.retention.common import Clock, class_subject, instant, utc_now

log = logging.getLogger(__name__)

DOC_PREFIX = "retention-class:"
DOC_TYPE = "retentionClass"
CLASS_DEFINED = "retention.class_defined"


def configured_classes(settings: Settings) -> list[RetentionClassConfig]:
    """RETENTION_CLASSES, plus the default class (SEAL_DEFAULT_RETENTION_CLASS/_DAYS) when it is not listed."""
    classes = {c.name: c for c in settings.retention_classes}
    default = settings.seal_default_retention_class
    if default not in classes:
        classes[default] = RetentionClassConfig(
            name=default, days=settings.seal_default_retention_days, legal_basis=settings.retention_default_legal_basis
        )
    return [classes[name] for name in sorted(classes)]


@dataclass(frozen=True)
class Stored:
    value: RetentionClass
    etag: str


class RetentionClassStore(Protocol):
    def all(self) -> list[Stored]: ...

    def get(self, name: str) -> Stored | None: ...

    def create(self, value: RetentionClass) -> bool:
        """False when a class of that name exists."""

    def replace(self, value: RetentionClass, etag: str) -> bool:
        """False when the stored class changed since `etag` was read."""


class CosmosRetentionClassStore:
    """One document per class in Cosmos `control` (partition /id)."""

    def __init__(self, container: ContainerProxy) -> None:
        self._container = container

    @staticmethod
    def _stored(doc: dict[str, Any]) -> Stored:
        return Stored(RetentionClass.model_validate(doc), str(doc["_etag"]))

    def all(self) -> list[Stored]:
        docs = self._container.query_items(
            "SELECT * FROM c WHERE c.docType = @type",
            parameters=[{"name": "@type", "value": DOC_TYPE}],
            enable_cross_partition_query=True,
        )
        return sorted((self._stored(d) for d in docs), key=lambda s: s.value.name)

    def get(self, name: str) -> Stored | None:
        key = DOC_PREFIX + name
        docs = list(
            self._container.query_items(
                "SELECT * FROM c WHERE c.id = @id",
                parameters=[{"name": "@id", "value": key}],
                partition_key=key,
            )
        )
        return self._stored(docs[0]) if docs else None

    @staticmethod
    def _body(value: RetentionClass) -> dict[str, Any]:
        return {
            "id": DOC_PREFIX + value.name,
            "docType": DOC_TYPE,
            **value.model_dump(mode="json", by_alias=True),
        }

    def create(self, value: RetentionClass) -> bool:
        try:
            self._container.create_item(self._body(value))
        except CosmosResourceExistsError:
            return False
        return True

    def replace(self, value: RetentionClass, etag: str) -> bool:
        try:
            self._container.replace_item(
                DOC_PREFIX + value.name, self._body(value), etag=etag, match_condition=MatchConditions.IfNotModified
            )
        except CosmosHttpResponseError as error:
            if error.status_code == 412:
                return False
            raise
        return True


class InMemoryRetentionClassStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._docs: dict[str, Stored] = {}
        self._version = 0

    def _stored(self, value: RetentionClass) -> Stored:
        self._version += 1
        return Stored(value.model_copy(deep=True), str(self._version))

    def all(self) -> list[Stored]:
        with self._lock:
            return [self._docs[name] for name in sorted(self._docs)]

    def get(self, name: str) -> Stored | None:
        with self._lock:
            return self._docs.get(name)

    def create(self, value: RetentionClass) -> bool:
        with self._lock:
            if value.name in self._docs:
                return False
            self._docs[value.name] = self._stored(value)
            return True

    def replace(self, value: RetentionClass, etag: str) -> bool:
        with self._lock:
            current = self._docs.get(value.name)
            if current is None or current.etag != etag:
                return False
            self._docs[value.name] = self._stored(value)
            return True


@dataclass(frozen=True)
class SyncOutcome:
    created: list[str]
    extended: list[str]
    # Classes whose configured duration is shorter than the one in force: refused, the longer one stays.
    refused: dict[str, str]


class RetentionCatalog:
    """The retention classes in force, and the only way to change them (extend-only, in the ledger)."""

    def __init__(self, store: RetentionClassStore, ledger: LedgerWriter, clock: Clock = utc_now) -> None:
        self._store = store
        self._ledger = ledger
        self._clock = clock

    def all(self) -> list[RetentionClass]:
        return [s.value for s in self._store.all()]

    def by_name(self) -> dict[str, RetentionClass]:
        return {c.name: c for c in self.all()}

    def get(self, name: str) -> RetentionClass:
        stored = self._store.get(name)
        if stored is None:
            raise NotFound(f"no retention class named {name!r}", retention_class=name)
        return stored.value

    def find(self, name: str) -> RetentionClass | None:
        stored = self._store.get(name)
        return stored.value if stored else None

    def sync(self, configured: Sequence[RetentionClassConfig]) -> SyncOutcome:
        """Bring the stored classes up to the configured ones: create new classes, lengthen shorter ones; never
        shorten. Idempotent; safe to run from every process at start and from the sweep."""
        created, extended, refused = [], [], {}
        for config in configured:
            current = self._store.get(config.name)
            if current is None:
                now = self._clock()
                value = RetentionClass(
                    name=config.name,
                    days=config.days,
                    legal_basis=config.legal_basis,
                    defined_at=now,
                    applied_days=config.days,
                )
                if self._store.create(value):
                    self._ledger.append(
                        CLASS_DEFINED,
                        class_subject(config.name),
                        {"days": config.days, "legal_basis": config.legal_basis, "source": "settings"},
                        actor="settings",
                        idempotency_key=f"{CLASS_DEFINED}:{config.name}",
                    )
                    created.append(config.name)
                continue
            if config.days < current.value.days:
                refused[config.name] = (
                    f"configured {config.days} days is shorter than the {current.value.days} days in force; "
                    "retention is extend-only, the longer period stays"
                )
                log.warning("retention class %s: %s", config.name, refused[config.name])
            elif config.days > current.value.days or config.legal_basis != current.value.legal_basis:
                self.extend(config.name, config.days, actor="settings", reason="RETENTION_CLASSES", basis=config)
                extended.append(config.name)
        return SyncOutcome(created, extended, refused)

    def extend(
        self,
        name: str,
        days: int,
        *,
        actor: str,
        reason: str,
        basis: RetentionClassConfig | None = None,
    ) -> tuple[RetentionClass, RetentionClass, int | None]:
        """Lengthen a class to `days` (the same value is a no-op); returns (before, after, ledger seq). Shorter is
        refused with `RetentionViolation`. Recordings already sealed follow at once in the app's guard; their blob
        immutability is extended by `RetentionExtender.apply_class`."""
        for _ in range(20):
            stored = self._store.get(name)
            if stored is None:
                raise NotFound(f"no retention class named {name!r}", retention_class=name)
            before = stored.value
            if days < before.days:
                raise RetentionViolation(
                    f"retention class {name!r} keeps recordings for {before.days} days; {days} days would shorten "
                    "it, and retention can only be extended",
                    retention_class=name,
                    days_in_force=before.days,
                    days_requested=days,
                )
            legal_basis = basis.legal_basis if basis is not None else before.legal_basis
            if days == before.days and legal_basis == before.legal_basis:
                return before, before, None
            now = self._clock()
            extended_at = now if days > before.days else before.extended_at
            after = before.model_copy(update={"days": days, "legal_basis": legal_basis, "extended_at": extended_at})
            if not self._store.replace(after, stored.etag):
                continue
            entry = self._ledger.append(
                EntryKind.RETENTION_EXTENDED,
                class_subject(name),
                {
                    "previous_days": before.days,
                    "days": days,
                    "legal_basis": legal_basis,
                    "reason": reason,
                    "at": instant(now),
                },
                actor=actor,
            )
            return before, after, entry.seq
        raise DependencyUnavailable(f"retention class {name!r}: too many concurrent changes")

    def mark_applied(self, name: str, days: int) -> None:
        """Record that every recording of the class has had its immutability extended to `days`."""
        for _ in range(20):
            stored = self._store.get(name)
            if stored is None or stored.value.applied_days >= days:
                return
            if self._store.replace(stored.value.model_copy(update={"applied_days": days}), stored.etag):
                return
        raise DependencyUnavailable(f"retention class {name!r}: too many concurrent changes")
