"""One turn's answers, sent in order by a task of their own, so the bot's turn does not wait.

Why: Rasa runs a turn as one coroutine and hands over each bot message as soon as its action has
run (`MessageProcessor._send_bot_messages`, after every action of the prediction loop). Awaiting
the Graph API there suspends the turn in the middle, with its tracker, its featurised states and
the policies' working sets alive and the conversation's lock held, and the event loop starts
another conversation's turn beside it. Measured with the sample bot (`bench/bench_turn.py`, 10
conversations at a time): twice as many young garbage collections, their survivors promoted
towards Rasa's 0.3 s full collections, and the Rasa process spending about 1.5 ms more CPU per
turn than with the answers sent after the turn.

Here `send` only queues the answer, and one task per turn sends the queue in order, as soon as the
event loop is free: when the turn waits for something (the action server, a remote tracker store),
or when it ends. The adapter awaits `flush()` once the turn is over, so a turn still ends only
after its answers went out (the durable queue acknowledges it then, as before). `Outbound.send`
never raises for a Graph API failure; anything else raised while sending is logged and the next
answer is sent, as a Graph API failure is.
"""

import asyncio
import logging
from collections import deque
from collections.abc import Mapping
from typing import Any

from connectors.whatsapp.core.outbound import Outbound

logger = logging.getLogger(__name__)


class TurnSender:
    """Sends the answers handed to `send`, in order, from one business number."""

    __slots__ = ("_outbound", "_phone_number_id", "_task", "_waiting")

    def __init__(self, outbound: Outbound, phone_number_id: str | None = None) -> None:
        self._outbound = outbound
        self._phone_number_id = phone_number_id
        self._waiting: deque[tuple[str, Mapping[str, Any]]] = deque()
        self._task: asyncio.Task[None] | None = None

    def send(self, conversation_id: str, message: Mapping[str, Any]) -> None:
        """Queue one bot message; it is sent after those queued before it."""
        self._waiting.append((conversation_id, message))
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._send_waiting())

    async def flush(self) -> None:
        """Wait until every message queued so far was sent (or failed, logged).

        Cancelling the wait cancels the sends still queued, as cancelling a turn that sent its
        answers itself did.
        """
        while self._task is not None and not self._task.done():
            await self._task

    async def _send_waiting(self) -> None:
        while self._waiting:
            conversation_id, message = self._waiting.popleft()
            try:
                await self._outbound.send(
                    conversation_id, message, phone_number_id=self._phone_number_id
                )
            except Exception:
                logger.exception("A bot message to %s was not sent.", conversation_id)
