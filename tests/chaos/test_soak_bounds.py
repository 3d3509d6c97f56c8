"""The soak's bounds (`devstack.chaos.soak.bounds`) over a made-up series (no stack): the RSS bound judges Verbatim's
own processes; the stand-ins for services that are not ours (the Cosmos emulator, Azurite, the simulator, the TSA,
the witness) have their growth reported with its trend, and their descriptors and threads are still bounded."""

from __future__ import annotations

from typing import Any

from devstack.chaos.soak import Series, bounded_memory, bounds


def series(rss: dict[str, tuple[float, float]], fds: dict[str, tuple[int, int]] | None = None) -> Series:
    """100 samples over 1,000 s; each component's RSS goes linearly from the first value to the second."""
    samples: list[dict[str, Any]] = []
    for i in range(100):
        sample: dict[str, Any] = {"at": i * 10.0, "queues": {}}
        for name, (start, end) in rss.items():
            low, high = (fds or {}).get(name, (10, 10))
            sample[name] = {
                "rss_mib": start + (end - start) * i / 99,
                "fds": low if i < 50 else high,
                "threads": 5,
            }
        samples.append(sample)
    return Series(samples=samples)


def judged(results: list[tuple[str, bool, str]]) -> dict[str, tuple[bool, str]]:
    return {check: (ok, figures) for check, ok, figures in results}


def test_only_verbatims_own_processes_are_held_to_the_rss_bound() -> None:
    assert [bounded_memory(n) for n in ("functions", "recorder", "recorder-2")] == [True, True, True]
    assert [bounded_memory(n) for n in ("cosmos", "azurite", "simulator", "tsa", "witness")] == [False] * 5

    results = judged(bounds(series({"functions": (200, 260), "recorder": (200, 205), "cosmos": (100, 150)}), 1000.0))

    assert results["functions RSS growth < 10 %"][0] is False  # a leak of ours fails the soak
    assert results["recorder RSS growth < 10 %"][0] is True
    ok, figures = results["cosmos RSS (not ours: reported)"]
    assert ok and "MiB/min" in figures and "R^2 1.00" in figures  # reported with its trend, not judged
    assert "cosmos RSS growth < 10 %" not in results


def test_a_stand_ins_descriptors_and_threads_are_still_bounded() -> None:
    results = judged(bounds(series({"cosmos": (100, 100)}, fds={"cosmos": (20, 40)}), 1000.0))

    assert results["cosmos fds do not grow"] == (False, "20 -> 40")
    assert results["cosmos threads do not grow"][0] is True
