"""The garbage collector and a recorder that has started: what was built to start (modules, the Azure SDK's and
the web framework's objects, clients) lives as long as the process, so it is moved out of the collector's sight
once, and full collections walk only what calls create.

Why: a full collection walks every tracked object with the interpreter held. A started recorder tracks ~120,000
objects before its first call, and at 400 calls full collections ran every few seconds (the frames and blocks of
the calls fill the younger generations) and took 84-504 ms each: every thread — the media platform's callbacks,
the capture worker, signalling — waits that long. With the start-up objects frozen they took 26-51 ms
(benchmarks/recorder_capacity.py, 400 calls, 2026-12-07). `gc.freeze` does this: "Freeze all the objects tracked by
the garbage collector; move them to a permanent generation and ignore them in all the future collections" (Python
docs, gc). A frozen object is never collected, so only long-lived ones are frozen: after a collection, once the
recorder has started.
"""

from __future__ import annotations

import gc


def freeze_startup_objects() -> int:
    """Collect, then move every object that survived into the permanent generation; returns how many there are."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
