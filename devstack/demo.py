"""`verbatim-dev up --demo`: the simulated tenant places a handful of calls through the Teams/Graph simulator,
waits until the pipeline has sealed the recordings, ingested the call records and computed the verdicts,
and prints a short summary with the compliance API's URL and a dev token.

The scenarios are the ones a compliance officer asks about: a trader's 1:1 VoIP call, a PSTN call, a
meeting with joins and leaves, a call the strict policy blocks because the recorder refuses it (the
recorder is draining), and a call during which the recorder process crashes (SIGKILL by PID, then it is
started again) and the lifecycle salvages what was staged. `play()` is also what the end-to-end tests run.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from devstack.processes import StartupError
from devstack.stack import Component, DevTenant, StackConfig, fire_function, restart

TOKEN_SECONDS = 12 * 3600
CALL_RECORD_DELAY_SECONDS = 2.0
# When Una shares her screen in the demo meeting (seconds from its start).
SHARE = (3.0, 8.0)
OFFICER = "Compliance.Officer"
AUDITOR = "Compliance.Auditor"
READ_REASON = "devstack demo: summary of the demo calls"

TOM = "tom.trader@contoso.onmicrosoft.com"
TARA = "tara.trader@contoso.onmicrosoft.com"
NED = "ned.adviser@contoso.onmicrosoft.com"
UNA = "una.unrecorded@contoso.onmicrosoft.com"
CORA = "cora.compliance@contoso.onmicrosoft.com"


class DemoError(RuntimeError):
    """The demo could not complete; the message says which step and what was seen."""


@dataclass(frozen=True)
class Expected:
    """The verdict a scenario must end with for one policy user (and the reason, when not recorded)."""

    user: str  # UPN
    verdict: str
    reason: str | None = None


@dataclass(frozen=True)
class Scenario:
    """One demo call: the body of `POST /sim/calls` and the verdicts it must end with."""

    key: str
    title: str
    spec: dict[str, Any]
    expected: tuple[Expected, ...]


@dataclass
class CallResult:
    """What became of one scenario call, as the simulator and the compliance API report it."""

    scenario: Scenario
    sim_id: str
    call_id: str  # the callChainId = the call record's id
    outcome: str = "pending"
    answer_ms: list[float] = field(default_factory=list)
    media_seconds: float = 0.0
    # From a recorder's call being established to Teams accepting its `recording` status: media of that
    # stretch may not be persisted (call: updateRecordingStatus), so the evidence is this much shorter.
    before_recording_seconds: float = 0.0
    verdicts: list[dict[str, Any]] = field(default_factory=list)
    recordings: list[dict[str, Any]] = field(default_factory=list)
    # Per sealed recording: its streams as the sealed manifest lists them (audio first, then video).
    streams: dict[str, list[str]] = field(default_factory=dict)

    def verdict_of(self, upn: str) -> dict[str, Any] | None:
        return next((v for v in self.verdicts if v.get("userPrincipalName") == upn), None)


@dataclass
class ChatResult:
    """A demo chat: what the simulator's users did in it, and what the compliance API shows of it."""

    key: str
    title: str
    chat_id: str
    versions: int  # posts, edits and deletions made in the simulator
    recording_id: str | None = None  # the meeting recording it sits beside
    captured: int = 0  # message versions the API shows

    @property
    def complete(self) -> bool:
        return self.captured == self.versions


@dataclass
class DemoResult:
    calls: list[CallResult]
    api_url: str
    portal_url: str
    officer_token: str
    seconds: float
    token_file: Path
    app_env: Path
    chats: list[ChatResult] = field(default_factory=list)

    def call(self, key: str) -> CallResult:
        return next(c for c in self.calls if c.scenario.key == key)

    @property
    def sealed(self) -> list[dict[str, Any]]:
        return [r for c in self.calls for r in c.recordings if r.get("status") == "sealed"]


def streams_of(manifest: dict[str, Any]) -> list[str]:
    """A sealed manifest's streams in words: "audio 11.6 s", "screen share (Una Unrecorded) 3.1-8.0 s", ..."""

    def field_of(item: dict[str, Any], name: str) -> Any:
        camel = name.split("_")[0] + "".join(part.title() for part in name.split("_")[1:])
        return item.get(name, item.get(camel))

    names = {
        field_of(p, "participant_id"): field_of(field_of(p, "identity") or {}, "display_name")
        for p in field_of(manifest, "participants") or []
    }
    found = [f"audio {float(field_of(manifest, 'duration_seconds') or 0):.1f} s"]
    for video in field_of(manifest, "video") or []:
        kind = "screen share" if video.get("kind") == "screenShare" else "camera"
        who = names.get(field_of(video, "participant_id")) or f"source {field_of(video, 'source_id')}"
        spans = ", ".join(
            f"{field_of(s, 'start_seconds'):.1f}-{field_of(s, 'end_seconds'):.1f} s" for s in video.get("spans") or []
        )
        found.append(f"{kind} ({who}) {spans}".strip())
    return found


def before_recording_seconds(recorder: dict[str, Any]) -> float:
    """Seconds from the recorder's leg being established to its first `recording` status (0 when unknown)."""
    established = recorder.get("establishedAt")
    first = next((h["at"] for h in recorder.get("recordingStatusHistory") or () if h["status"] == "recording"), None)
    if not established or not first:
        return 0.0
    return max(0.0, (datetime.fromisoformat(first) - datetime.fromisoformat(established)).total_seconds())


def _user(key: str, upn: str, **extra: Any) -> dict[str, Any]:
    return {"key": key, "user": upn, **extra}


def scenarios() -> dict[str, Scenario]:
    """The demo calls. Media runs in real time, so every call is short; the crash call is long enough for
    the recorder to be killed well inside it, leaving a salvaged recording and a partial verdict."""
    return {
        "blocked": Scenario(
            "blocked",
            "strict policy, recorder refuses (draining)",
            {
                "type": "peerToPeer",
                "subject": "Blocked: the recorder is not available",
                "participants": [_user("tara", TARA), _user("una", UNA)],
                "durationSeconds": 5,
            },
            (Expected(TARA, "missing", "call_blocked_by_policy"),),
        ),
        "voip": Scenario(
            "voip",
            "trader 1:1 VoIP call",
            {
                "type": "peerToPeer",
                "subject": "Trader 1:1",
                "participants": [_user("tom", TOM), _user("cora", CORA)],
                "dialog": [
                    {"speaker": "tom", "text": "Morning Cora. I am buying five hundred gilts at market."},
                    {"speaker": "cora", "text": "Noted. Please confirm the client reference."},
                    {"speaker": "tom", "text": "Reference alpha seven. Done."},
                ],
            },
            (Expected(TOM, "recorded"),),
        ),
        "pstn": Scenario(
            "pstn",
            "PSTN call from a client (Direct Routing)",
            {
                "type": "pstnInbound",
                "subject": "Client on the phone",
                "participants": [
                    {"key": "client", "phone": "+442079460999", "displayName": "External client"},
                    _user("tara", TARA),
                ],
                "dialog": [
                    {"speaker": "client", "text": "Hello Tara, I would like to sell my euro position."},
                    {"speaker": "tara", "text": "Understood, selling at the current rate now."},
                ],
            },
            (Expected(TARA, "recorded"),),
        ),
        "crash": Scenario(
            "crash",
            "recorder crashes mid-call (advisory policy)",
            {
                "type": "peerToPeer",
                "subject": "Advice call, recorder crashes",
                "participants": [_user("ned", NED), _user("una", UNA)],
                "dialog": [
                    {"speaker": "ned", "text": "Let us review the allocation of your portfolio for next year."},
                    {"speaker": "una", "text": "I would like more bonds and fewer equities, please."},
                ],
                "durationSeconds": 30,
            },
            (Expected(NED, "partial", "recorder_crashed"),),
        ),
        "meeting": Scenario(
            "meeting",
            "meeting with cameras, a screen share, joins and leaves",
            {
                "type": "meeting",
                "subject": "Morning desk meeting",
                "organizer": "tom",
                "participants": [
                    # Tom's camera is on throughout, Tara's while she is there; Una shares her screen for 5 s.
                    _user("tom", TOM, camera=[{"at": 0}]),
                    _user("una", UNA, screenShare=[{"at": SHARE[0], "until": SHARE[1]}]),
                    _user("tara", TARA, joinAt=2.0, leaveAt=9.0, camera=[{"at": 2.5}]),
                    {"key": "guest", "guest": "Visiting analyst", "joinAt": 1.0},
                ],
                "dialog": [
                    {"speaker": "tom", "text": "Good morning everyone, let us start with rates."},
                    {"speaker": "tara", "text": "Sterling is flat, I am watching the auction."},
                    {"speaker": "guest", "text": "Thank you for having me."},
                ],
                "durationSeconds": 12,
            },
            (Expected(TOM, "recorded"), Expected(TARA, "recorded")),
        ),
    }


class DemoStack:
    """The demo's view of a running stack: the simulator's control API, the Functions host's admin API, the
    recorder's admin API and the compliance API, all on 127.0.0.1."""

    def __init__(
        self, config: StackConfig, components: Sequence[Component], echo: Callable[[str], None] = print
    ) -> None:
        self.config = config
        self.components = list(components)
        self.echo = echo
        self.tenant = DevTenant.load(config.tenant_path)
        self.http = httpx.Client(timeout=30.0)
        self._tokens: dict[str, str] = {}

    def close(self) -> None:
        self.http.close()

    # --- the simulator ---------------------------------------------------------------------------------------

    def sim(self, method: str, path: str, body: Any = None) -> Any:
        response = self.http.request(method, f"{self.config.simulator_url}{path}", json=body)
        if response.status_code >= 400:
            raise DemoError(f"simulator {method} {path}: {response.status_code} {response.text[:500]}")
        return response.json() if response.content else None

    def token(self, *roles: str, subject: str = "demo-officer", name: str = "Demo Officer") -> str:
        """A signed user token of the tenant's (simulated) Entra ID for the compliance API."""
        key = ",".join(sorted(roles)) + "|" + subject
        if key not in self._tokens:
            body = {
                "sub": subject,
                "name": name,
                "roles": list(roles),
                "preferredUsername": f"{subject}@{self._domain()}",
                "expiresInSeconds": TOKEN_SECONDS,
            }
            self._tokens[key] = str(self.sim("POST", "/sim/tokens", body)["access_token"])
        return self._tokens[key]

    def _domain(self) -> str:
        return str(self.sim("GET", "/sim/health")["tenantDomain"])

    def place(self, scenario: Scenario) -> CallResult:
        call = self.sim("POST", "/sim/calls", scenario.spec)
        return CallResult(scenario, sim_id=call["id"], call_id=call["conversations"][0]["callChainId"])

    def call_state(self, result: CallResult) -> dict[str, Any]:
        state: dict[str, Any] = self.sim("GET", f"/sim/calls/{result.sim_id}")
        result.outcome = state["outcome"]
        result.answer_ms = [r["answerLatencyMs"] for r in state["recorders"] if r.get("answerLatencyMs") is not None]
        result.media_seconds = sum(c.get("mediaSeconds") or 0.0 for c in state["conversations"])
        result.before_recording_seconds = max((before_recording_seconds(r) for r in state["recorders"]), default=0.0)
        return state

    def wait_ended(self, results: Sequence[CallResult], timeout: float = 60.0) -> None:
        wait_until(
            lambda: all(self.call_state(r)["state"] == "ended" for r in results),
            timeout,
            "the calls " + ", ".join(r.scenario.key for r in results) + " to end",
        )

    # --- the Functions host -----------------------------------------------------------------------------------

    def fire(self, function: str) -> None:
        """Run a timer function now through the host's admin API (as the real host's does)."""
        fire_function(self.config, function)

    def api(self, path: str, *roles: str, params: dict[str, str] | None = None) -> Any:
        response = self.http.get(
            f"{self.config.functions_url}/api/v1{path}",
            params=params,
            headers={"Authorization": f"Bearer {self.token(*roles)}", "X-Access-Reason": READ_REASON},
        )
        if response.status_code >= 400:
            raise DemoError(f"GET /api/v1{path}: {response.status_code} {response.text[:500]}")
        return response.json()

    def policies_observed(self, user_ids: Sequence[str]) -> bool:
        for user_id in user_ids:
            answer = self.api(f"/policy/effective/{user_id}", AUDITOR)
            if answer.get("snapshot") is None:
                return False
        return True

    def verdicts(self, result: CallResult) -> list[dict[str, Any]]:
        page = self.api("/verdicts", AUDITOR, params={"callId": result.call_id})
        items: list[dict[str, Any]] = page.get("items", [])
        result.verdicts = items
        return items

    def recordings(self, result: CallResult) -> list[dict[str, Any]]:
        ids = sorted({rid for v in result.verdicts for rid in v.get("recordingIds", [])})
        found = []
        for recording_id in ids:
            detail = self.api(f"/recordings/{recording_id}", AUDITOR)
            found.append(detail.get("recording", detail))
            if isinstance(detail.get("manifest"), dict):
                result.streams[recording_id] = streams_of(detail["manifest"])
        result.recordings = found
        return found

    # --- chats ------------------------------------------------------------------------------------------------

    def chat_subscribed(self) -> bool:
        """The Functions host's start-up timer has subscribed to the tenant's chat messages."""
        subscriptions = self.sim("GET", "/sim/subscriptions").get("value", [])
        return any("getAllMessages" in str(s.get("resource", "")) for s in subscriptions)

    def open_chat(self, body: dict[str, Any]) -> str:
        return str(self.sim("POST", "/sim/chats", body)["id"])

    def post(self, chat_id: str, sender: str, text: str) -> str:
        return str(self.sim("POST", f"/sim/chats/{chat_id}/messages", {"from": sender, "content": text})["id"])

    def edit(self, chat_id: str, message_id: str, text: str) -> None:
        self.sim("PATCH", f"/sim/chats/{chat_id}/messages/{message_id}", {"content": text})

    def delete(self, chat_id: str, message_id: str) -> None:
        self.sim("DELETE", f"/sim/chats/{chat_id}/messages/{message_id}")

    def captured_versions(self, chat: ChatResult) -> int:
        """Message versions of the chat the compliance API shows (a 404 until its first message is stored)."""
        response = self.http.get(
            f"{self.config.functions_url}/api/v1/chats/{chat.chat_id}",
            headers={"Authorization": f"Bearer {self.token(AUDITOR)}", "X-Access-Reason": READ_REASON},
        )
        if response.status_code == 404:
            return 0
        if response.status_code >= 400:
            raise DemoError(f"GET /api/v1/chats/{chat.chat_id}: {response.status_code} {response.text[:500]}")
        chat.captured = sum(len(m.get("versions", [])) for m in response.json().get("messages", []))
        return chat.captured

    # --- the recorder -----------------------------------------------------------------------------------------

    def recorder_admin(self, method: str, path: str) -> Any:
        response = self.http.request(method, f"{self.config.recorder_url}{path}")
        if response.status_code >= 400:
            raise DemoError(f"recorder {method} {path}: {response.status_code} {response.text[:300]}")
        return response.json() if response.content else None

    @contextlib.contextmanager
    def recorder_draining(self) -> Iterator[None]:
        """The recorder refuses new calls (as it does before a scale-in) for the duration of the block."""
        self.recorder_admin("POST", "/admin/drain")
        try:
            yield
        finally:
            self.recorder_admin("DELETE", "/admin/drain")

    def active_recordings(self) -> int:
        return len(self.recorder_admin("GET", "/admin/calls").get("calls", []))

    def crash_recorder(self) -> None:
        """SIGKILL the recorder's process group (nothing gets to commit), then start it again on the same
        ports and state dir, as the VM's service manager would."""
        restart(self.components, "recorder", self.config, crash=True)


def wait_until(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise DemoError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def _final(result: CallResult) -> bool:
    """Every expected policy user has a verdict that is no longer pending."""
    for expected in result.scenario.expected:
        verdict = result.verdict_of(expected.user)
        if verdict is None or verdict.get("verdict") == "pending":
            return False
    return True


def play(stack: DemoStack, timeout: float = 120.0) -> DemoResult:
    """Place the demo calls and wait until every one of them has its final verdicts."""
    started = time.monotonic()
    echo = stack.echo
    plays = scenarios()
    users = [u.id for u in _tenant_users(stack) if u.upn in {TOM, TARA, NED}]

    # Reconciliation asks "which policy applied at call time?" from the snapshot store, which the coverage
    # audit (a 15-minute timer) fills: run it now, so the demo's calls fall after the first snapshots.
    stack.sim("PATCH", "/sim/config", {"callRecordDelaySeconds": CALL_RECORD_DELAY_SECONDS})
    stack.fire("audit_policy_coverage")
    wait_until(lambda: stack.policies_observed(users), 30, "the policy coverage audit to snapshot the policies")

    echo("demo: placing calls ...")
    with stack.recorder_draining():
        blocked = stack.place(plays["blocked"])
        stack.wait_ended([blocked], timeout=20)
    voip, pstn, crash = (stack.place(plays[key]) for key in ("voip", "pstn", "crash"))
    stack.wait_ended([voip, pstn], timeout=60)
    # The crash call is the only one left: kill the recorder mid-call. It stays silent until the lifecycle's
    # heartbeat deadline passes, which salvages the staged blocks and seals the recording as interrupted.
    wait_until(lambda: stack.active_recordings() <= 1, 20, "the recorder to finish the other calls")
    echo("demo: crashing the recorder (SIGKILL) in the middle of a call, and starting it again ...")
    stack.crash_recorder()
    meeting = stack.place(plays["meeting"])
    chats = [chat_in_meeting(stack, meeting), trader_chat(stack)]
    calls = [blocked, voip, pstn, crash, meeting]
    stack.wait_ended(calls, timeout=60)

    echo("demo: waiting for recordings to be sealed, call records ingested and verdicts computed ...")

    def settled() -> bool:
        for result in calls:
            stack.verdicts(result)
        return all(_final(result) for result in calls)

    wait_until(settled, max(10.0, timeout - (time.monotonic() - started)), "the verdicts of the demo calls", 1.0)
    for result in calls:
        stack.recordings(result)
    wait_until(
        lambda: all(stack.captured_versions(chat) >= chat.versions for chat in chats),
        30,
        "every version of the demo chats to be captured",
        1.0,
    )
    sealed = [r for r in meeting.recordings if r.get("status") == "sealed"]
    chats[0].recording_id = str(sealed[0]["id"]) if sealed else None
    api_url = f"{stack.config.functions_url}/api/v1"
    token = stack.token(OFFICER, subject="dev-officer", name="Dev Officer")
    token_file = stack.config.state_dir / "dev-token"
    token_file.write_text(token + "\n", encoding="utf-8")
    token_file.chmod(0o600)
    return DemoResult(
        calls=calls,
        api_url=api_url,
        portal_url=f"{stack.config.functions_url}/api/portal/",
        officer_token=token,
        seconds=time.monotonic() - started,
        token_file=token_file,
        app_env=stack.config.state_dir / "app.env",
        chats=chats,
    )


def chat_in_meeting(stack: DemoStack, meeting: CallResult) -> ChatResult:
    """The meeting's chat while it runs: three posts, one of them edited and one deleted (five versions)."""
    wait_until(stack.chat_subscribed, 30, "the Functions host to subscribe to the tenant's chat messages")
    chat_id = stack.open_chat({"chatType": "meeting", "meetingCall": meeting.sim_id})
    stack.post(chat_id, TOM, "Agenda: rates, then the auction.")
    tara = stack.post(chat_id, TARA, "Sterling flat into the auction.")
    stack.edit(chat_id, tara, "Sterling flat into the auction at 10:00.")
    una = stack.post(chat_id, UNA, "Sorry, wrong chat.")
    stack.delete(chat_id, una)
    return ChatResult("meeting-chat", "meeting chat (an edit, a deletion)", chat_id, versions=5)


def trader_chat(stack: DemoStack) -> ChatResult:
    """A 1:1 chat between a trader and a colleague who is not recorded."""
    chat_id = stack.open_chat({"chatType": "oneOnOne", "members": [TOM, CORA]})
    stack.post(chat_id, TOM, "Cora, the gilts trade is done, client reference alpha seven.")
    stack.post(chat_id, CORA, "Thanks Tom, noted.")
    return ChatResult("trader-chat", "trader 1:1 chat", chat_id, versions=2)


@dataclass(frozen=True)
class _TenantUser:
    id: str
    upn: str


def _tenant_users(stack: DemoStack) -> list[_TenantUser]:
    tenant = stack.sim("GET", "/sim/tenant")
    return [_TenantUser(u["id"], u["userPrincipalName"]) for u in tenant.get("users", [])]


def summary(result: DemoResult) -> str:
    """The text `verbatim-dev up --demo` prints once the demo calls have their verdicts."""
    lines = [
        "",
        f"Demo: {len(result.calls)} calls placed by the simulated tenant; pipeline settled in {result.seconds:.0f} s",
        "",
        f"  {'call':<46} {'outcome':<16} {'policy user':<38} verdict",
    ]
    for call in result.calls:
        first = True
        verdicts = call.verdicts or [{}]
        for verdict in verdicts:
            what = str(verdict.get("verdict", "-"))
            reason = verdict.get("reason")
            if reason and reason != "recorded":
                what += f" ({reason})"
            coverage = verdict.get("coverage")
            if isinstance(coverage, int | float) and what.startswith("partial"):
                what += f", {coverage:.0%} covered"
            lines.append(
                f"  {(call.scenario.title if first else ''):<46} {(call.outcome if first else ''):<16} "
                f"{verdict.get('userPrincipalName', '-')!s:<38} {what}"
            )
            first = False
    sealed = result.sealed
    salvaged = [r for r in sealed if r.get("interrupted") or r.get("salvaged")]
    lines += [
        "",
        f"Recordings sealed: {len(sealed)}" + (f" ({len(salvaged)} salvaged after the crash)" if salvaged else ""),
        *[
            line
            for call in result.calls
            for recording_id, streams in call.streams.items()
            if len(streams) > 1
            for line in (f"Streams of {call.scenario.key} recording {recording_id}: " + "; ".join(streams),)
        ],
        "Chats captured: "
        + ", ".join(f"{c.title}: {c.captured} of {c.versions} message versions" for c in result.chats),
        "",
        f"Compliance API:  {result.api_url}   (OpenAPI: {result.api_url}/openapi.json)",
        f"Portal:          {result.portal_url}",
        "Dev token (Compliance.Officer, valid 12 h):",
        f"  {result.officer_token}",
        "",
        "Try:",
        f"  export TOKEN=$(cat {result.token_file})",
        f'  curl -H "Authorization: Bearer $TOKEN" "{result.api_url}/recordings?limit=10"',
        f'  curl -H "Authorization: Bearer $TOKEN" -H "X-Access-Reason: review" -H "Range: bytes=0-65535" \\\n'
        f'       "{result.api_url}/recordings/<id>/media" -o part.ogg',
        f"  set -a; . {result.app_env}; set +a; verbatim verify <recording-id>",
        *(
            [
                f'  curl -H "Authorization: Bearer $TOKEN" -H "X-Access-Reason: review" '
                f'"{result.api_url}/recordings/{meeting_chat.recording_id}/chat"'
            ]
            if (meeting_chat := next((c for c in result.chats if c.recording_id), None))
            else []
        ),
    ]
    return "\n".join(lines)


def run(components: list[Component], config: StackConfig | None = None) -> DemoResult | None:
    """Play the demo on a running stack and print the summary; the stack keeps serving afterwards."""
    missing = {"simulator", "recorder", "functions"} - {c.name for c in components}
    if missing:
        print(f"demo: skipped, it needs the {', '.join(sorted(missing))} (started without them)")
        return None
    stack = DemoStack(config or StackConfig(), components)
    try:
        result = play(stack)
    except (DemoError, StartupError) as error:
        print(f"demo: {error}")
        print(f"(the stack keeps running; the logs are in {stack.config.logs})")
        return None
    except httpx.HTTPError as error:
        url = error.request.url if isinstance(error, httpx.RequestError) else "?"
        print(f"demo: {type(error).__name__} on {url}: {error}")
        print(f"(the stack keeps running; the logs are in {stack.config.logs})")
        return None
    finally:
        stack.close()
    print(summary(result))
    _write_result(result, stack.config)
    return result


def _write_result(result: DemoResult, config: StackConfig) -> None:
    """Keep the summary as JSON in the state dir, for scripts (and the token, which is a local dev token)."""
    path = config.state_dir / "demo.json"
    path.write_text(
        json.dumps(
            {
                "at": datetime.now(UTC).isoformat(),
                "apiUrl": result.api_url,
                "portalUrl": result.portal_url,
                "officerToken": result.officer_token,
                "calls": [
                    {
                        "scenario": c.scenario.key,
                        "simulatorCallId": c.sim_id,
                        "callId": c.call_id,
                        "outcome": c.outcome,
                        "verdicts": c.verdicts,
                        "recordings": [r.get("id") for r in c.recordings],
                        "streams": c.streams,
                    }
                    for c in result.calls
                ],
                "chats": [
                    {
                        "scenario": c.key,
                        "chatId": c.chat_id,
                        "versions": c.versions,
                        "captured": c.captured,
                        "recordingId": c.recording_id,
                    }
                    for c in result.chats
                ],
            },
            indent=2,
        ),
        encoding="utf-8",
    )
    path.chmod(0o600)
