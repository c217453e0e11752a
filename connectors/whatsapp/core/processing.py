"""What happens to accepted webhook events, shared by every adapter.

For each inbound message, in order per sender: skip it if its id was already processed (Meta
redelivers), mark it as read with a typing indicator, then hand it to the bot. Statuses never reach
the bot: failures are logged with Meta's error codes and offered to an optional hook. Everything
runs in the background after the webhook was answered; nothing here raises into the adapter.

Where accepted messages wait for their turn is the intake's business (`queue/`): this process's
memory, or a Redis stream shared by every instance. `admit` hands it the messages of a webhook
(repeats inside the webhook dropped) and raises `QueueFull`/`QueueUnavailable` when they could not
be taken, so that the endpoint answers 503 instead of a 200 that would lose them.
"""

import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any

from connectors.whatsapp.core.dedup import MESSAGE_KEY, DedupStore
from connectors.whatsapp.core.errors import WhatsAppError
from connectors.whatsapp.core.events import (
    Event,
    InboundMessage,
    MessageKind,
    PlatformEvent,
    SkippedChange,
    StatusUpdate,
    UserPreference,
    WebhookErrors,
)
from connectors.whatsapp.core.importing import call_hook
from connectors.whatsapp.core.inbound import DEFAULT_INTENTS, BotInput, to_bot_input
from connectors.whatsapp.core.ordering import SenderQueues
from connectors.whatsapp.core.queue import Intake, QueueFull, unique_messages
from connectors.whatsapp.core.queue.memory import MemoryIntake

if sys.version_info >= (3, 11):
    from asyncio import timeout as _time_limit
else:  # aiohttp's own dependency before Python 3.11
    from async_timeout import timeout as _time_limit

logger = logging.getLogger(__name__)

READ_RECEIPT_WAIT_SECONDS = 2.0
"""How long a read receipt may hold a turn back: past it, the answer goes out without it."""

Deliver = Callable[[BotInput], Awaitable[None]]
Acknowledge = Callable[[InboundMessage, bool], Awaitable[None]]
"""Marks a message as read; the flag says whether an answer will follow (show "typing...")."""
StatusHook = Callable[[StatusUpdate], Any]
"""Called with every failed status; may be a plain function or a coroutine function."""
Translate = Callable[[InboundMessage], Awaitable[BotInput | None]]
"""Message -> bot input, resolving the conversation (`inbound.Translator`)."""
EventHook = Callable[[StatusUpdate | UserPreference | PlatformEvent], Any]
"""Called with every status (pricing included), `user_preferences` update and group, standby,
handover or calls webhook: what never reaches the bot. A function or a coroutine function."""


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
        acknowledge_wait: float | None = READ_RECEIPT_WAIT_SECONDS,
        intake: Intake | None = None,
        translate: Translate | None = None,
        event_hook: EventHook | None = None,
    ) -> None:
        """`intake`: where messages wait (default: this process's memory). With a Redis intake
        the intake de-duplicates messages itself (atomically with storing them), so `dedup` is
        then used for statuses only. `acknowledge_wait`: how long a read receipt may hold the
        turn back before it is abandoned; None when `acknowledge` bounds itself (the endpoint's
        does with this project's `GraphClient`, through its aiohttp timeout, which saves a timer
        per message: `endpoint.receipts_for`)."""
        self._dedup = dedup
        self._deliver = deliver
        self._acknowledge = acknowledge
        self._status_hook = status_hook
        self._intents = intents
        self._caption_as_text = caption_as_text
        self._acknowledge_wait = acknowledge_wait
        self._translate = translate
        self._event_hook = event_hook
        self.intake: Intake = intake if intake is not None else MemoryIntake()
        self.intake.bind(self._turn)
        self._dedup_messages = self.intake.mode == "memory"
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
        """The per-sender queues of a memory intake."""
        if not isinstance(self.intake, MemoryIntake):
            raise TypeError(f"the {self.intake.mode} intake has no in-process queues")
        return self.intake.queues

    @property
    def accepting(self) -> bool:
        """False once `drain` began: new webhooks must then be refused (503), not dropped."""
        return self._accepting

    async def admit(self, events: Iterable[Event]) -> int:
        """Hand the webhook's messages to the intake, handle its other events; messages taken.

        Raises:
            QueueFull: too many messages wait; nothing of this webhook was taken.
            QueueUnavailable: the messages could not be stored; nothing was taken.
        """
        batch: Sequence[Event] = events if isinstance(events, (tuple, list)) else list(events)
        messages, repeats = self._unique(batch)
        added = 0
        if messages:
            if not self._accepting:
                raise QueueFull("shutting down")
            added = await self.intake.submit(messages)  # raises before anything is counted
            self.counters["accepted"] += added
            self.counters["duplicates"] += repeats + len(messages) - added
        self._handle_others(batch)
        return added

    def _unique(self, events: Sequence[Event]) -> tuple[list[InboundMessage], int]:
        """The webhook's messages without repeats, and how many repeats were dropped.

        Repeats are counted as duplicates only once the webhook is taken: a refused one (503) is
        redelivered by Meta, and its repeats would otherwise be counted again each time.
        """
        messages = [event for event in events if isinstance(event, InboundMessage)]
        if len(messages) < 2:  # nothing to repeat: most webhooks carry one message or none
            return messages, 0
        unique = unique_messages(messages)
        repeats = len(messages) - len(unique)
        if repeats:
            logger.info("Webhook repeats messages: %d repeat(s) dropped.", repeats)
        return unique, repeats

    def _handle_others(self, events: Sequence[Event]) -> None:
        for event in events:
            if isinstance(event, InboundMessage):
                continue
            if self._event_hook is not None and isinstance(
                event, StatusUpdate | UserPreference | PlatformEvent
            ):
                self._spawn(self._offer(event))
            if isinstance(event, StatusUpdate):
                self.counters["statuses"] += 1
                if event.failed:
                    self._spawn(self._on_failed_status(event))
                else:
                    logger.debug("Status %s for %s.", event.status, event.message_id)
            elif isinstance(event, WebhookErrors):
                logger.warning("Webhook reports errors: %s", _describe_errors(event.errors))
            elif isinstance(event, SkippedChange):
                logger.debug("Skipped webhook change (%s): %s", event.field, event.reason)
            elif isinstance(event, UserPreference):
                logger.info(
                    "%s set %s to %r.", event.wa_id or event.user_id, event.category, event.value
                )
            elif isinstance(event, PlatformEvent):
                logger.info("%s webhook (not for the bot).", event.field)

    async def _offer(self, event: StatusUpdate | UserPreference | PlatformEvent) -> None:
        assert self._event_hook is not None
        await call_hook(self._event_hook, event)

    async def drain(self, timeout: float) -> bool:
        """Stop accepting, finish what was accepted (on shutdown). True if all finished in time."""
        self._accepting = False
        finished = await self.intake.drain(timeout)
        if self._side_tasks:
            _, pending = await asyncio.wait(self._side_tasks, timeout=max(timeout, 0.1))
            finished = finished and not pending
        return finished

    async def join(self) -> None:
        """Wait until everything accepted so far is processed (tests, benchmarks)."""
        await self.intake.join()
        while self._side_tasks:
            await asyncio.wait(set(self._side_tasks))

    async def _turn(self, message: InboundMessage) -> None:
        """One message's turn, called by the intake; raises when the bot's turn raised."""
        if self._dedup_messages and not await self._dedup.first_seen(MESSAGE_KEY + message.id):
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
        if self._translate is not None:
            bot_input = await self._translate(message)
        else:
            bot_input = to_bot_input(message, self._intents, caption_as_text=self._caption_as_text)
        if self._acknowledge is not None and message.group_id is None:
            # The read receipt, before the turn: it carries the typing indicator, which must
            # reach Meta before the reply, or "typing..." would show after the answer. Awaited
            # here, in the sender's turn and in this frame (a task per receipt cost about 15 us
            # of CPU per message, and each frame alive across its round trip adds to the young
            # garbage collections: bench/README.md). Groups take no receipt and no typing.
            # One slower than `acknowledge_wait` (READ_RECEIPT_WAIT_SECONDS) is abandoned
            # (cancelled): the answer goes out without it, and the sender's next message marks
            # this one read too. A failure costs only the blue ticks: logged, the turn goes on.
            try:
                if self._acknowledge_wait is None:
                    await self._acknowledge(message, bot_input is not None)
                else:
                    async with _time_limit(self._acknowledge_wait):
                        await self._acknowledge(message, bot_input is not None)
            except asyncio.TimeoutError:
                logger.warning(
                    "Read receipt for %s not answered in time: abandoned, answering without it.",
                    message.id,
                )
            except WhatsAppError as error:  # the Graph API said no, or could not be reached
                logger.warning("Could not mark %s as read: %s", message.id, error)
            except Exception:
                logger.exception("Marking %s as read failed.", message.id)
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
        await call_hook(self._status_hook, status)

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
