"""Background work, in order per sender, that is finished before the process stops.

Meta wants a fast 200, so a webhook is acknowledged before the bot runs. The work then happens here:
one queue per sender, so that a user's messages reach the bot in the order they arrived, while
different users are served concurrently. On shutdown `drain` waits for what was accepted, so a
message acknowledged to Meta (which will not redeliver it) is not lost by a restart.
"""

import asyncio
import functools
import logging
from collections import deque
from collections.abc import Awaitable, Callable

logger = logging.getLogger(__name__)

Job = Callable[[], Awaitable[None]]


class SenderQueues:
    """Runs jobs sequentially per key and concurrently across keys, on the running event loop.

    `submit` is synchronous and never blocks, so an adapter can call it right before answering.
    A job that raises is logged and does not stop the jobs after it.
    """

    def __init__(self) -> None:
        self._queues: dict[str, deque[Job]] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._idle = asyncio.Event()
        self._idle.set()
        self._accepting = True
        self._pending = 0

    @property
    def pending(self) -> int:
        """Jobs accepted and not finished yet (queued or running)."""
        return self._pending

    @property
    def accepting(self) -> bool:
        """False once `drain` began."""
        return self._accepting

    def submit(self, key: str, job: Job) -> bool:
        """Queue `job` behind the other jobs of `key`. False (and not queued) once draining."""
        if not self._accepting:
            return False
        self._queues.setdefault(key, deque()).append(job)
        self._pending += 1
        if key not in self._workers:
            self._idle.clear()
            worker = asyncio.get_running_loop().create_task(
                self._work(key), name=f"whatsapp-sender-{key}"
            )
            worker.add_done_callback(functools.partial(self._cancelled_unstarted, key))
            self._workers[key] = worker
        return True

    async def drain(self, timeout: float) -> bool:
        """Stop accepting, then wait up to `timeout` s for every job. True if all finished."""
        self._accepting = False
        if not self._workers:
            return True
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except asyncio.TimeoutError:
            logger.error("Shutdown: %d accepted message(s) not processed in time.", self.pending)
            return False
        return True

    async def join(self) -> None:
        """Wait until no job is queued or running (without refusing new ones)."""
        await self._idle.wait()

    async def _work(self, key: str) -> None:
        queue = self._queues[key]
        try:
            while queue:
                job = queue.popleft()
                try:
                    await job()
                except Exception:
                    logger.exception("Processing a message from %s failed.", key)
                finally:
                    self._pending -= 1
        finally:
            self._forget(key)

    def _forget(self, key: str) -> None:
        """The worker of `key` has ended; jobs still queued behind it (it was cancelled) are
        dropped, and said so."""
        dropped = len(self._queues.pop(key))
        del self._workers[key]
        if dropped:
            self._pending -= dropped
            logger.error(
                "%d accepted message(s) from %s were not processed: cancelled.", dropped, key
            )
        if not self._workers:
            self._idle.set()

    def _cancelled_unstarted(self, key: str, worker: "asyncio.Task[None]") -> None:
        """A worker cancelled before its first step never runs `_work`'s `finally`: without
        this, its key kept a dead worker, later jobs of the key were never run and `join`
        waited for ever. (Only an event loop shutting down cancels workers.) Any other ending
        has already forgotten the worker, so this does nothing then."""
        if self._workers.get(key) is worker:
            self._forget(key)
