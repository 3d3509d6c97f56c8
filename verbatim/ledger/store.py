"""Where the ledger lives: the `LedgerStore` port, its Cosmos DB adapter and an in-memory fake.

The Cosmos layout is one logical partition per chain (`/chain`): a `head` document (last seq and hash,
updated only with If-Match on its etag), one document per entry (`id` = `e` + zero-padded seq, so a
sequence number can be taken exactly once: a second create answers 409) and one per checkpoint.
"""

from __future__ import annotations

import contextlib
import copy
import threading
import uuid
from dataclasses import dataclass
from typing import Any, Protocol

from azure.core import MatchConditions
from azure.cosmos import ContainerProxy
from azure.cosmos.exceptions import CosmosHttpResponseError, CosmosResourceExistsError

from verbatim.contracts.evidence import GENESIS_HASH, LedgerCheckpoint, LedgerEntry


@dataclass(frozen=True)
class Head:
    """The chain's last committed entry as the head document says (may lag one entry behind a crash)."""

    seq: int
    hash: str
    etag: str
    frozen: bool = False  # migrated to the v2 log: no more appends here


class LedgerStore(Protocol):
    def read_head(self, chain: str) -> Head | None: ...

    def create_head(self, chain: str) -> None:
        """Create the genesis head (seq 0); a head that already exists is left alone."""

    def advance_head(self, chain: str, head: Head, entry: LedgerEntry) -> bool:
        """Move the head from `head` to `entry` if nobody moved it since `head` was read (else False)."""

    def create_entry(self, entry: LedgerEntry) -> bool:
        """Store `entry` unless its seq is taken (then False)."""

    def read_entry(self, chain: str, seq: int) -> LedgerEntry | None: ...

    def freeze(self, chain: str, head: Head) -> bool:
        """Mark the head frozen (If-Match): the chain is being migrated to the v2 log (False if it moved)."""

    def chains(self) -> list[str]:
        """Every chain that has a head."""

    def entries(self, chain: str, first: int, last: int) -> list[LedgerEntry]:
        """Stored entries with first <= seq <= last, in seq order (gaps are the caller's to notice)."""

    def find_by_idempotency_key(self, chain: str, key: str) -> LedgerEntry | None: ...

    def entries_for_subject(self, chain: str, subject: str) -> list[LedgerEntry]: ...

    def create_checkpoint(self, checkpoint: LedgerCheckpoint) -> bool:
        """Store a checkpoint unless one exists at its seq (then False)."""

    def first_checkpoint_at_or_after(self, chain: str, seq: int) -> LedgerCheckpoint | None: ...

    def checkpoints(self, chain: str) -> list[LedgerCheckpoint]: ...


def entry_id(seq: int) -> str:
    return f"e{seq:012d}"


def checkpoint_id(seq: int) -> str:
    return f"c{seq:012d}"


HEAD_ID = "head"


class CosmosLedgerStore:
    """The ledger in the Cosmos `ledger` container. Every query filters on the partition key path, which
    both Cosmos DB and the local emulator serve as a single-partition query."""

    def __init__(self, container: ContainerProxy) -> None:
        self._container = container

    def read_head(self, chain: str) -> Head | None:
        # A query rather than read_item: the emulator answers 500 (not 404) for a missing item.
        docs = self._query("SELECT * FROM c WHERE c.chain = @chain AND c.id = @id", chain, id=HEAD_ID)
        if not docs:
            return None
        doc = docs[0]
        return Head(seq=int(doc["seq"]), hash=str(doc["hash"]), etag=str(doc["_etag"]), frozen=bool(doc.get("frozen")))

    def freeze(self, chain: str, head: Head) -> bool:
        body = {"id": HEAD_ID, "chain": chain, "type": "head", "seq": head.seq, "hash": head.hash, "frozen": True}
        try:
            self._container.replace_item(HEAD_ID, body, etag=head.etag, match_condition=MatchConditions.IfNotModified)
        except CosmosHttpResponseError as error:
            if error.status_code == 412:
                return False
            raise
        return True

    def chains(self) -> list[str]:
        docs = self._container.query_items(
            "SELECT c.chain FROM c WHERE c.id = @id",
            parameters=[{"name": "@id", "value": HEAD_ID}],
            enable_cross_partition_query=True,
        )
        return sorted({str(doc["chain"]) for doc in docs})

    def create_head(self, chain: str) -> None:
        with contextlib.suppress(CosmosResourceExistsError):
            self._container.create_item({"id": HEAD_ID, "chain": chain, "type": "head", "seq": 0, "hash": GENESIS_HASH})

    def advance_head(self, chain: str, head: Head, entry: LedgerEntry) -> bool:
        body = {"id": HEAD_ID, "chain": chain, "type": "head", "seq": entry.seq, "hash": entry.hash}
        try:
            self._container.replace_item(HEAD_ID, body, etag=head.etag, match_condition=MatchConditions.IfNotModified)
        except CosmosHttpResponseError as error:
            if error.status_code == 412:
                return False
            raise
        return True

    def create_entry(self, entry: LedgerEntry) -> bool:
        doc = {"id": entry_id(entry.seq), "type": "entry", **entry.model_dump(mode="json")}
        try:
            self._container.create_item(doc)
        except CosmosResourceExistsError:
            return False
        return True

    def read_entry(self, chain: str, seq: int) -> LedgerEntry | None:
        docs = self._query("SELECT * FROM c WHERE c.chain = @chain AND c.id = @id", chain, id=entry_id(seq))
        return LedgerEntry.model_validate(docs[0]) if docs else None

    def entries(self, chain: str, first: int, last: int) -> list[LedgerEntry]:
        docs = self._query(
            "SELECT * FROM c WHERE c.chain = @chain AND c.type = 'entry' AND c.seq >= @first AND c.seq <= @last "
            "ORDER BY c.seq",
            chain,
            first=first,
            last=last,
        )
        return [LedgerEntry.model_validate(doc) for doc in docs]

    def find_by_idempotency_key(self, chain: str, key: str) -> LedgerEntry | None:
        docs = self._query(
            "SELECT * FROM c WHERE c.chain = @chain AND c.type = 'entry' AND c.idempotency_key = @key",
            chain,
            key=key,
        )
        return LedgerEntry.model_validate(docs[0]) if docs else None

    def entries_for_subject(self, chain: str, subject: str) -> list[LedgerEntry]:
        docs = self._query(
            "SELECT * FROM c WHERE c.chain = @chain AND c.type = 'entry' AND c.subject = @subject ORDER BY c.seq",
            chain,
            subject=subject,
        )
        return [LedgerEntry.model_validate(doc) for doc in docs]

    def create_checkpoint(self, checkpoint: LedgerCheckpoint) -> bool:
        doc = {"id": checkpoint_id(checkpoint.seq), "type": "checkpoint", **checkpoint.model_dump(mode="json")}
        try:
            self._container.create_item(doc)
        except CosmosResourceExistsError:
            return False
        return True

    def first_checkpoint_at_or_after(self, chain: str, seq: int) -> LedgerCheckpoint | None:
        docs = self._query(
            "SELECT TOP 1 * FROM c WHERE c.chain = @chain AND c.type = 'checkpoint' AND c.seq >= @seq ORDER BY c.seq",
            chain,
            seq=seq,
        )
        return LedgerCheckpoint.model_validate(docs[0]) if docs else None

    def checkpoints(self, chain: str) -> list[LedgerCheckpoint]:
        docs = self._query("SELECT * FROM c WHERE c.chain = @chain AND c.type = 'checkpoint' ORDER BY c.seq", chain)
        return [LedgerCheckpoint.model_validate(doc) for doc in docs]

    def _query(self, sql: str, chain: str, **parameters: object) -> list[dict[str, Any]]:
        params: list[dict[str, object]] = [{"name": "@chain", "value": chain}]
        params.extend({"name": f"@{name}", "value": value} for name, value in parameters.items())
        return list(self._container.query_items(sql, parameters=params, partition_key=chain))


class InMemoryLedgerStore:
    """The same semantics in a dict, with etags: a fake for service-level tests of other areas."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.docs: dict[tuple[str, str], dict[str, Any]] = {}

    def read_head(self, chain: str) -> Head | None:
        with self._lock:
            doc = self.docs.get((chain, HEAD_ID))
            if not doc:
                return None
            return Head(seq=doc["seq"], hash=doc["hash"], etag=doc["_etag"], frozen=bool(doc.get("frozen")))

    def freeze(self, chain: str, head: Head) -> bool:
        with self._lock:
            doc = self.docs.get((chain, HEAD_ID))
            if doc is None or doc["_etag"] != head.etag:
                return False
            self.docs[(chain, HEAD_ID)] = {**doc, "frozen": True, "_etag": uuid.uuid4().hex}
            return True

    def chains(self) -> list[str]:
        with self._lock:
            return sorted(c for (c, i) in self.docs if i == HEAD_ID)

    def create_head(self, chain: str) -> None:
        with self._lock:
            self.docs.setdefault((chain, HEAD_ID), {"seq": 0, "hash": GENESIS_HASH, "_etag": uuid.uuid4().hex})

    def advance_head(self, chain: str, head: Head, entry: LedgerEntry) -> bool:
        with self._lock:
            if self.docs[(chain, HEAD_ID)]["_etag"] != head.etag:
                return False
            self.docs[(chain, HEAD_ID)] = {"seq": entry.seq, "hash": entry.hash, "_etag": uuid.uuid4().hex}
            return True

    def create_entry(self, entry: LedgerEntry) -> bool:
        return self._create((entry.chain, entry_id(entry.seq)), entry.model_dump(mode="json"))

    def read_entry(self, chain: str, seq: int) -> LedgerEntry | None:
        doc = self.docs.get((chain, entry_id(seq)))
        return LedgerEntry.model_validate(doc) if doc else None

    def entries(self, chain: str, first: int, last: int) -> list[LedgerEntry]:
        return [e for e in self._all_entries(chain) if first <= e.seq <= last]

    def find_by_idempotency_key(self, chain: str, key: str) -> LedgerEntry | None:
        return next((e for e in self._all_entries(chain) if e.idempotency_key == key), None)

    def entries_for_subject(self, chain: str, subject: str) -> list[LedgerEntry]:
        return [e for e in self._all_entries(chain) if e.subject == subject]

    def create_checkpoint(self, checkpoint: LedgerCheckpoint) -> bool:
        return self._create((checkpoint.chain, checkpoint_id(checkpoint.seq)), checkpoint.model_dump(mode="json"))

    def first_checkpoint_at_or_after(self, chain: str, seq: int) -> LedgerCheckpoint | None:
        return next((c for c in self.checkpoints(chain) if c.seq >= seq), None)

    def checkpoints(self, chain: str) -> list[LedgerCheckpoint]:
        with self._lock:
            docs = [copy.deepcopy(d) for (c, i), d in self.docs.items() if c == chain and i.startswith("c")]
        return sorted((LedgerCheckpoint.model_validate(d) for d in docs), key=lambda c: c.seq)

    def _create(self, key: tuple[str, str], doc: dict[str, Any]) -> bool:
        with self._lock:
            if key in self.docs:
                return False
            self.docs[key] = doc
            return True

    def _all_entries(self, chain: str) -> list[LedgerEntry]:
        with self._lock:
            docs = [copy.deepcopy(d) for (c, i), d in self.docs.items() if c == chain and i.startswith("e")]
        return sorted((LedgerEntry.model_validate(d) for d in docs), key=lambda e: e.seq)
