"""UpdateStream: every subscriber sees every later event; the first one also gets the backlog."""

from __future__ import annotations

import asyncio

from cryptoarena.trading.exchange.updates import UpdateStream


async def test_backlog_goes_to_the_first_subscriber_then_fan_out() -> None:
    stream: UpdateStream[int] = UpdateStream(backlog_limit=3)
    for n in range(5):
        stream.publish(n)  # nobody listens yet: the oldest two are dropped
    first = stream.subscribe()
    second = stream.subscribe()
    stream.publish(5)
    stream.close()
    got_first = [e async for e in first]
    got_second = [e async for e in second]
    assert got_first == [2, 3, 4, 5]
    assert got_second == [5]


async def test_a_slow_consumer_loses_nothing() -> None:
    stream: UpdateStream[int] = UpdateStream()
    received: list[int] = []

    async def consume() -> None:
        async for e in stream.subscribe():
            received.append(e)
            await asyncio.sleep(0)

    task = asyncio.create_task(consume())
    await asyncio.sleep(0)
    for n in range(1000):
        stream.publish(n)
    stream.close()
    await asyncio.wait_for(task, 5)
    assert received == list(range(1000))


def test_a_synchronous_subscriber_gets_the_backlog_and_is_woken_once_per_empty_queue() -> None:
    stream: UpdateStream[int] = UpdateStream()
    stream.publish(1)  # before anyone listens: kept
    wakes: list[int] = []
    pending = stream.subscribe_sync(lambda: wakes.append(1))
    assert list(pending) == [1] and len(wakes) == 1
    stream.publish(2)  # not empty: the owner was already woken
    assert list(pending) == [1, 2] and len(wakes) == 1
    pending.clear()  # the owner drained it
    stream.publish(3)
    assert list(pending) == [3] and len(wakes) == 2
