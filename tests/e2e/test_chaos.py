"""Issue 23, the short chaos run inside `make test`: the whole local stack on free ports, seeded traffic (1:1 calls,
PSTN calls, meetings with joins and leaves, policy users and people no policy records, 3 at a time for 30 s) while a
recorder is killed and restarted, storage and the Functions host are paused, Graph answers 503 and a queue message is
held back behind later ones, with one recorder's and the Functions host's clocks skewed — then, once the stack has
settled, every invariant of `devstack.chaos.invariants` and `devstack.chaos.audit` must hold. The plan is a pure
function of the seed (`VERBATIM_CHAOS_SEED`, default 23); nothing here is timed. `make chaos SEED=N` runs the long
version."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from devstack.chaos.run import PROFILES, render, run_chaos

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

SEED = int(os.environ.get("VERBATIM_CHAOS_SEED", "23"))


def test_faults_injected_while_calls_flow_break_no_invariant(tmp_path: Path) -> None:
    report = run_chaos(SEED, PROFILES["ci"], state_dir=tmp_path / "chaos", echo=lambda _: None)
    assert report.faults and all(r.error is None for r in report.faults), render(report)
    assert report.ok, render(report)
