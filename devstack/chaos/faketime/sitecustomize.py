"""Loaded at start-up by a component whose clock the chaos run skews (`PYTHONPATH` of the clock-skew fault,
devstack/chaos/faults.py): `time.sleep` waits with `select` instead of Python 3.11's
`clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME)`, which libfaketime 0.9.10 breaks when it leaves the monotonic
clock alone (`FAKETIME_DONT_FAKE_MONOTONIC=1`): every sleep failed with `OSError: [Errno 22] Invalid argument`
(wolfcw/libfaketime#426). `select` takes a relative timeout, which a fixed clock offset does not change. The
monotonic clock must stay real: faked, a lock's or a queue's timeout never expires (the kernel is handed the faked
deadline). Nothing else of the component changes."""

from __future__ import annotations

import select
import time
from typing import SupportsIndex


def _sleep(secs: float | SupportsIndex, /) -> None:
    seconds = float(secs)
    if seconds < 0:
        raise ValueError("sleep length must be non-negative")
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        select.select([], [], [], left)


time.sleep = _sleep
