"""Start local programs on 127.0.0.1, wait until they are ready, and stop them by PID.

Used by `verbatim-dev up` and by the test fixtures alike, so tests run the same processes as the devstack.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx

ReadyCheck = Callable[[], bool]


class StartupError(RuntimeError):
    """A component could not be started; the message says which and why."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """No socket listens on (or is bound to) the port. Connections of a stopped server that linger in
    TIME_WAIT do not count: servers bind with SO_REUSEADDR past them, and so does this check, so a component
    can be restarted on its ports at once."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def tcp_ready(port: int, host: str = "127.0.0.1") -> ReadyCheck:
    def check() -> bool:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            return False

    return check


def http_ready(
    url: str, *, ca_cert: Path | None = None, ok: Callable[[int], bool] = lambda status: status < 500
) -> ReadyCheck:
    verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=str(ca_cert)) if ca_cert else True

    def check() -> bool:
        try:
            return ok(httpx.get(url, timeout=1.0, verify=verify).status_code)
        except httpx.HTTPError:
            return False

    return check


@dataclass
class ManagedProcess:
    """One child process in its own process group, with a readiness check and a log file."""

    name: str
    argv: Sequence[str]
    ready: ReadyCheck
    env: Mapping[str, str] | None = None
    cwd: Path | None = None
    log_path: Path | None = None
    ports: Sequence[int] = ()
    startup_timeout: float = 60.0
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)
    _log: IO[bytes] | None = field(default=None, init=False)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def start(self) -> None:
        taken = [port for port in self.ports if not port_is_free(port)]
        if taken:
            raise StartupError(
                f"{self.name}: port {', '.join(map(str, taken))} on 127.0.0.1 is already in use "
                "(another stack running? stop it, or choose other ports)"
            )
        executable = self.argv[0]
        if os.sep in executable and not Path(executable).exists():
            raise StartupError(f"{self.name}: {executable} is missing — run `make setup` (or `make run`)")
        if self.log_path:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = self.log_path.open("ab")
        try:
            self.process = subprocess.Popen(
                list(self.argv),
                env={**os.environ, **(self.env or {})},
                cwd=self.cwd,
                stdout=self._log or subprocess.DEVNULL,
                stderr=subprocess.STDOUT if self._log else subprocess.DEVNULL,
                start_new_session=True,
            )
        except FileNotFoundError as error:
            raise StartupError(f"{self.name}: cannot run {executable!r} ({error}); run `make setup`") from error

    def wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise StartupError(
                    f"{self.name} exited with code {self.process.returncode} during startup"
                    + (f"; see {self.log_path}" if self.log_path else "")
                    + self._log_tail()
                )
            if self.ready():
                return
            time.sleep(0.1)
        raise StartupError(f"{self.name} was not ready after {self.startup_timeout:.0f} s" + self._log_tail())

    def _log_tail(self) -> str:
        if not self.log_path or not self.log_path.exists():
            return ""
        tail = self.log_path.read_bytes()[-1500:].decode(errors="replace")
        return f"\n--- last lines of {self.log_path} ---\n{tail}"

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the process group, then SIGKILL it if it does not exit in time."""
        if self.process is None:
            return
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=5)
        if self._log:
            self._log.close()
            self._log = None

    def __enter__(self) -> ManagedProcess:
        self.start()
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
