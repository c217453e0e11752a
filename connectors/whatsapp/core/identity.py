"""One person, one conversation: which ids Meta gave us belong together, and what we know of them.

Since April 2026 Meta names a user by a phone number (`from`, `contacts[].wa_id`), a
business-scoped user id (BSUID: `from_user_id`, `contacts[].user_id`, "BR.1349..."), a parent
BSUID for enterprise portfolios (`..ENT..`), or several of these; since mid-2026 a user with a
username may arrive with no phone number at all, and a change of number creates a new BSUID
(https://developers.facebook.com/documentation/business-messaging/whatsapp/business-scoped-user-ids).
A channel keyed by whatever id came first splits one person into two Rasa conversations the day
the phone number disappears (history and slots gone). This store remembers the ids seen together.

The conversation id (Rasa's `sender_id`) of a person:

- the phone number (`wa_id`) when they were first seen with one, so a bot whose conversations
  were keyed by phone number before 2026 keeps every conversation as it was;
- the BSUID when they were first seen without a phone number;
- and it never changes afterwards: a later message with only the phone, only the BSUID, a new
  BSUID (`user_changed_user_id`: `previous_user_id`, `previous_parent_user_id`) or a new number
  (`user_changed_number`: `system.wa_id`) is linked to the same conversation.

A group message belongs to the group (`group_id`); the member who wrote is metadata only.

The same store keeps, per conversation, where answers go (phone `to`, BSUID `recipient`, or the
group) and the time of the user's last message (the 24-hour customer-service window, from the
message's own `timestamp`), the last numbered menu sent to a group (so that "2" means its
second option), and, for a day, which conversation and bot message each sent message id was (so
that a `failed` status with 131047 can be answered with the re-engagement template).

Two backends behind one small key-value interface: `InMemoryKeyValueStore` (one process, bounded,
expiring) and `RedisKeyValueStore` (shared by instances, beside the de-duplication keys, every key
with an expiry). A lookup happens when a message is processed, never while Meta waits for its 200.
"""

from __future__ import annotations

import json
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from connectors.whatsapp.core.events import InboundMessage, MessageKind
from connectors.whatsapp.core.redis_client import RETRY_STALLED, STALLED
from connectors.whatsapp.core.window import WINDOW_SECONDS

logger = logging.getLogger(__name__)

DEFAULT_IDENTITY_TTL_SECONDS = 400 * 24 * 3600
"""How long ids seen together are remembered after the person's last message (refreshed on
each). Longer than a year, so a yearly customer keeps their conversation."""
SENT_TTL_SECONDS = 2 * 24 * 3600
"""Sent message ids are kept this long: Meta's `failed` status comes within minutes to hours."""
MENU_TTL_SECONDS = 7 * 24 * 3600


@dataclass(frozen=True, slots=True)
class Found:
    """What `KeyValueStore.get_many` read."""

    values: list[str | None]
    """The value of each key, in the order asked; None for a missing or expired key."""
    shared: bool = True
    """False when the shared store could not be read and every value is this process's memory."""


class KeyValueStore(Protocol):
    """Strings by key, each with an expiry. Missing or expired keys read as None."""

    async def get(self, key: str) -> str | None: ...

    async def set(self, key: str, value: str, ttl_seconds: float) -> None: ...

    async def get_many(self, keys: Sequence[str]) -> Found:
        """The values of `keys`, in order, in one round trip where the backend has one (MGET),
        and whether the shared store could be read."""
        ...

    async def set_many(
        self, values: Mapping[str, str], ttl_seconds: float, *, shared: bool = True
    ) -> None:
        """Every key of `values` with the same expiry, in one round trip (a Redis pipeline).
        `shared=False`: in this process only, and only while the shared store cannot be read
        (what it concluded from its memory alone must not overwrite what the other instances
        know, nor outlive the outage)."""
        ...

    async def close(self) -> None: ...


class InMemoryKeyValueStore:
    """A bounded, expiring mapping for one process; the least recently written go first."""

    def __init__(
        self, *, max_entries: int = 100_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._max_entries = max_entries
        self._clock = clock
        self._items: OrderedDict[str, tuple[float, str]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def discard(self, key: str) -> None:
        self._items.pop(key, None)

    async def get(self, key: str) -> str | None:
        return self._get(key, self._clock())

    def _get(self, key: str, now: float) -> str | None:
        item = self._items.get(key)
        if item is None:
            return None
        expiry, value = item
        if expiry <= now:
            del self._items[key]
            return None
        return value

    async def set(self, key: str, value: str, ttl_seconds: float) -> None:
        self._put(key, value, self._clock() + ttl_seconds)

    async def get_many(self, keys: Sequence[str]) -> Found:
        # One clock reading and no coroutine per key: this runs for every message.
        now = self._clock()
        return Found([self._get(key, now) for key in keys])

    async def set_many(
        self, values: Mapping[str, str], ttl_seconds: float, *, shared: bool = True
    ) -> None:
        expiry = self._clock() + ttl_seconds
        for key, value in values.items():
            self._put(key, value, expiry)

    def _put(self, key: str, value: str, expiry: float) -> None:
        self._items[key] = (expiry, value)
        self._items.move_to_end(key)
        while len(self._items) > self._max_entries:
            self._items.popitem(last=False)

    async def close(self) -> None:
        self._items.clear()


class RedisKeyValueStore:
    """Keys in Redis (`SET key value EX ttl`), shared by every instance.

    Keys and values are encoded with `surrogatepass`, so an id holding a lone surrogate (JSON
    allows one) cannot make the encoding raise, and reads back unchanged. A command (or a
    pipeline) that meets a dropped connection or a timeout is tried once more: GET, MGET and
    SET EX may run twice. When Redis cannot be reached the error is logged and this process's
    memory stands in, so a message is never lost for want of its identity.

    This memory holds every value written, and reads fill what Redis lacks from it (a write
    that failed, a Redis restarted empty), except what was concluded while Redis could not be
    read (`shared=False`): those guesses serve only while Redis cannot be read. Once it answers
    again they are set aside, or an instance would bring back, as if known, a conversation it
    guessed blind (a person's phone linked to a new conversation while Redis held the one their
    BSUID had), and write it over what every other instance knows.
    """

    def __init__(
        self,
        *,
        url: str,
        prefix: str = "whatsapp:identity:",
        fallback_max_entries: int = 100_000,
        name: str = "Identity store",
    ) -> None:
        import redis.asyncio

        self._redis = redis.asyncio.Redis.from_url(
            url, socket_timeout=2, socket_connect_timeout=2, **RETRY_STALLED
        )
        self._prefix = prefix
        self._name = name
        """What the log calls this store when Redis cannot be reached."""
        self._fallback = InMemoryKeyValueStore(max_entries=fallback_max_entries)
        self._guessed = InMemoryKeyValueStore(max_entries=fallback_max_entries)
        """The keys of `_fallback` written with `shared=False` (see the class docstring)."""

    def _key(self, key: str) -> bytes:
        return (self._prefix + key).encode("utf-8", "surrogatepass")

    async def get(self, key: str) -> str | None:
        try:
            value = await self._redis.get(self._key(key))
        except Exception as error:  # redis raises many types; none may lose the message
            logger.error("%s unreachable (%s); using this process's memory.", self._name, error)
            return await self._fallback.get(key)
        if value is None:
            return await self._remembered(key)
        return _decode(value)

    async def _remembered(self, key: str) -> str | None:
        """This process's value for a key Redis lacks, unless it was a guess."""
        if await self._guessed.get(key) is not None:
            return None
        return await self._fallback.get(key)

    async def set(self, key: str, value: str, ttl_seconds: float) -> None:
        await self.set_many({key: value}, ttl_seconds)

    async def get_many(self, keys: Sequence[str]) -> Found:
        """`MGET`: the identity of a message in one round trip instead of one per id."""
        if not keys:
            return Found([])
        try:
            values = await self._redis.mget([self._key(key) for key in keys])
        except Exception as error:
            logger.error("%s unreachable (%s); using this process's memory.", self._name, error)
            return Found((await self._fallback.get_many(keys)).values, shared=False)
        read: list[str | None] = []
        for key, value in zip(keys, values, strict=True):
            read.append(await self._remembered(key) if value is None else _decode(value))
        return Found(read)

    async def set_many(
        self, values: Mapping[str, str], ttl_seconds: float, *, shared: bool = True
    ) -> None:
        """One pipeline of `SET key value EX ttl` (not a transaction: each key stands alone)."""
        if not values:
            return
        await self._fallback.set_many(values, ttl_seconds)
        if not shared:
            await self._guessed.set_many(dict.fromkeys(values, "1"), ttl_seconds)
            return
        for key in values:
            self._guessed.discard(key)
        expiry = max(1, int(ttl_seconds))
        try:
            if len(values) == 1:  # a pipeline costs twice a command's CPU in redis-py
                [(key, value)] = values.items()
                await self._redis.set(self._key(key), _encode(value), ex=expiry)
                return
            for attempt in (1, 2):  # redis-py retries no pipeline on a dropped connection
                try:
                    async with self._redis.pipeline(transaction=False) as pipeline:
                        for key, value in values.items():
                            pipeline.set(self._key(key), _encode(value), ex=expiry)
                        await pipeline.execute()
                    return
                except STALLED:
                    if attempt == 2:
                        raise
        except Exception as error:
            logger.error("%s unreachable (%s); kept in this process only.", self._name, error)

    async def close(self) -> None:
        await self._redis.close()


@dataclass(frozen=True, slots=True)
class Identity:
    """Whose conversation a message belongs to, as the store resolved it."""

    conversation_id: str
    group: bool = False
    menu: tuple[str, ...] = ()
    """The payloads of the last numbered menu sent to this (group) conversation, in order."""


@dataclass(frozen=True, slots=True)
class Recipient:
    """Where a conversation's messages go, and when the user last wrote."""

    conversation_id: str
    phone: str | None = None
    """The phone number (`wa_id`) last seen for the person, if any."""
    user_id: str | None = None
    """The BSUID last seen for the person, if any."""
    group: bool = False
    last_message_at: float | None = None
    """Unix time of the user's last message (the message's `timestamp`), if one was seen."""
    phone_withheld: bool = False
    """The latest message came with a BSUID and no phone number (a username user): answers go
    to the BSUID, not to an old phone number."""

    def outside_window(self, now: float) -> bool:
        """True only when the last message is known and older than 24 hours (never for groups)."""
        if self.group or self.last_message_at is None:
            return False
        return now - self.last_message_at > WINDOW_SECONDS


@dataclass(frozen=True, slots=True)
class SentMessage:
    """What was sent with a message id: to answer a late 131047 with the template."""

    conversation_id: str
    phone_number_id: str
    message: Mapping[str, Any]


class IdentityStore:
    """Resolves conversations and remembers addresses, windows, menus and sent messages."""

    def __init__(
        self,
        store: KeyValueStore | None = None,
        *,
        ttl_seconds: float = DEFAULT_IDENTITY_TTL_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store: KeyValueStore = store if store is not None else InMemoryKeyValueStore()
        self._ttl = ttl_seconds
        self._clock = clock

    # -- inbound -----------------------------------------------------------------------------

    async def resolve(self, message: InboundMessage) -> Identity:
        """The conversation of `message`, remembering its ids, address and time.

        Two round trips to the store for a known person (`get_many`: the ids and the likely
        record at once; `set_many`: the links and the record), where one call per key took four
        to six sequential ones.
        """
        when = float(message.timestamp) if message.timestamp is not None else self._clock()
        if message.group_id is not None:
            return await self._resolve_group(message, when)

        system = message.system if message.kind is MessageKind.SYSTEM and message.system else None
        if system is None:  # nearly every message: no id is changing
            known = _ids(message.wa_id, message.user_id, message.parent_user_id)
        else:
            known = _ids(
                message.wa_id,
                message.user_id,
                system.get("previous_user_id"),
                message.parent_user_id,
                system.get("previous_parent_user_id"),
            )
        first_guess = message.wa_id or message.user_id or message.sender
        # The record is fetched with the ids on the bet that the person's conversation is the id
        # they were first seen with, which it is unless they changed number or BSUID since.
        keys = ["id:" + candidate for candidate in known]
        keys.append("conv:" + first_guess)
        found = await self.store.get_many(keys)
        conversation_id = _first(found.values[:-1]) or first_guess
        shared = found.shared
        if conversation_id == first_guess:
            record = _record_from(found.values[-1])
        else:
            record_found = await self.store.get_many(["conv:" + conversation_id])
            record, shared = _record_from(record_found.values[0]), shared and record_found.shared
        if system is None:
            new_phone = new_user_id = new_parent = None
            linked = known if message.sender in known else _ids(*known, message.sender)
        else:
            new_phone = system.get("wa_id") if system.get("type") == "user_changed_number" else None
            new_user_id = system.get("user_id")
            new_parent = system.get("parent_user_id")
            linked = _ids(
                *known,
                message.sender,
                new_phone if isinstance(new_phone, str) else None,
                new_user_id,
                new_parent,
            )
        phone = new_phone if isinstance(new_phone, str) and new_phone else message.wa_id
        user_id = new_user_id if isinstance(new_user_id, str) and new_user_id else message.user_id
        if phone:
            record["phone"] = phone
        if user_id:
            record["user_id"] = user_id
        if message.kind is not MessageKind.SYSTEM:
            record["withheld"] = message.wa_id is None and message.user_id is not None
            record["last"] = max(when, float(record.get("last") or 0))
        writes = {"id:" + identifier: conversation_id for identifier in linked}
        writes["conv:" + conversation_id] = json.dumps(record)
        # Resolved from this process's memory (Redis could not be read): kept here only, and only
        # until Redis answers again, or it would link the person's ids, new ones included, to a
        # conversation the others do not know.
        await self.store.set_many(writes, self._ttl, shared=shared)
        return Identity(conversation_id)

    async def _resolve_group(self, message: InboundMessage, when: float) -> Identity:
        """A group is its own conversation: its record (a group, its window) and its last menu."""
        assert message.group_id is not None
        group_id = message.group_id
        found = await self.store.get_many(["conv:" + group_id, "menu:" + group_id])
        (raw_record, raw_menu), shared = found.values, found.shared
        record = _record_from(raw_record)
        record["group"] = True
        if message.kind is not MessageKind.SYSTEM:
            record["last"] = max(when, float(record.get("last") or 0))
        await self.store.set_many(
            {"conv:" + group_id: json.dumps(record)}, self._ttl, shared=shared
        )
        return Identity(group_id, group=True, menu=_menu_from(raw_menu))

    # -- outbound ----------------------------------------------------------------------------

    async def recipient(self, conversation_id: str) -> Recipient:
        """Where `conversation_id`'s messages go. An unknown id is taken as Meta gives it."""
        record = await self._record(conversation_id)
        if not record:
            return Recipient(conversation_id)
        last = record.get("last")
        return Recipient(
            conversation_id,
            phone=_str(record.get("phone")),
            user_id=_str(record.get("user_id")),
            group=record.get("group") is True,
            last_message_at=float(last) if isinstance(last, int | float) and last else None,
            phone_withheld=record.get("withheld") is True,
        )

    async def remember_menu(self, conversation_id: str, payloads: Sequence[str]) -> None:
        await self.store.set(
            "menu:" + conversation_id, json.dumps(list(payloads)), MENU_TTL_SECONDS
        )

    async def menu(self, conversation_id: str) -> tuple[str, ...]:
        return _menu_from(await self.store.get("menu:" + conversation_id))

    async def remember_sent(
        self,
        message_id: str,
        conversation_id: str,
        phone_number_id: str,
        message: Mapping[str, Any],
    ) -> None:
        """Remember a free-form message that was sent (its text is what a template would carry)."""
        value = {
            "conversation_id": conversation_id,
            "phone_number_id": phone_number_id,
            "message": {key: message[key] for key in ("text",) if key in message},
        }
        await self.store.set("sent:" + message_id, json.dumps(value), SENT_TTL_SECONDS)

    async def take_sent(self, message_id: str) -> SentMessage | None:
        """The sent message behind `message_id`, once: a second failure of it finds nothing."""
        value = _json(await self.store.get("sent:" + message_id))
        if not isinstance(value, Mapping):
            return None
        await self.store.set("sent:" + message_id, "null", SENT_TTL_SECONDS)
        conversation_id = value.get("conversation_id")
        phone_number_id = value.get("phone_number_id")
        message = value.get("message")
        if not isinstance(conversation_id, str) or not isinstance(phone_number_id, str):
            return None
        return SentMessage(
            conversation_id, phone_number_id, message if isinstance(message, Mapping) else {}
        )

    async def close(self) -> None:
        await self.store.close()

    # -- records -----------------------------------------------------------------------------

    async def _record(self, conversation_id: str) -> dict[str, Any]:
        return _record_from(await self.store.get("conv:" + conversation_id))


def _encode(value: str) -> bytes:
    return value.encode("utf-8", "surrogatepass")


def _decode(value: bytes) -> str:
    """What `_encode` wrote, lone surrogates included (anything else not UTF-8: replaced)."""
    data = bytes(value)
    try:
        return data.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        return data.decode("utf-8", "replace")


def _record_from(raw: str | None) -> dict[str, Any]:
    value = _json(raw)
    if type(value) is dict:  # what json.loads made: a fresh dict already, no copy needed
        return value
    return dict(value) if isinstance(value, Mapping) else {}


def _menu_from(raw: str | None) -> tuple[str, ...]:
    value = _json(raw)
    if not isinstance(value, list):
        return ()
    return tuple(item for item in value if isinstance(item, str))


def _ids(*values: object) -> list[str]:
    """The non-empty string ids among `values`, in order, each once."""
    seen: list[str] = []
    for value in values:
        if isinstance(value, str) and value and value not in seen:
            seen.append(value)
    return seen


def _first(values: Iterable[str | None]) -> str | None:
    for value in values:
        if value:
            return value
    return None


def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _json(raw: str | None) -> object:
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None
