"""Call records, recording records and policy snapshots as the other areas store them, for reconciliation
and API tests (pure data; no I/O)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from verbatim.contracts.callrecords import CallRecord, EndpointSummary, FailureInfo, Party, SessionSummary
from verbatim.contracts.evidence import RecordingFacts
from verbatim.contracts.lifecycle import RecordingRecord, RecordingStatus, SealIndex
from verbatim.contracts.policy import EffectivePolicy, PolicySnapshot
from verbatim.contracts.recorder import CallDirection, CallParticipant, Identity, ObservedUser
from verbatim.contracts.recorder import CallType as RecorderCallType
from verbatim.platform.times import format_datetime
from verbatim.policy.snapshots import snapshot_id

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
TENANT = "tenant-1"
TRADER, CLIENT, SALES = "u-trader", "u-client", "u-sales"
UPNS = {TRADER: "trader@contoso.com", CLIENT: "client@fabrikam.com", SALES: "sales@contoso.com"}


def iso(moment: datetime) -> str:
    return format_datetime(moment)


def party(user: str, joined: datetime | None = None, left: datetime | None = None, *, tenant: str = TENANT) -> Party:
    return Party(
        kind="user",
        id=user,
        display_name=user.removeprefix("u-").title(),
        tenant_id=tenant,
        user_principal_name=UPNS.get(user),
        joined_at=iso(joined) if joined else None,
        left_at=iso(left) if left else None,
    )


def phone(number: str) -> Party:
    return Party(kind="phone", id=number)


def endpoint(p: Party) -> EndpointSummary:
    return EndpointSummary(kind="participant", identity=p)


def call(
    call_id: str,
    parties: Sequence[Party],
    *,
    start: datetime = T0,
    seconds: float = 60.0,
    version: int = 1,
    call_type: str = "peerToPeer",
    setup_failure: str | None = None,
    modalities: Sequence[str] = ("audio",),
) -> CallRecord:
    end = start + timedelta(seconds=seconds)
    users = [p for p in parties]
    failure = FailureInfo(stage="callSetup", reason=setup_failure) if setup_failure else None
    if call_type == "peerToPeer":
        sessions = [
            SessionSummary(
                id="s1",
                start_date_time=iso(start),
                end_date_time=iso(end),
                modalities=list(modalities),
                caller=endpoint(users[0]),
                callee=endpoint(users[1]) if len(users) > 1 else None,
                failure_info=failure,
            )
        ]
    else:
        sessions = [
            SessionSummary(
                id=f"s{index}",
                start_date_time=p.joined_at or iso(start),
                end_date_time=p.left_at or iso(end),
                modalities=list(modalities),
                caller=endpoint(p),
                failure_info=failure,
            )
            for index, p in enumerate(users)
        ]
    return CallRecord(
        id=call_id,
        tenant_id=TENANT,
        version=version,
        type=call_type,
        modalities=list(modalities),
        start_date_time=iso(start),
        end_date_time=iso(end),
        organizer=users[0],
        participants=list(users),
        participant_keys=[p.key for p in users],
        sessions=sessions,
    )


def snapshot(
    user: str,
    *,
    records: bool = True,
    strict: bool = True,
    since: datetime = T0 - timedelta(days=30),
    capture: Sequence[str] = ("audio",),
) -> PolicySnapshot:
    return PolicySnapshot(
        id=snapshot_id(user, since),
        user_id=user,
        valid_from=since,
        effective=EffectivePolicy(
            user_id=user,
            user_principal_name=UPNS.get(user),
            policy_name="Traders" if records else None,
            source="group" if records else "none",
            records=records,
            strict=strict,
            recorder_instance_ids=["app-instance-1"] if records else [],
            capture=list(capture),
        ),
    )


def recording(
    recording_id: str,
    chain: str | None,
    user: str,
    *,
    start: datetime = T0,
    seconds: float = 60.0,
    status: RecordingStatus = "sealed",
    interrupted: bool = False,
    failure_stage: str | None = None,
    failure_reason: str | None = None,
    others: Sequence[str] = (CLIENT,),
    phone_numbers: Sequence[str] = (),
    direction: CallDirection = "outbound",
    call_type: RecorderCallType = "peerToPeer",
    modalities: Sequence[str] | None = ("audio",),
    capture: Sequence[str] | None = None,
) -> RecordingRecord:
    participants = [
        CallParticipant(participant_id=f"p-{u}", identity=Identity(kind="user", id=u, display_name=u, upn=UPNS.get(u)))
        for u in (user, *others)
    ]
    participants += [
        CallParticipant(participant_id=f"p-{n}", identity=Identity(kind="phone", id=n), phone_number=n)
        for n in phone_numbers
    ]
    facts = RecordingFacts(
        recording_id=recording_id,
        call_id=f"leg-{recording_id}",
        call_chain_id=chain,
        tenant_id=TENANT,
        observed_user=ObservedUser(id=user, upn=UPNS.get(user), display_name=user.removeprefix("u-").title()),
        participants=participants,
        direction=direction,
        call_type=call_type,
        phone_numbers=list(phone_numbers),
        recorder_instance="recorder-0",
        capture=list(capture) if capture is not None else None,
        started_at=start,
        ended_at=start + timedelta(seconds=seconds) if status != "capturing" else None,
    )
    seal = None
    if status == "sealed":
        seal = SealIndex(
            manifest_blob=f"{recording_id}/manifest.json",
            manifest_sha256="0" * 64,
            ledger_seq=1,
            evidence_blob=f"{recording_id}/mixed.flac",
            evidence_sha256="0" * 64,
            access_copy_blob=f"{recording_id}/access.ogg",
            duration_seconds=seconds,
            interrupted=interrupted,
            retention_class="default",
            retention_until=start + timedelta(days=1827),
            worm="emulator-not-enforced",
            sealed_at=start + timedelta(seconds=seconds + 5),
            modalities=list(modalities) if modalities is not None else None,
        )
    return RecordingRecord(
        id=recording_id,
        status=status,
        facts=facts,
        seal=seal,
        failure_stage=failure_stage,
        failure_reason=failure_reason,
    )
