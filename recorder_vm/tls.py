"""Reload the recorder's TLS certificate when its PEM files change, without a restart.

The Key Vault extension installs a renewed certificate and recorder_vm/deploy/renew-certificate.ps1
exports it over the PEM files; loading them into the listeners' SSLContext again makes every new
connection present the renewed certificate (`SSLContext.load_cert_chain` replaces the context's chain;
established connections keep theirs). Only the media platform needs a restart for it, which the renewal
script schedules for an idle moment.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from pathlib import Path

log = logging.getLogger(__name__)


class TlsReloader:
    def __init__(self, context: ssl.SSLContext, cert_file: str, key_file: str) -> None:
        self._context = context
        self._cert, self._key = Path(cert_file), Path(key_file)
        self._seen = self._stamp()
        self.reloads = 0

    def _stamp(self) -> tuple[int, int]:
        return self._cert.stat().st_mtime_ns, self._key.stat().st_mtime_ns

    def check(self) -> bool:
        """Load the files again if they changed since last time; True when reloaded."""
        try:
            stamp = self._stamp()
        except OSError as error:  # being replaced right now: next time
            log.warning("TLS certificate files unreadable", extra={"error": type(error).__name__})
            return False
        if stamp == self._seen:
            return False
        try:
            # Check the pair on a scratch context first: a failed load_cert_chain can leave a context with the
            # new certificate and the old key, and the live one must keep serving what it has.
            ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(self._cert, self._key)
            self._context.load_cert_chain(self._cert, self._key)
        except (OSError, ssl.SSLError) as error:  # half-written (cert and key out of step): next time
            log.warning("TLS certificate not reloaded yet", extra={"error": type(error).__name__})
            return False
        self._seen = stamp
        self.reloads += 1
        log.info("TLS certificate reloaded", extra={"cert_file": str(self._cert)})
        return True

    async def run(self, interval: float = 60.0) -> None:
        while True:
            await asyncio.sleep(interval)
            self.check()
