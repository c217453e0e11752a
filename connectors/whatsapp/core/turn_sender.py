"""One turn's answers, sent in order by a task of their own, so the bot's turn does not wait.

Why: Rasa runs a turn as one coroutine and hands over each bot message as soon as its action has
run (`MessageProcessor._send_bot_messages`, after every action of the prediction loop). Awaiting
the Graph API there suspends the turn in the middle, with its tracker, its featurised states and
the policies' working sets alive and the conversation's lock held, and the event loop starts
another conversation's turn beside it. Measured with the sample bot (`bench/bench_turn.py`, 10
conversations at a time): twice as many young garbage collections, their survivors promoted
towards Rasa's 0.3 s full collections, and about 1 ms more CPU per turn in the Rasa process than
with the answers sent once the turn lets go of the event loop.

Here `enqueue` only queues the answer, and a task (one at a time per turn) sends the queue in
order as soon as the event loop is free: when the turn waits for something (the action server, a
remote tracker store), or when it ends. The adapter awaits `flush()` once the turn is over, so a
turn still ends only after its answers went out (the durable queue acknowledges it then, as
before). A turn that is cancelled (shutdown) `discard`s what it has not sent, as a turn stopped
half-way never produced the rest.

Rasa's lock on the conversation is released when the turn returns, before its answers are out:
`unsent` (shared by the channel's outputs) names the conversations whose answers are still going
out, and a send from outside the turn (trigger_intent, a reminder) waits for them with
`wait_for_answers` instead of overtaking them.

`Outbound.send` never raises for a Graph API failure; anything else raised while sending is
logged, counted as a send failure, and the next answer is sent, as after a Graph API failure.
"""

import asyncio
import logging
from collections import deque
from collections.abc import Mapping
from typing import Any

from connectors.whatsapp.core.outbound import Outbound

logger = logging.getLogger(__name__)


class TurnSender:
    """Sends the answers handed to `enqueue`, in order, from one business number."""

    __slots__ = (
        "_conversations",
        "_handed",
        "_outbound",
        "_phone_number_id",
        "_task",
        "_turn_id",
        "_unsent",
        "_waiting",
    )

    def __init__(
        self,
        outbound: Outbound,
        phone_number_id: str | None = None,
        *,
        unsent: dict[str, "TurnSender"] | None = None,
        turn_id: str | None = None,
    ) -> None:
        """`turn_id`: the inbound message's id; each answer is sent as "<turn_id>:<n>", so that a
        turn run again does not send its answers twice (`Outbound.send`'s `answer_key`)."""
        self._outbound = outbound
        self._turn_id = turn_id
        self._handed = 0
        self._phone_number_id = phone_number_id
        self._unsent = unsent
        self._waiting: deque[tuple[str, Mapping[str, Any], str | None]] = deque()
        self._conversations: list[str] = []
        self._task: asyncio.Task[None] | None = None

    def enqueue(self, conversation_id: str, message: Mapping[str, Any]) -> None:
        """Queue one bot message; it is sent after those queued before it."""
        key = f"{self._turn_id}:{self._handed}" if self._turn_id is not None else None
        self._handed += 1
        self._waiting.append((conversation_id, message, key))
        if self._unsent is not None and self._unsent.get(conversation_id) is not self:
            self._unsent[conversation_id] = self
            self._conversations.append(conversation_id)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._send_waiting())

    async def flush(self) -> None:
        """Wait until every message queued so far was sent (or failed, logged).

        Cancelling the wait discards what is not sent yet (the send under way included).
        """
        try:
            while self._task is not None and not self._task.done():
                await self._task
        except asyncio.CancelledError:
            self.discard()
            raise

    async def sent(self) -> None:
        """Wait until the messages queued so far were sent, without stopping them if this wait
        is cancelled (for a send from outside the turn that must not overtake them)."""
        while (task := self._task) is not None and not task.done():
            try:
                await asyncio.shield(task)
            except asyncio.CancelledError:
                if task.cancelled():  # discarded (the turn was stopped): nothing to wait for
                    return
                raise

    def discard(self) -> None:
        """Drop the messages not sent yet and stop the send under way."""
        self._waiting.clear()
        if self._task is not None and not self._task.done():
            self._task.cancel()
        self._task = None
        self._forget()

    async def _send_waiting(self) -> None:
        try:
            while self._waiting:
                conversation_id, message, key = self._waiting.popleft()
                try:
                    await self._outbound.send(
                        conversation_id,
                        message,
                        phone_number_id=self._phone_number_id,
                        answer_key=key,
                    )
                except Exception:
                    self._outbound.counters["send_failures"] += 1
                    logger.exception("A bot message to %s was not sent.", conversation_id)
        finally:
            if not self._waiting:
                self._forget()

    def _forget(self) -> None:
        """No answer of this turn is waiting any more: sends from outside it need not wait."""
        if self._unsent is not None:
            for conversation_id in self._conversations:
                if self._unsent.get(conversation_id) is self:
                    del self._unsent[conversation_id]
        self._conversations.clear()


async def wait_for_answers(unsent: Mapping[str, TurnSender], conversation_id: str) -> None:
    """Wait until the answers of `conversation_id`'s last turn went out, if some are still going."""
    sender = unsent.get(conversation_id)
    if sender is not None:
        await sender.sent()
