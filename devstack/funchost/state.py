"""What the host keeps between runs in its state directory: its keys and its host id.

Keys are generated once (or taken from VERBATIM_FUNCHOST_MASTER_KEY / VERBATIM_FUNCHOST_FUNCTION_KEY)
and written with mode 0600. The host id names this host's timer status blobs in storage, as the real
host's id does, so a restart on the same state directory finds its schedules again.
"""

from __future__ import annotations

import hmac
import json
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

MASTER_KEY_SETTING = "VERBATIM_FUNCHOST_MASTER_KEY"
FUNCTION_KEY_SETTING = "VERBATIM_FUNCHOST_FUNCTION_KEY"
HOST_ID_SETTING = "AzureFunctionsWebHost__hostid"
KEYS_FILE = "keys.json"
HOST_ID_FILE = "host-id"


@dataclass(frozen=True)
class HostKeys:
    """The master key (admin level, and every function) and the host's function keys by name."""

    master: str
    function_keys: Mapping[str, str]

    @property
    def default_function_key(self) -> str:
        return self.function_keys["default"]

    def is_master(self, candidate: str | None) -> bool:
        return candidate is not None and hmac.compare_digest(candidate.encode(), self.master.encode())

    def opens_function(self, candidate: str | None) -> bool:
        """A function-level key, or the master key (which opens everything)."""
        if candidate is None:
            return False
        given = candidate.encode()
        # Compare against every key so the time taken does not tell which one nearly matched.
        results = [hmac.compare_digest(given, key.encode()) for key in (self.master, *self.function_keys.values())]
        return any(results)


def _new_key() -> str:
    return secrets.token_urlsafe(40)


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(text)


def load_or_create_keys(state_dir: Path, environ: Mapping[str, str] | None = None) -> HostKeys:
    """The host's keys: the environment's when set, else the state directory's, generated on first use."""
    environ = os.environ if environ is None else environ
    path = state_dir / KEYS_FILE
    stored: dict[str, object] = {}
    if path.exists():
        stored = json.loads(path.read_text(encoding="utf-8"))
    master = stored.get("masterKey")
    function_keys = stored.get("functionKeys")
    if not isinstance(master, str) or not isinstance(function_keys, dict) or "default" not in function_keys:
        master = _new_key()
        function_keys = {"default": _new_key()}
        _write_private(path, json.dumps({"masterKey": master, "functionKeys": function_keys}, indent=2) + "\n")
    keys = {str(name): str(value) for name, value in function_keys.items()}
    if environ.get(FUNCTION_KEY_SETTING):
        keys["default"] = environ[FUNCTION_KEY_SETTING]
    return HostKeys(master=environ.get(MASTER_KEY_SETTING) or master, function_keys=keys)


def load_or_create_host_id(state_dir: Path, script_root: Path, environ: Mapping[str, str] | None = None) -> str:
    """The host id: the AzureFunctionsWebHost__hostid setting, else one generated once per state directory.

    Like the real host's: lowercase letters, digits and dashes, at most 32 characters.
    """
    environ = os.environ if environ is None else environ
    if environ.get(HOST_ID_SETTING):
        return environ[HOST_ID_SETTING]
    path = state_dir / HOST_ID_FILE
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    stem = re.sub(r"[^a-z0-9]+", "-", script_root.resolve().name.lower()).strip("-")[:22] or "app"
    host_id = f"{stem}-{secrets.token_hex(4)}"
    _write_private(path, host_id + "\n")
    return host_id
