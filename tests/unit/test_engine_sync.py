import asyncio

import pytest
from cryptoarena.trading.engine.sync import WouldWait, run_now


async def _add(a: int, b: int) -> int:
    async def inner() -> int:  # awaiting a coroutine that never waits does not suspend
        return a + b

    return await inner()


async def _sleeps() -> int:
    await asyncio.sleep(0)
    return 1


def test_run_now_returns_the_result_of_a_coroutine_that_never_waits() -> None:
    assert run_now(_add(2, 3)) == 5


def test_run_now_refuses_a_coroutine_that_waits_and_closes_it() -> None:
    coro = _sleeps()
    with pytest.raises(WouldWait, match="_sleeps"):
        run_now(coro)
    assert coro.cr_frame is None  # closed: no "never awaited" warning, nothing left running


def test_run_now_propagates_the_coroutines_own_error() -> None:
    async def boom() -> None:
        raise ValueError("bad bar")

    with pytest.raises(ValueError, match="bad bar"):
        run_now(boom())
