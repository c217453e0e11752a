"""What the sandbox remembers: contacts, conversations, media, faults, and who is watching.

Plain in-memory data, no I/O: the HTTP routes change it, and every change is published as a small
JSON event to the chat pages listening (`subscribe`). Entries are frozen; a change replaces one.
"""

import asyncio
import hashlib
import secrets
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

from .config import SimulatedContact, SimulatedGroup

Direction = Literal["user", "bot", "system"]
Event = dict[str, Any]

USER_STATUSES = ("sent", "delivered", "read")
"""The ticks of a user's message: reached WhatsApp, reached the bot (200), read by the bot."""


@dataclass(frozen=True, slots=True)
class ChatEntry:
    """One message of a conversation, from the user (a webhook) or from the bot (an API call).

    A `system` entry is a note of the sandbox itself in the conversation ("25 hours later").
    """

    id: str
    chat: str
    """The conversation: a contact's key (phone number, else BSUID) or a group id."""
    direction: Direction
    type: str
    content: Mapping[str, Any]
    """For the user: Meta's inbound message object. For the bot: the request body, as sent."""
    timestamp: float
    status: str
    error: Mapping[str, Any] | None = None
    author: str | None = None
    """In a group, the key of the member who wrote (user entries only)."""

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["content"] = dict(self.content)
        return data


@dataclass(frozen=True, slots=True)
class MediaItem:
    """An uploaded file: by the bot (`POST /media`) or by a user (a photo in the chat)."""

    id: str
    data: bytes = field(repr=False)
    mime_type: str
    filename: str | None
    sha256: str
    created: float

    @classmethod
    def create(cls, data: bytes, mime_type: str, filename: str | None, now: float) -> "MediaItem":
        media_id = str(10**15 + secrets.randbelow(9 * 10**15))
        digest = hashlib.sha256(data).hexdigest()
        return cls(media_id, data, mime_type, filename, digest, now)


@dataclass(frozen=True, slots=True)
class LogItem:
    """A line of the developer drawer: an API call, a webhook delivery, a fault, an error."""

    time: float
    kind: str
    text: str
    ok: bool = True


def new_wamid(chat: str) -> str:
    """A message id shaped like Meta's ("wamid." followed by base64-ish characters)."""
    digits = "".join(c for c in chat if c.isalnum())[:15]
    return f"wamid.HBgN{digits}FQIAERgS{secrets.token_hex(10).upper()}AA=="


class SandboxState:
    """All mutable state of one sandbox, and the publish/subscribe of its changes."""

    def __init__(
        self,
        contacts: Iterable[SimulatedContact],
        groups: Iterable[SimulatedGroup] = (),
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.clock = clock
        self.contacts: dict[str, SimulatedContact] = {c.key: c for c in contacts}
        self.groups: dict[str, SimulatedGroup] = {g.group_id: g for g in groups}
        self.entries: dict[str, ChatEntry] = {}
        self.media: dict[str, MediaItem] = {}
        self.last_user_message: dict[str, float] = {}
        self.typing_until: dict[str, float] = {}
        self.log: deque[LogItem] = deque(maxlen=300)
        self._listeners: set[asyncio.Queue[Event | None]] = set()

    # --- publish / subscribe

    def subscribe(self) -> "asyncio.Queue[Event | None]":
        queue: asyncio.Queue[Event | None] = asyncio.Queue(maxsize=1000)
        self._listeners.add(queue)
        return queue

    def unsubscribe(self, queue: "asyncio.Queue[Event | None]") -> None:
        self._listeners.discard(queue)

    def close_subscriptions(self) -> None:
        """Wake every listener with `None`, so that open event streams end."""
        for queue in self._listeners:
            if not queue.full():
                queue.put_nowait(None)
        self._listeners.clear()

    def publish(self, event: Event) -> None:
        for queue in list(self._listeners):
            if queue.full():  # a page that stopped reading: drop it rather than grow forever
                self._listeners.discard(queue)
                continue
            queue.put_nowait(event)

    def snapshot(self) -> Event:
        now = self.clock()
        return {
            "type": "snapshot",
            "contacts": [contact_json(c) for c in self.contacts.values()],
            "groups": [asdict(g) for g in self.groups.values()],
            "messages": [e.to_json() for e in self.entries.values()],
            "typing": [wa_id for wa_id, until in self.typing_until.items() if until > now],
            "log": [asdict(item) for item in self.log],
        }

    # --- contacts and messages

    def add_contact(self, contact: SimulatedContact) -> SimulatedContact:
        self.contacts[contact.key] = contact
        self.publish({"type": "contact", "contact": contact_json(contact)})
        return contact

    def by_phone(self, wa_id: str) -> SimulatedContact | None:
        contact = self.contacts.get(wa_id)
        return contact if contact is not None and contact.wa_id == wa_id else None

    def by_user_id(self, user_id: str) -> SimulatedContact | None:
        contact = self.contacts.get(user_id)
        if contact is not None and contact.user_id == user_id:
            return contact
        return next((c for c in self.contacts.values() if c.user_id == user_id), None)

    def add_entry(self, entry: ChatEntry) -> ChatEntry:
        self.entries[entry.id] = entry
        if entry.direction == "user":
            self.last_user_message[entry.chat] = entry.timestamp
        elif entry.direction == "bot":
            self.typing_until.pop(entry.chat, None)
        self.publish({"type": "message", "message": entry.to_json()})
        return entry

    def conversation(self, chat: str) -> list[ChatEntry]:
        return [e for e in self.entries.values() if e.chat == chat]

    def skip_time(self, chat: str, hours: float) -> ChatEntry:
        """Make the conversation's last user message `hours` older, as if that much time passed.

        Only the 24-hour window sees it (nothing else in the sandbox depends on the clock of one
        conversation); a new message from the user opens the window again.
        """
        last = self.last_user_message.get(chat)
        if last is not None:
            self.last_user_message[chat] = last - hours * 3600
        note = ChatEntry(
            f"skip.{secrets.token_hex(8)}",
            chat,
            "system",
            "time_skip",
            {"hours": hours},
            self.clock(),
            "shown",
        )
        return self.add_entry(note)

    def set_status(
        self, message_id: str, status: str, error: Mapping[str, Any] | None = None
    ) -> ChatEntry | None:
        entry = self.entries.get(message_id)
        if entry is None:
            return None
        if entry.direction == "user" and _rank(status) <= _rank(entry.status):
            return entry  # ticks never go backwards (a late "delivered" after "read")
        updated = replace(entry, status=status, error=error)
        self.entries[message_id] = updated
        self.publish({"type": "status", "id": message_id, "status": status, "error": error})
        return updated

    def mark_read(self, message_id: str) -> list[str]:
        """Mark a user message read, and the earlier ones of the same user, as WhatsApp does."""
        target = self.entries.get(message_id)
        if target is None or target.direction != "user":
            return []
        changed = []
        for entry in list(self.entries.values()):
            same_user = entry.direction == "user" and entry.chat == target.chat
            if same_user and entry.status != "read" and entry.timestamp <= target.timestamp:
                self.set_status(entry.id, "read")
                changed.append(entry.id)
            if entry.id == message_id:
                break
        return changed

    def set_typing(self, chat: str, seconds: float) -> None:
        self.typing_until[chat] = self.clock() + seconds
        self.publish({"type": "typing", "chat": chat, "seconds": seconds})

    def in_service_window(self, chat: str, window: float = 24 * 3600) -> bool:
        """Whether the user (or a member of the group) wrote less than 24 hours ago."""
        last = self.last_user_message.get(chat)
        return last is not None and self.clock() - last < window

    def reset(self) -> None:
        """Forget conversations, media and logs (contacts stay)."""
        self.entries.clear()
        self.media.clear()
        self.last_user_message.clear()
        self.typing_until.clear()
        self.log.clear()
        self.publish(self.snapshot())

    # --- media and the developer log

    def store_media(self, data: bytes, mime_type: str, filename: str | None) -> MediaItem:
        item = MediaItem.create(data, mime_type, filename, self.clock())
        self.media[item.id] = item
        return item

    def add_log(self, kind: str, text: str, *, ok: bool = True) -> None:
        item = LogItem(self.clock(), kind, text, ok)
        self.log.append(item)
        self.publish({"type": "log", "item": asdict(item)})


def contact_json(contact: SimulatedContact) -> dict[str, Any]:
    return {**asdict(contact), "key": contact.key}


def _rank(status: str) -> int:
    return USER_STATUSES.index(status) if status in USER_STATUSES else len(USER_STATUSES)
