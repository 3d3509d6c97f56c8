"""`python -m devstack.chaos [--seed N] [--profile full|ci] [--schedule FILE]` (`make chaos SEED=N`): one chaos run
on a stack of its own; exit 0 when every invariant holds, 1 when one is violated, 2 when the run could not start."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from devstack.chaos.faults import load_schedule
from devstack.chaos.run import PROFILES, plan, render, run_chaos
from devstack.processes import StartupError


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.chaos", description=__doc__)
    parser.add_argument("--seed", type=int, default=1, help="seeds the traffic and the fault schedule (default 1)")
    parser.add_argument("--profile", choices=sorted(PROFILES), default="full", help="run size (default full)")
    parser.add_argument("--schedule", type=Path, help="a scripted fault schedule (JSON list) instead of a random one")
    parser.add_argument("--state-dir", type=Path, help="where the run's stack keeps data, logs and the report")
    parser.add_argument("--plan", action="store_true", help="print the traffic and fault plan and exit")
    args = parser.parse_args(argv)
    profile = PROFILES[args.profile]
    schedule = load_schedule(args.schedule) if args.schedule else None
    if args.plan:
        calls, faults = plan(args.seed, profile)
        for call in calls:
            print(f"call  +{call.at:6.1f} s  {call.seconds:5.1f} s  {call.scenario.key}")
        for fault in schedule or faults:
            print(f"fault +{fault.at:6.1f} s  {fault.describe()}")
        return 0
    try:
        report = run_chaos(args.seed, profile, state_dir=args.state_dir, schedule=schedule)
    except StartupError as error:
        print(f"chaos: the stack did not start: {error}", file=sys.stderr)
        return 2
    print(render(report))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
