"""The fault matrix of docs/reliability.md from chaos reports: for each fault and component, how often it was injected,
what became of the calls up at the time (the simulator's outcome, the verdicts of their policy users) and which
invariants the runs broke. `python -m devstack.chaos.matrix .devstack/chaos/*/chaos-report.json`."""

from __future__ import annotations

import json
import re
import sys
from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

REACH = timedelta(seconds=10)
CONDITIONS = ("clock-skew", "spill-full")  # whole-run faults: every call was up while they held


def _overlaps(call: dict[str, Any], fault: dict[str, Any]) -> bool:
    placed = datetime.fromisoformat(call["placedAt"])
    ended = datetime.fromisoformat(call["endedAt"]) if call.get("endedAt") else placed
    start = datetime.fromisoformat(fault["startedAt"])
    end = datetime.fromisoformat(fault["endedAt"]) if fault.get("endedAt") else start
    return start <= ended + REACH and end >= placed


def matrix(reports: Sequence[dict[str, Any]]) -> list[str]:
    rows: dict[tuple[str, str], dict[str, Any]] = defaultdict(
        lambda: {"n": 0, "outcomes": Counter(), "verdicts": Counter()}
    )
    for report in reports:
        for fault in report["faults"]:
            # recorder instances (recorder, recorder-2, ...) are one row; the `recorder-events` queue is its own
            target = "recorder" if re.fullmatch(r"recorder(-\d+)?", fault["target"]) else fault["target"]
            row = rows[(fault["kind"], target)]
            row["n"] += 1
            for call in report["calls"]:
                if fault["kind"] not in CONDITIONS and not _overlaps(call, fault):
                    continue
                row["outcomes"][call.get("outcome") or "not placed"] += 1
                for verdict in call["verdicts"]:
                    reason = verdict.get("reason")
                    label = verdict["verdict"] + (f" ({reason})" if reason not in (None, "recorded") else "")
                    row["verdicts"][label] += 1
    lines = [
        "| fault | component | injected | calls up (simulator outcome) | their policy users' verdicts |",
        "|---|---|---|---|---|",
    ]
    for (kind, target), row in sorted(rows.items()):
        outcomes = ", ".join(f"{k} {v}" for k, v in row["outcomes"].most_common())
        verdicts = ", ".join(f"{k} {v}" for k, v in row["verdicts"].most_common())
        lines.append(f"| {kind} | {target} | {row['n']} | {outcomes or '-'} | {verdicts or '-'} |")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    paths = [Path(p) for p in (argv if argv is not None else sys.argv[1:])]
    reports = [json.loads(p.read_text(encoding="utf-8")) for p in paths]
    for report, path in zip(reports, paths, strict=True):
        broken = [i["name"] for i in report["invariants"] if not i["ok"]]
        print(
            f"{path}: seed {report['seed']} ({report['profile']}), {len(report['calls'])} calls, "
            f"{len(report['faults'])} faults, {report['seconds']:.0f} s, load {report['loadAverage']}: "
            + ("every invariant holds" if not broken else "BROKEN " + ", ".join(broken))
        )
    print()
    print("\n".join(matrix(reports)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
