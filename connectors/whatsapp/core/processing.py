"""What happens to accepted webhook events, shared by every adapter.

For each inbound message, in order per sender: skip it if its id was already processed (Meta
redelivers), mark it as read with a typing indicator, then hand it to the bot. Statuses never reach
the bot: failures are logged with Meta's error codes and offered to an optional hook. Everything
runs in the background after the webhook was answered; nothing here raises into the adapter.
"""

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from connectors.whatsapp.core.dedup import DedupStore
from connectors.whatsapp.core.events import (
    Event,
    InboundMessage,
    MessageKind,
    SkippedChange,
    StatusUpdate,
    WebhookErrors,
)
from connectors.whatsapp.core.inbound import DEFAULT_INTENTS, BotInput, to_bot_input
from connectors.whatsapp.core.ordering import SenderQueues

logger = logging.getLogger(__name__)

Deliver = Callable[[BotInput], Awaitable[None]]
Acknowledge = Callable[[InboundMessage, bool], Awaitable[None]]
"""Marks a message as read; the flag says whether an answer will follow (show "typing...")."""
StatusHook = Callable[[StatusUpdate], Any]
"""Called with every failed status; may be a plain function or a coroutine function."""


class InboundPipeline:
    """Turns accepted events into bot turns, de-duplicated and ordered per sender."""

    def __init__(
        self,
        *,
        dedup: DedupStore,
        deliver: Deliver,
        acknowledge: Acknowledge | None = None,
        status_hook: StatusHook | None = None,
        intents: Mapping[MessageKind, str | None] = DEFAULT_INTENTS,
        caption_as_text: bool = False,
        acknowledge_wait: float = 2.0,
    ) -> None:
        self._dedup = dedup
        self._deliver = deliver
        self._acknowledge = acknowledge
        self._status_hook = status_hook
        self._intents = intents
        self._caption_as_text = caption_as_text
        self._acknowledge_wait = acknowledge_wait
        self._queues: SenderQueues | None = None
        self._accepting = True
        self._side_tasks: set[asyncio.Task[None]] = set()
        self.counters: dict[str, int] = {
            "accepted": 0,
            "duplicates": 0,
            "delivered": 0,
            "not_for_bot": 0,
            "statuses": 0,
            "failed_statuses": 0,
        }

    @property
    def queues(self) -> SenderQueues:
        if self._queues is None:  # created on the running loop, not at import or start-up
            self._queues = SenderQueues()
        return self._queues

    @property
    def accepting(self) -> bool:
        """False once `drain` began: new webhooks must then be refused (503), not dropped."""
        return self._accepting

    def accept(self, events: Iterable[Event]) -> int:
        """Queue the events for processing; call on the event loop. Returns the messages queued."""
        queued = 0
        for event in events:
            if isinstance(event, InboundMessage):
                if self._accepting and self.queues.submit(event.sender, self._job(event)):
                    queued += 1
                    self.counters["accepted"] += 1
                else:
                    logger.error(
                        "Shutting down: message %s from %s refused.", event.id, event.sender
                    )
            elif isinstance(event, StatusUpdate):
                self.counters["statuses"] += 1
                if event.failed:
                    self._spawn(self._on_failed_status(event))
                else:
                    logger.debug("Status %s for %s.", event.status, event.message_id)
            elif isinstance(event, WebhookErrors):
                logger.warning("Webhook reports errors: %s", _describe_errors(event.errors))
            elif isinstance(event, SkippedChange):
                logger.debug("Skipped webhook change (%s): %s", event.field, event.reason)
        return queued

    async def drain(self, timeout: float) -> bool:
        """Stop accepting, finish what was accepted (on shutdown). True if all finished in time."""
        self._accepting = False
        finished = True if self._queues is None else await self.queues.drain(timeout)
        if self._side_tasks:
            _, pending = await asyncio.wait(self._side_tasks, timeout=max(timeout, 0.1))
            finished = finished and not pending
        return finished

    async def join(self) -> None:
        """Wait until everything accepted so far is processed (tests, benchmarks)."""
        if self._queues is not None:
            await self.queues.join()
        while self._side_tasks:
            await asyncio.wait(set(self._side_tasks))

    def _job(self, message: InboundMessage) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            await self._process(message)

        return run

    async def _process(self, message: InboundMessage) -> None:
        if not await self._dedup.first_seen("message:" + message.id):
            self.counters["duplicates"] += 1
            logger.info("Duplicate delivery of %s from %s ignored.", message.id, message.sender)
            return
        if message.errors:
            logger.warning(
                "Message %s from %s carries errors: %s",
                message.id,
                message.sender,
                _describe_errors(message.errors),
            )
        bot_input = to_bot_input(message, self._intents, caption_as_text=self._caption_as_text)
        if self._acknowledge is not None:
            # The read receipt carries the typing indicator: it must reach Meta before the reply,
            # or "typing..." would show after the answer. Wait for it, but not for long.
            receipt = self._spawn(self._acknowledge(message, bot_input is not None))
            await asyncio.wait({receipt}, timeout=self._acknowledge_wait)
        if bot_input is None:
            self.counters["not_for_bot"] += 1
            return
        await self._deliver(bot_input)
        self.counters["delivered"] += 1

    async def _on_failed_status(self, status: StatusUpdate) -> None:
        if not await self._dedup.first_seen(f"status:{status.message_id}:{status.status}"):
            return
        self.counters["failed_statuses"] += 1
        logger.error(
            "Message %s to %s failed: %s",
            status.message_id,
            status.recipient_id,
            _describe_errors(status.errors),
        )
        if self._status_hook is None:
            return
        result = self._status_hook(status)
        if inspect.isawaitable(result):
            await result

    def _spawn(self, work: Awaitable[None]) -> asyncio.Task[None]:
        async def guarded() -> None:
            try:
                await work
            except Exception:
                logger.exception("Background work failed.")

        task = asyncio.get_running_loop().create_task(guarded())
        self._side_tasks.add(task)
        task.add_done_callback(self._side_tasks.discard)
        return task


def _describe_errors(errors: Iterable[Any]) -> str:
    parts = [
        f"code {error.code} ({error.title or error.message or 'no title'})"
        + (f": {error.details}" if error.details else "")
        for error in errors
    ]
    return "; ".join(parts) or "no error details"
