"""The invitation storm's Graph in a process of its own (`invitation_storm.py --platform graph-process`).

FakePlatform's Graph — `answer`, `reject`, `updateRecordingStatus`, the platform's key set, the token endpoint, over
TLS: its own routes and handlers, unchanged — on a loop that posts no notification. Each answer is stamped by
FakePlatform's handler, as in one-loop mode; then each answer, rejection and recording status is reported on stdout,
one JSON array a line, to the driver (which establishes the call on the answer's callbackUri). Reads its settings
(state directory, port, signing key: the driver's, so both processes are one platform) as the first line of stdin
and serves until stdin closes. Monotonic stamps are comparable across processes: Linux CLOCK_MONOTONIC is
system-wide.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from pathlib import Path
from typing import Any, cast

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aiohttp import web  # noqa: E402
from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: E402

from devstack.testkit.teams_platform import FakePlatform, SigningKey  # noqa: E402


class GraphSide(FakePlatform):
    """FakePlatform, reporting each answer, rejection and recording status as it serves them."""

    _lock = threading.Lock()

    @staticmethod
    def report(*message: Any) -> None:
        with GraphSide._lock:
            sys.stdout.write(json.dumps(message) + "\n")
            sys.stdout.flush()

    async def _call_action(self, request: web.Request) -> web.Response:
        response = await super()._call_action(request)
        call_id, action = request.match_info["call_id"], request.match_info["action"]
        record = self.calls[call_id]
        if action == "answer" and response.status == 202 and record.answer is not None:
            self.report("answer", call_id, record.answered_at, record.answer.get("callbackUri"))
        elif action == "reject":
            self.report("reject", call_id, record.rejected)
        elif action == "updateRecordingStatus" and response.status == 200:
            self.report("status", call_id, record.statuses[-1])
        return response


def main() -> int:
    # No options: started by invitation_storm.py, which sends the settings on stdin; `--help` says what this is.
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    settings = json.loads(sys.stdin.readline())
    private = cast(rsa.RSAPrivateKey, serialization.load_pem_private_key(settings["key"].encode(), password=None))
    graph = GraphSide(Path(settings["state_dir"]), port=settings["port"], key=SigningKey(settings["kid"], private))
    graph.start()
    try:
        GraphSide.report("ready")
        sys.stdin.read()  # until the driver closes it
    finally:
        graph.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
