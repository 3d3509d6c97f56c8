"""The simulated clock: timers fire in time order during an advance, each seeing its own due time,
work they start finishes before the advance returns, and the real-time mode fires timers by itself."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from devstack.simulator.clock import Clock

START = datetime(2030, 1, 1, tzinfo=UTC)


def test_advance_fires_due_timers_in_order_at_their_due_time() -> None:
    async def body() -> None:
        clock = Clock("simulated", START)
        seen: list[tuple[str, datetime]] = []
        clock.call_later(30, lambda: seen.append(("b", clock.now())))
        clock.call_later(10, lambda: seen.append(("a", clock.now())))
        handle = clock.call_later(20, lambda: seen.append(("cancelled", clock.now())))
        handle.cancel()
        clock.call_later(3600, lambda: seen.append(("later", clock.now())))
        assert await clock.advance(timedelta(seconds=60)) == 2
        assert seen == [("a", START + timedelta(seconds=10)), ("b", START + timedelta(seconds=30))]
        assert clock.now() == START + timedelta(seconds=60) and clock.pending() == 1
        with pytest.raises(ValueError):
            await clock.advance(timedelta(seconds=-1))

    asyncio.run(body())


def test_chains_of_timers_and_their_background_work_complete_within_one_advance() -> None:
    async def body() -> None:
        clock = Clock("simulated", START)
        attempts: list[datetime] = []

        async def attempt() -> None:
            await asyncio.sleep(0)
            attempts.append(clock.now())
            if len(attempts) < 5:
                clock.call_later(60 * len(attempts), lambda: clock.spawn(attempt()))

        clock.spawn(attempt())
        await clock.advance(timedelta(hours=1))
        assert [(a - START).total_seconds() for a in attempts] == [0, 60, 180, 360, 600]

    asyncio.run(body())


def test_time_stands_still_in_simulated_mode_and_moves_in_realtime_mode() -> None:
    async def body() -> None:
        frozen = Clock("simulated", START)
        await asyncio.sleep(0.05)
        assert frozen.now() == START
        live = Clock("realtime")
        live.start()
        fired = asyncio.Event()
        live.call_later(0.05, fired.set)
        await asyncio.wait_for(fired.wait(), timeout=2)
        before = live.now()
        await live.advance(timedelta(hours=2))
        assert live.now() - before >= timedelta(hours=2)
        await live.stop()

    asyncio.run(body())
