"""Waiting in a test with a bound that holds even when a cancellation is lost."""

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


async def within(seconds: float, awaitable: Awaitable[T], what: str = "it") -> T:
    """Await `awaitable` for at most `seconds`, else fail, without waiting for it to stop.

    `asyncio.wait_for` cancels at its bound and then waits for the awaitable to end. redis-py 4.6
    on Python 3.10 can lose that cancellation: it checks a pooled connection under
    `async_timeout(0)`, whose own timeout absorbs a cancellation landing then
    (https://github.com/aio-libs-abandoned/async-timeout/issues/229). A `join()` that polls Redis
    then never ended, and a test failing at its bound hung the whole run instead. Here the
    awaitable is cancelled and left: if it goes on, it ends with the test's event loop.
    """
    task = asyncio.ensure_future(awaitable)
    done, _ = await asyncio.wait({task}, timeout=seconds)
    if not done:
        task.cancel()
        # Its end, whenever it comes, is retrieved: no "exception was never retrieved" noise.
        task.add_done_callback(lambda ended: ended.cancelled() or ended.exception())
        raise AssertionError(f"{what} did not end within {seconds:g} s")
    return task.result()
