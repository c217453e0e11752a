"""`queue: memory`: accepted messages wait in this process, in order per conversation.

Today's behaviour, bounded: beyond `max_pending` messages waiting or running, a webhook is refused
(`QueueFull`, so the endpoint answers 503 and Meta redelivers later) rather than letting memory
grow without limit. A turn that raises is logged and the conversation goes on (no retry: nothing
here survives the process anyway). On shutdown `drain` finishes what was accepted.
"""

import functools
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from connectors.whatsapp.core.events import InboundMessage
from connectors.whatsapp.core.ordering import SenderQueues
from connectors.whatsapp.core.queue import Handler, QueueFull, conversation_key

logger = logging.getLogger(__name__)


class MemoryIntake:
    """Per-conversation queues in this process (`SenderQueues`), with a bound."""

    mode = "memory"

    def __init__(self, *, max_pending: int = 10_000) -> None:
        if max_pending < 1:
            raise ValueError("max_pending must be at least 1")
        self.max_pending = max_pending
        self._handler: Handler | None = None
        self._queues: SenderQueues | None = None
        self.counters: dict[str, int] = {"refused_full": 0}

    @property
    def queues(self) -> SenderQueues:
        if self._queues is None:  # created on the running loop, not at import or start-up
            self._queues = SenderQueues()
        return self._queues

    @property
    def pending(self) -> int:
        return 0 if self._queues is None else self._queues.pending

    @property
    def accepting(self) -> bool:
        return self._queues is None or self._queues.accepting

    def bind(self, handler: Handler) -> None:
        self._handler = handler

    async def start(self) -> None:
        return None

    async def submit(self, messages: Sequence[InboundMessage]) -> int:
        """Queue the messages behind their conversations' others; how many (0 once draining).

        Raises:
            QueueFull: `max_pending` messages wait already; none of these was queued.
        """
        if self.pending >= self.max_pending:
            self.counters["refused_full"] += 1
            raise QueueFull(f"{self.pending} messages wait (max_pending {self.max_pending})")
        queued = 0
        for message in messages:
            if self.queues.submit(conversation_key(message), self._job(message)):
                queued += 1
        return queued

    async def drain(self, timeout: float) -> bool:
        return True if self._queues is None else await self._queues.drain(timeout)

    async def join(self) -> None:
        if self._queues is not None:
            await self._queues.join()

    async def stats(self) -> dict[str, Any]:
        return {"pending": self.pending, "max_pending": self.max_pending, **self.counters}

    async def close(self) -> None:
        return None

    def _job(self, message: InboundMessage) -> Callable[[], Awaitable[None]]:
        # A partial (2 objects the garbage collector tracks) rather than a closure (4): a burst
        # leaves thousands of these waiting, and every tracked object that outlives two young
        # collections brings the next full collection nearer (0.3 s in a Rasa process).
        # The handler itself, not a coroutine of ours around it: one frame less alive per
        # message while its turn waits for the Graph API.
        if self._handler is None:
            raise RuntimeError("MemoryIntake has no handler: call bind() first")
        return functools.partial(self._handler, message)
