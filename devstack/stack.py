"""The whole system on one machine: which processes `verbatim up` starts, in which order, with which settings.

Each component is a `ManagedProcess` on 127.0.0.1 with a readiness check; the stack starts them in
order, provisions what `verbatim.layout` names, prints where everything is, and stops everything by PID
in reverse order on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import importlib
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from devstack.emulators import COSMOS_EMULATOR_KEY, REPO_ROOT, AzuritePorts, azurite, cosmos_emulator, ensure_tls
from devstack.processes import ManagedProcess, StartupError, free_port, http_ready
from verbatim.ledger.signing import ensure_local_key


@dataclass(frozen=True)
class StackPorts:
    azurite: AzuritePorts = field(default_factory=AzuritePorts)
    cosmos: int = 8081
    functions: int = 7071
    simulator: int = 7300
    recorder: int = 9441
    recorder_media: int = 9443

    @classmethod
    def free(cls) -> StackPorts:
        """Free ports instead of the well-known ones (tests, or a second stack beside the first)."""
        return cls(
            azurite=AzuritePorts(blob=free_port(), queue=free_port(), table=free_port()),
            cosmos=free_port(),
            functions=free_port(),
            simulator=free_port(),
            recorder=free_port(),
            recorder_media=free_port(),
        )


@dataclass(frozen=True)
class StackConfig:
    state_dir: Path = REPO_ROOT / ".devstack"
    ports: StackPorts = field(default_factory=StackPorts)
    task_hub: str = "verbatimlocal"
    with_simulator: bool = True
    with_recorder: bool = True

    @property
    def logs(self) -> Path:
        return self.state_dir / "logs"


@dataclass
class Component:
    name: str
    process: ManagedProcess
    url: str


def app_environment(config: StackConfig) -> dict[str, str]:
    """The app settings the Function App (and the recorder) run with on the devstack."""
    ports = config.ports
    tls = ensure_tls(config.state_dir / "tls")
    storage = ports.azurite.connection_string
    return {
        "AzureWebJobsStorage": storage,
        "RECORDINGS_STORAGE": storage,
        "DURABLE_TASK_HUB_NAME": config.task_hub,
        "COSMOS_ENDPOINT": f"https://127.0.0.1:{ports.cosmos}",
        "COSMOS_KEY": COSMOS_EMULATOR_KEY,
        "COSMOS_CA_CERT": str(tls.ca_cert),
        "GRAPH_BASE_URL": f"http://127.0.0.1:{ports.simulator}",
        "GRAPH_AUTHORITY_HOST": f"http://127.0.0.1:{ports.simulator}",
        "VERBATIM_ENVIRONMENT": "local",
        # Ledger checkpoints are signed with a local key made once in the state dir (Key Vault in Azure).
        "LEDGER_SIGNING_KEY_FILE": str(ensure_local_key(config.state_dir / "ledger" / "signing-key.pem")),
        # Azurite answers 501 to immutability policies and legal holds: tolerated only when this says so.
        "RECORDINGS_STORAGE_IS_EMULATOR": "true",
        # The coverage audit reads effective policies from the simulator's tenant API locally.
        "POLICY_SIMULATOR_URL": f"http://127.0.0.1:{ports.simulator}",
    }


def _optional_launcher(module: str) -> Callable[..., list[str]] | None:
    """A component's `launch_argv`, or None when that component is not part of this checkout yet."""
    try:
        launcher: Callable[..., list[str]] = importlib.import_module(module).launch_argv
    except (ModuleNotFoundError, AttributeError):
        return None
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
    ]
    simulator = _optional_launcher("devstack.simulator")
    if config.with_simulator and simulator is not None:
        components.append(
            Component(
                "simulator",
                ManagedProcess(
                    name="teams-graph-simulator",
                    argv=simulator(
                        host="127.0.0.1",
                        port=ports.simulator,
                        tenant_path=REPO_ROOT / "devstack" / "simulator" / "demo_tenant.yaml",
                        clock="realtime",
                    ),
                    ready=http_ready(f"http://127.0.0.1:{ports.simulator}/sim/health", ok=lambda s: s == 200),
                    env=env,
                    cwd=REPO_ROOT,
                    log_path=logs / "simulator.log",
                    ports=(ports.simulator,),
                ),
                f"http://127.0.0.1:{ports.simulator} (Graph under /v1.0 and /beta, control under /sim)",
            )
        )
    functions = _optional_launcher("devstack.funchost")
    if functions is None:
        raise StartupError("the local Functions host (devstack.funchost) is missing from this checkout")
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
                env=env,
                cwd=REPO_ROOT,
                log_path=logs / "functions.log",
                ports=(ports.functions,),
            ),
            f"http://127.0.0.1:{ports.functions}/api (health: /api/health)",
        )
    )
    recorder = _optional_launcher("recorder_vm")
    if config.with_recorder and recorder is not None:
        components.append(
            Component(
                "recorder",
                ManagedProcess(
                    name="recorder",
                    argv=recorder(
                        host="127.0.0.1",
                        port=ports.recorder,
                        media_port=ports.recorder_media,
                        state_dir=config.state_dir / "recorder",
                    ),
                    ready=http_ready(f"http://127.0.0.1:{ports.recorder}/health", ok=lambda s: s == 200),
                    env=env,
                    cwd=REPO_ROOT,
                    log_path=logs / "recorder.log",
                    ports=(ports.recorder, ports.recorder_media),
                ),
                f"http://127.0.0.1:{ports.recorder}/api/calling (media ws :{ports.recorder_media})",
            )
        )
    return components


def provision(config: StackConfig) -> None:
    """Create the Cosmos database and containers, blob containers and queues (idempotent)."""
    from devstack.provision import provision_cosmos, provision_storage
    from verbatim.settings import Settings

    settings = Settings.model_validate(app_environment(config))
    provision_storage(settings)
    provision_cosmos(settings)


@contextmanager
def running(config: StackConfig, echo: Callable[[str], None] = print) -> Iterator[list[Component]]:
    """Start every component (failing fast with a clear message), yield them, stop them in reverse."""
    config.state_dir.mkdir(parents=True, exist_ok=True)
    pid_file = config.state_dir / "pids"
    started: list[Component] = []
    try:
        for component in plan(config):
            echo(f"starting {component.name} ...")
            component.process.start()
            started.append(component)
            pid_file.write_text("".join(f"{c.name} {c.process.pid}\n" for c in started))
            component.process.wait_ready()
            if component.name == "cosmos":
                provision(config)
        yield started
    finally:
        for component in reversed(started):
            component.process.stop()
        pid_file.unlink(missing_ok=True)


def wait_for_shutdown() -> None:
    """Block until Ctrl-C or SIGTERM."""
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    while not stop.wait(1.0):
        pass


def print_summary(components: list[Component], config: StackConfig, echo: Callable[[str], None] = print) -> None:
    width = max(len(c.name) for c in components)
    echo("\nVerbatim is running on 127.0.0.1:")
    for component in components:
        echo(f"  {component.name.ljust(width)}  {component.url}   (pid {component.process.pid})")
    echo(f"\nlogs: {config.logs}   state: {config.state_dir}")
    echo("stop with Ctrl-C")


def run_forever(config: StackConfig, after_start: Callable[[list[Component]], None] | None = None) -> int:
    try:
        with running(config) as components:
            print_summary(components, config)
            if after_start is not None:
                after_start(components)
            sys.stdout.flush()
            wait_for_shutdown()
            print("\nstopping ...")
    except StartupError as error:
        print(f"verbatim up: {error}", file=sys.stderr)
        return 1
    return 0
