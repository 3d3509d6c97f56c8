"""The whole system on one machine: which processes `verbatim-dev up` starts, in which order, with which settings.

Each component is a `ManagedProcess` on 127.0.0.1 with a readiness check; the stack starts them in
order, provisions what `verbatim.platform.layout` names, prints where everything is, and stops everything by PID
in reverse order on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import secrets
import shlex
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import httpx
import yaml

from devstack import cosmos_snapshot
from devstack.chat_certificate import ensure_chat_certificate
from devstack.cosmos_snapshot import PeriodicSnapshots
from devstack.emulators import COSMOS_EMULATOR_KEY, REPO_ROOT, AzuritePorts, azurite, cosmos_emulator, ensure_tls
from devstack.processes import ManagedProcess, StartupError, free_port, http_ready
from devstack.simulator import DEMO_TENANT
from devstack.tsa import ensure_tsa_files, tsa
from devstack.witness import ensure_witness_key, witness
from verbatim.ledger.signing import ensure_local_key
from verbatim.ledger.witness import Cosigner
from verbatim.platform.settings import Settings
from verbatim.wiring.container import build_signer, log_keys

# The desired state `verbatim-dev up` publishes for the demo tenant (see `publish_demo_policies`).
DEMO_POLICIES = REPO_ROOT / "policies" / "demo-tenant.yaml"


@dataclass(frozen=True)
class StackPorts:
    azurite: AzuritePorts = field(default_factory=AzuritePorts)
    cosmos: int = 8081
    functions: int = 7071
    simulator: int = 7300
    simulator_https: int = 7301  # the token endpoint over TLS: MSAL accepts only an https authority
    recorder: int = 9441
    recorder_media: int = 9443
    # Signalling and media ports of the 2nd, 3rd, ... recorder instance (`--recorders N`); unset: 10 apart.
    more_recorders: tuple[tuple[int, int], ...] = ()
    # The ledger's outside parties, stood in for locally: an RFC 3161 TSA and a C2SP tlog-witness.
    tsa: int = 8318
    witness: int = 8319

    def recorder_instances(self, count: int) -> list[tuple[int, int]]:
        """(signalling, media) port of each of `count` recorder instances; the first is `recorder`."""
        ports = [(self.recorder, self.recorder_media)]
        for index in range(1, count):
            if index <= len(self.more_recorders):
                ports.append(self.more_recorders[index - 1])
            else:
                ports.append((self.recorder + 10 * index, self.recorder_media + 10 * index))
        return ports

    @classmethod
    def free(cls, recorders: int = 1) -> StackPorts:
        """Free ports instead of the well-known ones (tests, or a second stack beside the first)."""
        return cls(
            azurite=AzuritePorts(blob=free_port(), queue=free_port(), table=free_port()),
            cosmos=free_port(),
            functions=free_port(),
            simulator=free_port(),
            simulator_https=free_port(),
            recorder=free_port(),
            recorder_media=free_port(),
            more_recorders=tuple((free_port(), free_port()) for _ in range(recorders - 1)),
            tsa=free_port(),
            witness=free_port(),
        )


@dataclass(frozen=True)
class StackConfig:
    state_dir: Path = REPO_ROOT / ".devstack"
    ports: StackPorts = field(default_factory=StackPorts)
    task_hub: str = "verbatimlocal"
    with_simulator: bool = True
    with_recorder: bool = True
    # Recorder instances; more than one sit behind the simulator's load balancer (docs/recorder.md, Resilience).
    recorders: int = 1
    tenant_path: Path = DEMO_TENANT
    # The recorder's progress heartbeat; the lifecycle salvages a recording after 3 silent intervals.
    recorder_heartbeat_seconds: float = 2.0
    # How long reconciliation waits for a recorder's report on a call before judging it unrecorded
    # (`RECONCILIATION_RECORDER_REPORT_GRACE_SECONDS`; 15 minutes in Azure, where a call record comes on average under
    # 30 minutes after the call). The simulator publishes a call record 2 s after the call and the local queues are
    # seconds deep, so the local stack waits 30 s: an unrecorded call's `missing` comes within a test's patience.
    recorder_report_grace_seconds: int = 30
    # Extra environment of one component by name (`functions`, `recorder`, `recorder-2`, ...), over its settings:
    # the chaos run's whole-run conditions (a skewed clock, a small disk buffer).
    component_env: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = ()

    def env_of(self, component: str) -> dict[str, str]:
        return {k: v for name, pairs in self.component_env if name == component for k, v in pairs}

    @property
    def logs(self) -> Path:
        return self.state_dir / "logs"

    @property
    def simulator_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.simulator}"

    @property
    def functions_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.functions}"

    @property
    def recorder_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.recorder}"

    def recorder_instances(self) -> list[RecorderInstance]:
        """Each recorder instance: its component name, instance id, ports and state dir. One instance keeps the
        names of a one-recorder stack (`recorder`, state in `recorder/`)."""
        instances = []
        for index, (port, media) in enumerate(self.ports.recorder_instances(self.recorders), start=1):
            suffix = "" if index == 1 else f"-{index}"
            instances.append(
                RecorderInstance(
                    name=f"recorder{suffix}",
                    instance_id=None if self.recorders == 1 else f"recorder-{index}",
                    port=port,
                    media_port=media,
                    state_dir=self.state_dir / f"recorder{suffix}",
                )
            )
        return instances


# The load-balanced calling webhook of a several-instance recorder (the simulator resolves it to a backend).
LOAD_BALANCED_WEBHOOK = "https://recorder.verbatim.local/api/calling"


@dataclass(frozen=True)
class RecorderInstance:
    name: str
    instance_id: str | None  # None: the recorder's default (the host name)
    port: int
    media_port: int
    state_dir: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass(frozen=True)
class DevTenant:
    """What the devstack needs to know of the simulated tenant: its id, the API audience, and the two app
    registrations (the recorder bot and the Function App) with their simulator-only client secrets."""

    tenant_id: str
    api_audience: str
    bot_app_id: str
    bot_secret: str
    functions_app_id: str
    functions_secret: str
    portal_app_id: str | None = None  # the compliance portal's single-page-app registration, if the tenant has one
    api_scopes: tuple[str, ...] = ("user_impersonation",)

    @classmethod
    def load(cls, path: Path) -> DevTenant:
        model: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
        apps = {app["appId"]: app for app in model.get("applications", [])}
        bot_ids = [instance["appId"] for instance in model.get("applicationInstances", []) if instance["appId"] in apps]
        functions = [app for app in apps.values() if "CallRecords.Read.All" in app.get("roles", [])]
        if not bot_ids or not functions:
            raise StartupError(
                f"{path}: the tenant needs a recorder application instance and a Function App with CallRecords.Read.All"
            )
        bot = apps[bot_ids[0]]
        portal = next((app for app in apps.values() if app.get("spaRedirectUris")), None)
        return cls(
            tenant_id=model["tenant"]["id"],
            api_audience=model.get("apiAudience", "api://verbatim"),
            bot_app_id=bot["appId"],
            bot_secret=bot["clientSecret"],
            functions_app_id=functions[0]["appId"],
            functions_secret=functions[0]["clientSecret"],
            portal_app_id=portal["appId"] if portal else None,
            api_scopes=tuple(model.get("apiScopes") or ("user_impersonation",)),
        )


@dataclass
class Component:
    name: str
    process: ManagedProcess
    url: str


def _state_secret(path: Path) -> str:
    """A random secret made once in the state dir (the devstack's stand-in for a Key Vault secret)."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(32), encoding="utf-8")
        path.chmod(0o600)
    return path.read_text(encoding="utf-8").strip()


def simulator_ca(config: StackConfig) -> Path:
    """The simulator's local CA (made once in its state dir, before it starts, so settings can name it)."""
    from devstack.simulator.tls import ensure_certificates

    ca_cert, _, _ = ensure_certificates(config.state_dir / "simulator" / "tls")
    return ca_cert


def simulator_tenant(config: StackConfig) -> Path:
    """The tenant file the simulator loads: the configured one, with the recorder instance's webhook pointed
    at this stack's recorder port (the demo tenant names the well-known 9441), or, with several recorder
    instances, at a load balancer whose backends are the instances."""
    model: dict[str, Any] = yaml.safe_load(config.tenant_path.read_text(encoding="utf-8"))
    recorders = config.recorder_instances()
    for instance in model.get("applicationInstances", []):
        if len(recorders) == 1:
            instance["webhook"] = f"{config.recorder_url}/api/calling"
        else:
            instance["webhook"] = LOAD_BALANCED_WEBHOOK
            instance["loadBalancer"] = {"backends": [f"{r.url}/api/calling" for r in recorders]}
    target = config.state_dir / "simulator" / "tenant.yaml"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(
        "# Written by `verbatim-dev up` from "
        + str(config.tenant_path)
        + "\n"
        + yaml.safe_dump(model, sort_keys=False),
        encoding="utf-8",
    )
    return target


def function_key(config: StackConfig) -> str:
    """The local Functions host's default function key (made once in its state dir; the host reads the same)."""
    from devstack.funchost.state import load_or_create_keys

    return load_or_create_keys(config.state_dir / "funchost").default_function_key


def _storage_environment(config: StackConfig) -> dict[str, str]:
    storage = config.ports.azurite.connection_string
    return {"AzureWebJobsStorage": storage, "RECORDINGS_STORAGE": storage, "VERBATIM_ENVIRONMENT": "local"}


def app_environment(config: StackConfig) -> dict[str, str]:
    """The app settings the Function App runs with on the devstack."""
    ports = config.ports
    tls = ensure_tls(config.state_dir / "tls")
    tenant = DevTenant.load(config.tenant_path)
    simulator = config.simulator_url
    code = function_key(config)
    return {
        **_storage_environment(config),
        "DURABLE_TASK_HUB_NAME": config.task_hub,
        "RECONCILIATION_RECORDER_REPORT_GRACE_SECONDS": str(config.recorder_report_grace_seconds),
        "COSMOS_ENDPOINT": f"https://127.0.0.1:{ports.cosmos}",
        "COSMOS_KEY": COSMOS_EMULATOR_KEY,
        "COSMOS_CA_CERT": str(tls.ca_cert),
        # Graph is the simulator: plain HTTP for Graph, its TLS listener for MSAL's token requests.
        "GRAPH_BASE_URL": simulator,
        "GRAPH_AUTHORITY_HOST": f"https://127.0.0.1:{ports.simulator_https}",
        "GRAPH_CA_CERT": str(simulator_ca(config)),
        "GRAPH_TENANT_ID": tenant.tenant_id,
        "GRAPH_CLIENT_ID": tenant.functions_app_id,
        "GRAPH_CLIENT_SECRET": tenant.functions_secret,
        # callRecords change notifications: the secret Graph echoes, and our webhook URLs with the host's key.
        "GRAPH_CLIENT_STATE": _state_secret(config.state_dir / "graph-client-state"),
        "GRAPH_NOTIFICATION_URL": f"{config.functions_url}/api/graph/notifications?code={code}",
        "GRAPH_LIFECYCLE_URL": f"{config.functions_url}/api/graph/lifecycle?code={code}",
        # Chat capture: rich notifications for /chats/getAllMessages encrypted for a local certificate, with
        # validation tokens signed by the simulator's Entra key (its JWKS stands in for login.microsoftonline.com).
        "CHAT_CAPTURE_ENABLED": "true",
        "CHAT_NOTIFICATION_URL": f"{config.functions_url}/api/chat/notifications?code={code}",
        "CHAT_LIFECYCLE_URL": f"{config.functions_url}/api/chat/lifecycle?code={code}",
        "CHAT_ENCRYPTION_PEM_FILE": str(ensure_chat_certificate(config.state_dir / "chat" / "encryption.pem")),
        "CHAT_VALIDATION_JWKS_URL": f"{simulator}/common/discovery/v2.0/keys",
        # Bearer tokens of the compliance API are the simulator's Entra-like tokens (`POST /sim/tokens`).
        "AUTH_OPENID_CONFIG_URL": f"{simulator}/{tenant.tenant_id}/v2.0/.well-known/openid-configuration",
        "AUTH_AUDIENCE": tenant.api_audience,
        # The portal signs people in through the simulator's authorization code flow, as it does with Entra ID.
        **portal_environment(tenant, config.ports.simulator_https),
        # Before salvaging a silent capture the lifecycle asks the recorder that holds it (only this host).
        "RECORDER_CONTROL_HOSTS": "127.0.0.1",
        # Ledger checkpoints are signed with a local key made once in the state dir (Key Vault in Azure).
        "LEDGER_SIGNING_KEY_FILE": str(ensure_local_key(config.state_dir / "ledger" / "signing-key.pem")),
        # Checkpoints are time-stamped by a local RFC 3161 TSA and cosigned by a local witness (in Azure: a public
        # TSA, and witnesses run by someone other than the firm; docs/ledger-v2.md).
        "LEDGER_TSA_URL": f"http://127.0.0.1:{ports.tsa}",
        "LEDGER_TSA_CA_CERTS": str(ensure_tsa_files(config.state_dir / "tsa").ca_cert),
        "LEDGER_WITNESSES": json.dumps([f"{_witness_key(config).verifier.vkey()} http://127.0.0.1:{ports.witness}"]),
        # Azurite answers 501 to immutability policies and legal holds: tolerated only when this says so.
        "RECORDINGS_STORAGE_IS_EMULATOR": "true",
        # Dev sign-in (`/api/v1/dev/token`) mints tokens and the plan endpoint plans against the simulator's
        # tenant API; the coverage audit reads Graph (the simulator's `/v1.0`) like in Azure.
        "POLICY_SIMULATOR_URL": simulator,
    }


WITNESS_NAME = "witness.verbatim.local/w1"


def _witness_key(config: StackConfig) -> Cosigner:
    return ensure_witness_key(config.state_dir / "witness", WITNESS_NAME)


def _log_vkey(config: StackConfig) -> str:
    """The ledger's own verifier key (from the local signing key), which the witness accepts checkpoints of."""
    settings = Settings.model_validate(app_environment(config))
    return log_keys(settings, build_signer(settings)).verifiers[0].vkey()


def portal_environment(tenant: DevTenant, https_port: int) -> dict[str, str]:
    """The portal's sign-in settings against the simulator's Entra-like authority (https, as MSAL.js requires)."""
    if tenant.portal_app_id is None:
        return {}
    return {
        "PORTAL_CLIENT_ID": tenant.portal_app_id,
        "PORTAL_AUTHORITY": f"https://127.0.0.1:{https_port}/{tenant.tenant_id}",
        "PORTAL_API_SCOPE": f"{tenant.api_audience}/{tenant.api_scopes[0]}",
    }


def recorder_environment(config: StackConfig) -> dict[str, str]:
    """The settings the recorder bot runs with on the devstack: the simulator as Teams and Graph, Azurite."""
    tenant = DevTenant.load(config.tenant_path)
    return {
        **_storage_environment(config),
        "GRAPH_BASE_URL": config.simulator_url,
        "GRAPH_AUTHORITY_HOST": f"https://127.0.0.1:{config.ports.simulator_https}",
        "GRAPH_CA_CERT": str(simulator_ca(config)),
        "GRAPH_TENANT_ID": tenant.tenant_id,
        # The bot's app registration: its app id is also the audience of the platform's JWTs.
        "GRAPH_CLIENT_ID": tenant.bot_app_id,
        "GRAPH_CLIENT_SECRET": tenant.bot_secret,
        "RECORDER_PLATFORM_OPENID_CONFIG_URL": f"{config.simulator_url}/platform/v1/.well-known/OpenIdConfiguration",
        "RECORDER_HEARTBEAT_SECONDS": f"{config.recorder_heartbeat_seconds:g}",
        # Who may ask it about its captures: the simulator's Entra-like tokens for our API (the lifecycle's).
        "AUTH_OPENID_CONFIG_URL": f"{config.simulator_url}/{tenant.tenant_id}/v2.0/.well-known/openid-configuration",
        "AUTH_AUDIENCE": tenant.api_audience,
        # Video on the local stack (the Bicep keeps it off until an operator turns it on): two camera sockets and the
        # screen share, kept per recording policy as the demo's desired state says (docs/video.md).
        "RECORDER_VIDEO_SOCKETS": "2",
        "RECORDER_SCREEN_SHARE": "true",
        "RECORDER_CAPTURE_POLICIES": demo_capture_setting(),
    }


def demo_capture_setting() -> str:
    """`RECORDER_CAPTURE_POLICIES` of the demo tenant's desired state (`verbatim policy capture-setting`)."""
    from verbatim.policy.compile import recorder_capture_setting
    from verbatim.policy.validation import load_desired_state

    desired = load_desired_state(DEMO_POLICIES.read_text(encoding="utf-8"), str(DEMO_POLICIES)).desired
    return recorder_capture_setting(desired)


def simulator_process(
    config: StackConfig, log_path: Path, *, name: str = "simulator", tenant: Path | None = None
) -> ManagedProcess:
    """The Teams/Graph simulator on the config's ports, on the real-time clock (HTTPS for MSAL on the second port),
    loading `tenant` (by default `simulator_tenant(config)`)."""
    ports = config.ports
    return ManagedProcess(
        name=name,
        argv=_launcher("devstack.simulator")(
            host="127.0.0.1",
            port=ports.simulator,
            tenant_path=tenant if tenant is not None else simulator_tenant(config),
            clock="realtime",
            https_port=ports.simulator_https,
            state_dir=config.state_dir / "simulator",
        ),
        ready=http_ready(f"{config.simulator_url}/sim/health", ok=lambda status: status == 200),
        cwd=REPO_ROOT,
        log_path=log_path,
        ports=(ports.simulator, ports.simulator_https),
    )


def _launcher(module: str) -> Callable[..., list[str]]:
    """A component's `launch_argv`; a component that cannot be imported is a startup error that says why."""
    try:
        launcher: Callable[..., list[str]] = importlib.import_module(module).launch_argv
    except (ImportError, AttributeError) as error:
        raise StartupError(f"cannot load {module}: {type(error).__name__}: {error}") from error
    return launcher


def plan(config: StackConfig) -> list[Component]:
    """The components to start, in dependency order."""
    ports = config.ports
    logs = config.logs
    env = app_environment(config)
    tls = ensure_tls(config.state_dir / "tls")
    components = [
        Component(
            "azurite",
            azurite(ports.azurite, config.state_dir / "azurite", logs / "azurite.log"),
            f"http://127.0.0.1:{ports.azurite.blob} (blob), :{ports.azurite.queue} (queue), "
            f":{ports.azurite.table} (table)",
        ),
        Component(
            "cosmos",
            cosmos_emulator(ports.cosmos, tls, logs / "cosmos.log"),
            f"https://127.0.0.1:{ports.cosmos} (CA: {tls.ca_cert})",
        ),
        Component(
            "tsa",
            tsa(ports.tsa, config.state_dir / "tsa", logs / "tsa.log"),
            f"http://127.0.0.1:{ports.tsa} (RFC 3161 time stamps of ledger checkpoints)",
        ),
        Component(
            "witness",
            witness(
                ports.witness, config.state_dir / "witness", WITNESS_NAME, [_log_vkey(config)], logs / "witness.log"
            ),
            f"http://127.0.0.1:{ports.witness} (C2SP tlog-witness cosigning ledger checkpoints)",
        ),
    ]
    if config.with_simulator:
        components.append(
            Component(
                "simulator",
                simulator_process(config, logs / "simulator.log", name="teams-graph-simulator"),
                f"http://127.0.0.1:{ports.simulator} (Graph under /v1.0 and /beta, control under /sim; "
                f"tokens over TLS on :{ports.simulator_https})",
            )
        )
    functions = _launcher("devstack.funchost")
    components.append(
        Component(
            "functions",
            ManagedProcess(
                name="functions-host",
                argv=functions(
                    script_root=REPO_ROOT,
                    host="127.0.0.1",
                    port=ports.functions,
                    state_dir=config.state_dir / "funchost",
                ),
                ready=http_ready(f"http://127.0.0.1:{ports.functions}/admin/host/status", ok=lambda s: s == 200),
                env={**env, **config.env_of("functions")},
                cwd=REPO_ROOT,
                log_path=logs / "functions.log",
                ports=(ports.functions,),
            ),
            f"http://127.0.0.1:{ports.functions}/api (health: /api/health)",
        )
    )
    if config.with_recorder:
        recorder = _launcher("recorder_vm")
        for instance in config.recorder_instances():
            components.append(
                Component(
                    instance.name,
                    ManagedProcess(
                        name=instance.name,
                        argv=recorder(
                            host="127.0.0.1",
                            port=instance.port,
                            media_port=instance.media_port,
                            state_dir=instance.state_dir,
                            **({"instance_id": instance.instance_id} if instance.instance_id else {}),
                        ),
                        ready=http_ready(f"{instance.url}/health", ok=lambda s: s == 200),
                        env={**recorder_environment(config), **config.env_of(instance.name)},
                        cwd=REPO_ROOT,
                        log_path=logs / f"{instance.name}.log",
                        ports=(instance.port, instance.media_port),
                    ),
                    f"{instance.url}/api/calling (media ws :{instance.media_port})",
                )
            )
    return components


def provision(config: StackConfig) -> None:
    """Create the Cosmos database and containers, blob containers and queues (idempotent)."""
    from devstack.provision import provision_cosmos, provision_storage

    settings = Settings.model_validate(app_environment(config))
    provision_storage(settings)
    provision_cosmos(settings)


def write_pid_file(config: StackConfig, components: list[Component]) -> None:
    """`<state dir>/pids`: one `name pid` line per started component (what to stop if this process dies)."""
    (config.state_dir / "pids").write_text("".join(f"{c.name} {c.process.pid}\n" for c in components))


def restart(components: list[Component], name: str, config: StackConfig, *, crash: bool = False) -> Component:
    """Stop one component by PID and start it again on the same ports and state dir.

    `crash=True` sends SIGKILL to its process group, so nothing gets to clean up or commit (a process crash);
    otherwise it is stopped gracefully (SIGTERM). Returns the component once it is ready again."""
    component = next((c for c in components if c.name == name), None)
    if component is None:
        raise StartupError(f"no running component named {name!r}")
    process = component.process
    if crash and process.process is not None and process.process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.process.pid, signal.SIGKILL)
        process.process.wait(timeout=10)
    process.stop()
    process.start()
    write_pid_file(config, components)
    process.wait_ready()
    return component


def write_app_env(config: StackConfig) -> Path:
    """`<state dir>/app.env`: the Function App's settings as shell assignments, so the `verbatim` CLI (verify,
    ledger, policy) can be pointed at this stack with `set -a; . <state dir>/app.env; set +a`. Local secrets
    only (emulator keys, simulator credentials), readable by the owner alone."""
    path = config.state_dir / "app.env"
    lines = [f"{name}={shlex.quote(value)}" for name, value in app_environment(config).items()]
    header = "# Written by `verbatim-dev up`: the Function App's settings on this devstack\n"
    path.write_text(header + "\n".join(lines) + "\n", encoding="utf-8")
    path.chmod(0o600)
    return path


@contextmanager
def running(config: StackConfig, echo: Callable[[str], None] = print) -> Iterator[list[Component]]:
    """Start every component (failing fast with a clear message), yield them, stop them in reverse."""
    config.state_dir.mkdir(parents=True, exist_ok=True)
    pid_file = config.state_dir / "pids"
    write_app_env(config)
    started: list[Component] = []
    snapshots: PeriodicSnapshots | None = None
    try:
        for component in plan(config):
            echo(f"starting {component.name} ...")
            component.process.start()
            started.append(component)
            write_pid_file(config, started)
            component.process.wait_ready()
            if component.name == "cosmos":
                provision(config)
                snapshots = keep_cosmos_data(config, echo)
                if publish_demo_policies(config):
                    echo(f"published {DEMO_POLICIES.relative_to(REPO_ROOT)} as the desired state of the coverage audit")
        yield started
    finally:
        for component in reversed(started):
            if component.name == "cosmos" and snapshots is not None:
                # Last snapshot once everything that writes to Cosmos has stopped, before the emulator goes.
                try:
                    snapshots.stop()
                except Exception as error:  # never let a failed save keep the processes running
                    echo(f"(could not save the Cosmos snapshot: {error})")
            component.process.stop()
        pid_file.unlink(missing_ok=True)


def keep_cosmos_data(config: StackConfig, echo: Callable[[str], None] = print) -> PeriodicSnapshots:
    """Restore the Cosmos emulator's data from the last run (it is in-memory) and keep saving it."""
    settings = Settings.model_validate(app_environment(config))
    path = config.state_dir / "cosmos-snapshot.json"
    restored = cosmos_snapshot.restore(settings, path)
    if restored:
        echo(f"restored {restored} Cosmos documents from {path}")
    snapshots = cosmos_snapshot.PeriodicSnapshots(settings, path)
    snapshots.start()
    return snapshots


class Shutdown(Exception):
    """Ctrl-C or SIGTERM arrived: unwind, so every started component is stopped by PID."""


def _raise_shutdown_once() -> Callable[[int, FrameType | None], None]:
    received: list[int] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        if received:  # already unwinding: let the clean-up finish
            return
        received.append(signum)
        raise Shutdown(signal.Signals(signum).name)

    return on_signal


def fire_function(config: StackConfig, name: str) -> None:
    """Run a non-HTTP function of the Function App now, through the host's admin API (master key)."""
    from devstack.funchost.state import load_or_create_keys

    master = load_or_create_keys(config.state_dir / "funchost").master
    response = httpx.post(
        f"{config.functions_url}/admin/functions/{name}",
        json={"input": ""},
        headers={"x-functions-key": master},
        timeout=10.0,
    )
    if response.status_code != 202:
        raise StartupError(f"functions: firing {name} answered {response.status_code}: {response.text[:300]}")


def publish_demo_policies(config: StackConfig) -> bool:
    """Publish `policies/demo-tenant.yaml` as the desired state (with its `policy.published` ledger entry, as
    `PUT /api/v1/policy/desired-state` does) when the stack runs the demo tenant and none is published yet;
    True when it was published now. Runs before the Functions host starts, so every coverage audit sees it.

    The coverage audit reads each user's policy *name* from Graph; what a policy does (records? strict?
    which recorders?) comes from the published desired state, as in Azure, where an admin publishes it."""
    if DevTenant.load(config.tenant_path).tenant_id != DevTenant.load(DEMO_TENANT).tenant_id:
        return False  # the file declares the demo tenant's policies only (also for a tenant file derived from it)
    from datetime import UTC, datetime

    from verbatim.platform import clients
    from verbatim.policy.service import publish_desired_state
    from verbatim.policy.stores import CONTAINER, CosmosDesiredStateStore
    from verbatim.wiring import container_for

    settings = Settings.model_validate(app_environment(config))
    store = CosmosDesiredStateStore(clients.cosmos_database(settings).get_container_client(CONTAINER))
    if store.load() is not None:
        return False
    text = DEMO_POLICIES.read_text(encoding="utf-8")
    publish_desired_state(
        store, text, actor="verbatim-dev up", now=datetime.now(UTC), ledger=container_for(settings).ledger
    )
    return True


def prime(config: StackConfig, components: list[Component], echo: Callable[[str], None] = print) -> None:
    """Run once at start what Azure would have run long before: the policy coverage audit (a 15-minute timer)
    records every user's effective policy, which reconciliation needs for the calls placed from now on."""
    if {"functions", "simulator"} <= {c.name for c in components}:
        try:
            fire_function(config, "audit_policy_coverage")
        except (StartupError, httpx.HTTPError) as error:
            echo(f"(could not run the policy coverage audit now: {error}; it runs every 15 minutes)")


def print_summary(components: list[Component], config: StackConfig, echo: Callable[[str], None] = print) -> None:
    width = max(len(c.name) for c in components)
    echo("\nVerbatim is running on 127.0.0.1:")
    for component in components:
        echo(f"  {component.name.ljust(width)}  {component.url}   (pid {component.process.pid})")
    echo(f"\nlogs: {config.logs}   state: {config.state_dir}")


def run_forever(config: StackConfig, after_start: Callable[[list[Component]], None] | None = None) -> int:
    """Start the stack, run `after_start` (the demo), and serve until Ctrl-C or SIGTERM.

    The signals are handled from the start, so one arriving while components start or the demo runs still
    stops everything that was started."""
    handler = _raise_shutdown_once()
    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        with running(config) as components:
            prime(config, components)
            print_summary(components, config)
            if after_start is not None:
                after_start(components)
            print("\nstop with Ctrl-C")
            sys.stdout.flush()
            while True:
                signal.pause()
    except Shutdown:
        print("\nstopped")
    except StartupError as error:
        print(f"verbatim-dev up: {error}", file=sys.stderr)
        return 1
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
    return 0
