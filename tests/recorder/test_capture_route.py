"""The lifecycle asks the recorder instance that holds a capture whether it is still alive before salvaging it
(issue 14), at `GET /api/captures/{recording id}` on the recorder's own callback address: only an app-only
token of the tenant for our API holding the `Recorder.Lifecycle` role is answered; 200 with the capture's state
while it holds it (and for a while after it ended), 404 when it does not — a restarted process holds nothing."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import numpy as np

from devstack.testkit.audio import speech
from devstack.testkit.teams_platform import CallScript, FakePlatform, wait_until
from tests.recorder.conftest import RecorderFactory
from verbatim.contracts.evidence import RecordingFacts
from verbatim.contracts.lifecycle import RecordingRecord
from verbatim.contracts.recorder import RecordingStarted, RecordingStopped
from verbatim.lifecycle.liveness import HttpCaptureLiveness


def ask(url: str, recording_id: str, token: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return httpx.get(f"{url}/api/captures/{recording_id}", headers=headers, timeout=10)


def test_only_the_lifecycle_may_ask_and_it_learns_whether_the_capture_is_held(
    platform: FakePlatform, start_recorder: RecorderFactory
) -> None:
    recorder = start_recorder()
    # Long enough that the capture is still `recording` after the checks below on a loaded machine (3 s of speech
    # alone once ended before them: the state was `ending`).
    words = speech("Checking that the recorder answers about its capture.")
    script = CallScript(audio=np.concatenate([words, np.zeros(16_000 * 15, dtype=np.int16)]), realtime=True)
    call = platform.submit(platform.drive(recorder.url, script))
    wait_until(lambda: any(isinstance(e, RecordingStarted) for e in recorder.events()), timeout=15)
    started = next(e for e in recorder.events() if isinstance(e, RecordingStarted))
    rid = started.recording_id
    assert started.control_url == recorder.url  # where it says it can be asked (its own callback base)

    assert ask(recorder.url, rid, None).status_code == 401
    assert ask(recorder.url, rid, platform.token()).status_code == 401  # Teams' token is not the lifecycle's
    assert ask(recorder.url, rid, platform.entra_token(aud="api://someone-else")).status_code == 401
    assert ask(recorder.url, rid, platform.entra_token(azp=None)).status_code == 401  # no client: not an access token
    assert ask(recorder.url, rid, platform.entra_token(roles=["Compliance.Officer"])).status_code == 403
    assert ask(recorder.url, rid, platform.entra_token(idtyp="user", scp="access")).status_code == 403

    # What the lifecycle's probe makes of it (verbatim.lifecycle.liveness), over the same route.
    probe = HttpCaptureLiveness(
        allowed_hosts=frozenset({"127.0.0.1"}), token=platform.entra_token, clock=lambda: datetime.now(UTC)
    )
    record = RecordingRecord(
        id=rid,
        status="capturing",
        facts=RecordingFacts(recording_id=rid, call_id=started.call_id, recorder_instance=started.recorder_instance),
        recorder_control_url=started.control_url,
    )
    assert probe.ask(record).answer == "capturing"
    elsewhere = record.model_copy(update={"recorder_control_url": recorder.url.replace("127.0.0.1", "localhost")})
    assert probe.ask(elsewhere).answer == "not_asked"  # a host the settings do not allow is never called

    answer = ask(recorder.url, rid, platform.entra_token())
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["recording_id"], body["state"], body["generation"]) == (rid, "recording", 0)
    assert ask(recorder.url, "rec-not-held-here", platform.entra_token()).status_code == 404

    call.result(timeout=60)
    wait_until(lambda: any(isinstance(e, RecordingStopped) for e in recorder.events()), timeout=30)
    ended = ask(recorder.url, rid, platform.entra_token())
    assert ended.status_code == 200 and ended.json()["state"] == "ended" and ended.json()["committed"] is True
    assert probe.ask(record).answer == "ending"

    # A restarted process holds nothing of what its predecessor captured.
    recorder.terminate()
    assert probe.ask(record).answer == "unreachable"  # nothing listens there any more
    again = start_recorder(instance_id=recorder.instance_id, CAPTURES_CONTAINER=recorder.container)
    assert ask(again.url, rid, platform.entra_token()).status_code == 404
    assert probe.ask(record.model_copy(update={"recorder_control_url": again.url})).answer == "not_held"
