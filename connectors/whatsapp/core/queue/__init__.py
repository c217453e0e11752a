"""Where accepted messages wait for their turn: in this process, or durably in Redis.

Meta wants a fast 200 and does not redeliver what got one
(https://developers.facebook.com/docs/graph-api/webhooks/getting-started), so a message is
accepted before the bot runs and must then wait somewhere until its turn. An `Intake` is that
somewhere; the endpoint hands it every message of a webhook before answering and the intake calls
the handler (the pipeline's turn) for each message, one at a time per conversation, in arrival
order, conversations concurrently.

- `MemoryIntake` (`queue: memory`, the default): per-conversation queues in this process. Fast,
  but a crash loses what waits.
- `RedisStreamIntake` (`queue: redis`): a Redis stream shared by every instance; the 200 is given
  only once the messages are stored, any instance runs them, a dead instance's work is taken over.

Both refuse a webhook (the endpoint answers 503 with Retry-After, and Meta redelivers) rather than
grow without bound: `QueueFull` beyond `max_pending` waiting messages, `QueueUnavailable` when the
messages could not be stored.
"""

from collections.abc import Awaitable, Callable, Sequence
from contextvars import ContextVar
from typing import Any, Protocol

from connectors.whatsapp.core.events import InboundMessage

Handler = Callable[[InboundMessage], Awaitable[None]]
"""One turn: de-duplication, read receipt, the bot. Raises when the turn failed."""


_ATTEMPT: ContextVar[int] = ContextVar("whatsapp_turn_attempt", default=1)


def turn_attempt() -> int:
    """Which attempt at its message the turn under way is: 1 unless the intake runs it again.

    With `queue: redis` a turn whose instance died before the turn ended (killed after the bot
    had answered, say), or whose handler raised, is run again, by whichever instance is alive:
    `attempt` 2 or more. A bot with effects outside the turn reads this to not repeat them; the
    Rasa channel looks for the message in the tracker first (`adapters/rasa_replay.py`). Set by
    the intake around the handler, so it is seen by everything the turn awaits or starts
    (`asyncio.to_thread` included), and by nothing else.
    """
    return _ATTEMPT.get()


class QueueFull(Exception):
    """More messages wait than `max_pending`: refuse the webhook with 503 (Meta redelivers)."""


class QueueUnavailable(Exception):
    """The messages could not be stored (Redis unreachable): refuse with 503, never a 200."""


class Intake(Protocol):
    """What the endpoint needs of a queue of accepted messages."""

    mode: str
    """"memory" or "redis", as on the health route."""

    def bind(self, handler: Handler) -> None:
        """Set the turn to run for each message (before the first `submit` or `start`)."""

    async def start(self) -> None:
        """Begin taking work (idempotent; `submit` and `stats` call it too)."""

    async def submit(self, messages: Sequence[InboundMessage]) -> int:
        """Store the messages of one webhook, in order; returns how many were new.

        Raises:
            QueueFull: too many messages wait already.
            QueueUnavailable: the messages could not be stored.
        """

    async def drain(self, timeout: float) -> bool:
        """Stop taking new work, finish the turns under way within `timeout` s."""

    async def join(self) -> None:
        """Wait until nothing accepted waits or runs (tests, benchmarks)."""

    async def stats(self) -> dict[str, Any]:
        """Depth, claimed entries, dead letters, the bound: for the health route."""

    async def close(self) -> None:
        """Release connections. Idempotent."""


def unique_messages(messages: Sequence[InboundMessage]) -> list[InboundMessage]:
    """The messages of one webhook without repeats of an id (the first one is kept).

    A webhook carrying the same message a thousand times is one message, not a thousand turns.
    """
    seen: set[str] = set()
    unique = []
    for message in messages:
        if message.id not in seen:
            seen.add(message.id)
            unique.append(message)
    return unique


def conversation_key(message: InboundMessage) -> str:
    """The key one conversation's turns are serialised by, known before identity resolution.

    For a group message that is the group (`group_id`), not the member who wrote. Otherwise the
    person's business-scoped user id when Meta sends one (in every webhook since April 2026,
    `from_user_id`), else the phone number: a person's messages arrive with the phone and the
    BSUID, or with only one of them, and keying by whichever came (`sender`) would let two turns
    of one conversation run at once, out of order. The conversation the bot sees is still the
    identity store's (`identity.py`).
    """
    return message.group_id or message.user_id or message.sender


__all__ = [
    "Handler",
    "Intake",
    "QueueFull",
    "QueueUnavailable",
    "conversation_key",
    "turn_attempt",
    "unique_messages",
]
