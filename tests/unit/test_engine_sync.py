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


def test_soon_runs_what_was_ready_in_order_and_later_work_on_the_next_pass() -> None:
    from cryptoarena.trading.engine.sync import Soon

    soon = Soon()
    ran: list[str] = []

    async def fetch() -> None:
        ran.append("fetch")
        soon.call_soon(lambda: ran.append("queued by fetch"))  # a task created now

    soon.call_soon(lambda: ran.append("drain"))
    task = soon.spawn(fetch())
    assert not task.done()
    run_now(soon.pause())  # the synchronous sleep(0): never suspends
    assert ran == ["drain", "fetch"] and task.done()
    soon.run_ready()
    assert ran == ["drain", "fetch", "queued by fetch"]


def test_soon_join_runs_until_the_task_is_done_and_cancel_closes_it() -> None:
    from cryptoarena.trading.engine.sync import Soon

    soon = Soon()

    async def answer() -> int:
        return 42

    task = soon.spawn(answer())
    run_now(soon.join(task))
    assert task.done()
    never = soon.spawn(answer())
    assert never.cancel() and never.done()
    soon.run_ready()  # the cancelled task's turn does nothing
    with pytest.raises(WouldWait):
        run_now(soon.join(type("Pending", (), {"done": lambda self: False})()))
