"""The Windows service that runs the recorder (`python windows_service.py --startup auto install`).

The service starts `python -m recorder_vm` with the environment install.ps1 wrote (a JSON file readable by
SYSTEM and Administrators only). On stop it asks the recorder for a graceful shutdown (loopback
`POST /admin/shutdown`: commit what was captured, report, leave the calls) and waits for it before
killing. Restart-on-failure is configured on the service by install.ps1 (`sc.exe failure`): when the
recorder exits on its own, the service stops with an error so the service manager restarts it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

SERVICE_NAME = "VerbatimRecorder"
ENVIRONMENT_FILE = Path(os.environ.get("VERBATIM_RECORDER_ENV", r"C:\verbatim\config\recorder.env.json"))
STOP_TIMEOUT_SECONDS = 120


def recorder_command(python: str, environment: dict[str, str]) -> list[str]:
    """The recorder's command line; listen addresses come from the environment. The interpreter is the venv's
    (VERBATIM_PYTHON, written by install.ps1): inside the service, sys.executable is pywin32's host."""
    interpreter = environment.get("VERBATIM_PYTHON") or python
    return [
        interpreter,
        "-m",
        "recorder_vm",
        "--state-dir",
        environment.get("RECORDER_STATE_DIR", r"C:\verbatim\state"),
    ]


def load_environment(path: Path = ENVIRONMENT_FILE) -> dict[str, str]:
    values: dict[str, Any] = json.loads(path.read_text(encoding="utf-8-sig"))
    return {str(key): str(value) for key, value in values.items()}


def request_shutdown(port: str, timeout: float = 5.0) -> None:
    """Ask the recorder to stop gracefully, on its plain-HTTP loopback admin port."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}/admin/shutdown", method="POST", data=b"")
    with urllib.request.urlopen(request, timeout=timeout):  # noqa: S310 - fixed loopback URL
        pass


def _service_class() -> Any:
    import servicemanager
    import win32event
    import win32service
    import win32serviceutil

    class RecorderService(win32serviceutil.ServiceFramework):  # type: ignore[misc]
        _svc_name_ = SERVICE_NAME
        _svc_display_name_ = "Verbatim compliance recorder"
        _svc_description_ = "Answers Teams policy-recording invitations and captures the audio losslessly."

        def __init__(self, args: Any) -> None:
            super().__init__(args)
            self._stop = win32event.CreateEvent(None, 0, 0, None)
            self._process: subprocess.Popen[bytes] | None = None
            self._environment: dict[str, str] = {}

        def SvcStop(self) -> None:
            self.ReportServiceStatus(win32service.SERVICE_STOP_PENDING, waitHint=STOP_TIMEOUT_SECONDS * 1000)
            win32event.SetEvent(self._stop)

        def SvcDoRun(self) -> None:
            self._environment = load_environment()
            environment = {**os.environ, **self._environment}
            self._process = subprocess.Popen(recorder_command(sys.executable, self._environment), env=environment)
            servicemanager.LogInfoMsg(f"{SERVICE_NAME}: recorder started (pid {self._process.pid})")
            while True:
                if win32event.WaitForSingleObject(self._stop, 1000) == win32event.WAIT_OBJECT_0:
                    self._graceful_stop()
                    return
                if self._process.poll() is not None:
                    # Exiting with an error makes the service manager apply the failure actions (restart).
                    servicemanager.LogErrorMsg(f"{SERVICE_NAME}: recorder exited with {self._process.returncode}")
                    raise SystemExit(1)

        def _graceful_stop(self) -> None:
            assert self._process is not None
            try:
                request_shutdown(self._environment.get("RECORDER_ADMIN_PORT", "9440"))
                self._process.wait(timeout=STOP_TIMEOUT_SECONDS)
            except Exception:
                self._process.kill()

    return RecorderService


def main() -> None:
    import win32serviceutil

    win32serviceutil.HandleCommandLine(_service_class())


if __name__ == "__main__":
    main()
