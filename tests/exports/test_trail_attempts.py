"""An `exported` entry must attest exactly the trail the package carries, also when attesting is done again.

A batch of attesting that dies after appending an item's `exported` entry is done again whole (its snapshot file
is written once the batch is done). The append is idempotent by key, so the retry gets back the entry the first
run wrote — which attests the trail *that* run saw. If an entry about the recording was sequenced just before it
(missing from its list: the race `append_exported` re-attests for), the retry must not take the entry as complete
because the trail it now reads is complete below it: it must attest again.
"""

from __future__ import annotations

from tests.ledger.logkit import memory_log
from verbatim.contracts.exports import ExportOptions, ExportProgress, ExportRecord, Requester
from verbatim.exports.recording import append_exported
from verbatim.exports.trail import EXPORTED, attest, exported_details

SUBJECT = "recording:rec-1"


def _export() -> ExportRecord:
    return ExportRecord(
        id="exp-1",
        status="running",
        requested_by=Requester(subject="officer-1", name="Olive Officer"),
        reason="FCA request 117",
        selection={"recordingIds": ["rec-1"]},
        options=ExportOptions(),
        created_at="2026-12-07T08:00:00Z",
        expires_at="2027-01-06T08:00:00Z",
        progress=ExportProgress(stage="attesting", export_id="exp-1"),
    )


def test_a_retried_attestation_attests_again_when_the_first_runs_entry_missed_an_entry() -> None:
    log = memory_log()
    export = _export()
    sealed = log.append("sealed", SUBJECT, {"what": "seal"})
    read = log.append("accessed", SUBJECT, {"why": "listened"})  # landed before the first run's entry ...
    stale = attest([sealed])  # ... which the first run did not see: it attested the seal alone
    first_run = log.append(
        EXPORTED,
        SUBJECT,
        exported_details(export.id, export.title, export.reason, stale, 1),
        actor=export.requested_by.subject,
        idempotency_key=f"exported:{export.id}:rec-1:1",
    )
    # ... and the batch died there. The retry:
    trail, entries = append_exported(log, SUBJECT, export, "rec-1")

    assert [e.index for e in trail] == [sealed.index, read.index]
    assert entries[0].index == first_run.index
    last = entries[-1]
    assert last.index > first_run.index, "the first run's entry misses an entry: a new attempt is needed"
    assert last.details["trail"]["sha256"] == attest(trail).sha256  # type: ignore[index,call-overload]
    assert last.details["attempt"] == 2


def test_a_retried_attestation_keeps_the_first_runs_entry_when_it_was_complete() -> None:
    log = memory_log()
    export = _export()
    sealed = log.append("sealed", SUBJECT, {"what": "seal"})
    trail, entries = append_exported(log, SUBJECT, export, "rec-1")
    again, entries_again = append_exported(log, SUBJECT, export, "rec-1")

    assert [e.index for e in trail] == [e.index for e in again] == [sealed.index]
    assert [e.index for e in entries] == [e.index for e in entries_again]
    assert len(entries_again) == 1
