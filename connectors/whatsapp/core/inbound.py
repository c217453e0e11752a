"""What of a WhatsApp message reaches the bot: its text, sender, id and metadata.

The contract (README, "What reaches the bot"):

- text: the body; a reply button or list row: the reply id, which is the payload of the Rasa button
  that was sent; a template quick-reply button: its payload.
- location, media, contacts, orders and Flow answers: an intent trigger such as
  `/whatsapp_location{"latitude": -23.56, "longitude": -46.65}` whose entities carry the useful
  fields. Intent names are configurable per kind.
- reactions, system messages, unsupported and unknown types: not sent to the bot unless an intent
  name is configured for them; they are logged.
- an opt-out keyword (STOP, PARAR, SAIR by default; the whole message, case and accents ignored):
  `/whatsapp_opt_out`, so the bot can stop what it sends (Meta asks businesses to honour it).
- an `edit`: the new text, flagged `edited` in the metadata (or nothing, with `edits: false`);
  a `revoke` and a `call_permission_reply`: never for the bot.
- in a group, a member's "2" after a numbered menu: the second option's payload.

`metadata["whatsapp"]` carries each thing once: the raw message and contact as Meta sent them,
the receiving number, and the ids Meta gave (see `whatsapp_metadata`). Everything else a custom
action may want (media id, location, reply context, referral) is in the raw `message`.
"""

import functools
import json
import logging
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from connectors.whatsapp.core.events import MEDIA_KINDS, InboundMessage, MessageKind
from connectors.whatsapp.core.identity import Identity, IdentityStore

logger = logging.getLogger(__name__)

DEFAULT_INTENTS: Mapping[MessageKind, str | None] = {
    MessageKind.LOCATION: "whatsapp_location",
    MessageKind.IMAGE: "whatsapp_image",
    MessageKind.AUDIO: "whatsapp_audio",
    MessageKind.VIDEO: "whatsapp_video",
    MessageKind.DOCUMENT: "whatsapp_document",
    MessageKind.STICKER: "whatsapp_sticker",
    MessageKind.CONTACTS: "whatsapp_contacts",
    MessageKind.ORDER: "whatsapp_order",
    MessageKind.FLOW_REPLY: "whatsapp_flow_reply",
    MessageKind.REACTION: None,
    MessageKind.SYSTEM: None,
    MessageKind.UNSUPPORTED: None,
    MessageKind.UNKNOWN: None,
    MessageKind.REVOKE: None,
    MessageKind.CALL_PERMISSION_REPLY: None,
}
"""Intent per message kind; None means "not sent to the bot". Keys of `intents` in the config
are the kind names: location, image, audio, video, document, sticker, contacts, order, nfm_reply
(or flow_reply), reaction, system, unsupported, unknown."""

_KIND_ALIASES = {"flow_reply": MessageKind.FLOW_REPLY, "unknown": MessageKind.UNKNOWN}


def intent_names(overrides: Mapping[str, str | None]) -> dict[MessageKind, str | None]:
    """Merge overrides (by kind name) into the defaults; an unknown kind raises ValueError."""
    names = dict(DEFAULT_INTENTS)
    by_name = {kind.value: kind for kind in DEFAULT_INTENTS} | _KIND_ALIASES
    for key, intent in overrides.items():
        kind = by_name.get(key)
        if kind is None:
            raise ValueError(
                f"unknown message kind {key!r} in 'intents'; use one of {sorted(by_name)}"
            )
        names[kind] = intent or None
    return names


DEFAULT_OPT_OUT_KEYWORDS = ("STOP", "PARAR", "SAIR")
DEFAULT_OPT_OUT_INTENT = "whatsapp_opt_out"
_NOT_WORD = re.compile(r"[\W_]+")
_MENU_CHOICE = re.compile(r"\s*([0-9]{1,2})\s*[.)]?\s*")


def fold(text: str) -> str:
    """Text compared without case, accents or punctuation ("Páràr!" -> "parar")."""
    if text.isascii():  # the same result, without a pass per character (most messages)
        return _NOT_WORD.sub(" ", text.lower()).strip()
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    bare = "".join(char for char in decomposed if not unicodedata.combining(char))
    return _NOT_WORD.sub(" ", bare).strip()


@dataclass(frozen=True, slots=True)
class InboundOptions:
    """What the configuration decides about turning messages into bot input."""

    intents: Mapping[MessageKind, str | None] = field(default_factory=lambda: dict(DEFAULT_INTENTS))
    caption_as_text: bool = False
    opt_out_keywords: tuple[str, ...] = DEFAULT_OPT_OUT_KEYWORDS
    opt_out_intent: str | None = DEFAULT_OPT_OUT_INTENT
    """None: opt-out keywords reach the bot as plain text."""
    edits: bool = True
    """Hand an edited message's new text to the bot (False: nothing is sent)."""

    def opt_out_words(self) -> frozenset[str]:
        return _folded(self.opt_out_keywords)


@functools.lru_cache(maxsize=32)
def _folded(keywords: tuple[str, ...]) -> frozenset[str]:
    """The keywords as `fold` compares them, folded once per setting rather than per message."""
    return frozenset(fold(word) for word in keywords if fold(word))


@dataclass(frozen=True, slots=True)
class BotInput:
    """A message ready for a bot: Rasa's `UserMessage` fields, framework-free."""

    text: str
    sender_id: str
    message_id: str
    metadata: dict[str, Any]
    message: InboundMessage


def to_bot_input(
    message: InboundMessage,
    intents: Mapping[MessageKind, str | None] = DEFAULT_INTENTS,
    *,
    caption_as_text: bool = False,
    options: InboundOptions | None = None,
    identity: Identity | None = None,
) -> BotInput | None:
    """Turn a message into what the bot receives, or None when it is not for the bot.

    `identity` (from the identity store) names the conversation; without one it is the group,
    else the person as Meta named them. `options`, when given, replaces `intents` and
    `caption_as_text`.
    """
    opts = options or InboundOptions(intents=intents, caption_as_text=caption_as_text)
    text = _text_for(message, opts, identity)
    if text is None:
        logger.info(
            "Not sent to the bot: %s message %s from %s.",
            message.kind.value,
            message.id,
            message.sender,
        )
        return None
    return BotInput(
        text=text,
        sender_id=identity.conversation_id if identity else message.conversation_hint,
        message_id=message.id,
        metadata={"whatsapp": whatsapp_metadata(message)},
        message=message,
    )


def _text_for(
    message: InboundMessage, options: InboundOptions, identity: Identity | None
) -> str | None:
    if message.kind is MessageKind.EDIT:
        if not options.edits or not message.text or not message.text.strip():
            return None
        text: str | None = message.text
    else:
        text = bot_text(message, options.intents, caption_as_text=options.caption_as_text)
    if text is None or message.kind not in (MessageKind.TEXT, MessageKind.EDIT):
        return text
    if options.opt_out_intent and fold(text) in options.opt_out_words():
        logger.info("Opt-out keyword from %s: sent as /%s.", message.sender, options.opt_out_intent)
        return f"/{options.opt_out_intent}"
    if identity is not None and identity.menu:
        choice = _MENU_CHOICE.fullmatch(text)
        if choice and 1 <= int(choice.group(1)) <= len(identity.menu):
            return identity.menu[int(choice.group(1)) - 1]
    return text


class Translator:
    """Message -> bot input, with the conversation resolved by the identity store (if any).

    Called when a message is processed (the store may be Redis), never on the webhook's path.
    """

    def __init__(
        self, options: InboundOptions | None = None, identities: IdentityStore | None = None
    ) -> None:
        self.options = options or InboundOptions()
        self.identities = identities

    async def __call__(self, message: InboundMessage) -> BotInput | None:
        identity = await self.identities.resolve(message) if self.identities else None
        return to_bot_input(message, options=self.options, identity=identity)


def bot_text(
    message: InboundMessage,
    intents: Mapping[MessageKind, str | None] = DEFAULT_INTENTS,
    *,
    caption_as_text: bool = False,
) -> str | None:
    """The text the bot receives for `message` (see the module docstring), or None."""
    kind = message.kind
    if kind is MessageKind.TEXT:
        return message.text if message.text and message.text.strip() else None
    if kind in (MessageKind.BUTTON_REPLY, MessageKind.LIST_REPLY, MessageKind.TEMPLATE_BUTTON):
        if message.reply and message.reply.id:
            return message.reply.id
        return message.reply.title if message.reply and message.reply.title else None
    if kind in MEDIA_KINDS and caption_as_text and message.text and message.text.strip():
        return message.text
    intent = intents.get(kind)
    if not intent:
        return None
    entities = _entities(message)
    if not entities:
        return f"/{intent}"
    return f"/{intent}{json.dumps(entities, ensure_ascii=False, separators=(', ', ': '))}"


def _entities(message: InboundMessage) -> dict[str, Any]:
    """The fields of a non-text message that the bot can use as entities."""
    found: dict[str, Any] = {}
    if message.location is not None:
        found["latitude"] = message.location.latitude
        found["longitude"] = message.location.longitude
        found["location_name"] = message.location.name
        found["location_address"] = message.location.address
    if message.media is not None:
        found["media_id"] = message.media.id
        found["mime_type"] = message.media.mime_type
        found["caption"] = message.media.caption
        if message.kind is MessageKind.DOCUMENT:
            found["filename"] = message.media.filename
        if message.kind is MessageKind.AUDIO:
            found["voice"] = message.media.voice
    if message.kind is MessageKind.CONTACTS and message.contacts:
        first = message.contacts[0]
        name = first.get("name")
        phones = first.get("phones")
        found["contact_name"] = name.get("formatted_name") if isinstance(name, Mapping) else None
        if isinstance(phones, list) and phones and isinstance(phones[0], Mapping):
            found["contact_phone"] = phones[0].get("wa_id") or phones[0].get("phone")
    if message.order is not None:
        items = message.order.get("product_items")
        found["catalog_id"] = message.order.get("catalog_id")
        found["item_count"] = len(items) if isinstance(items, list) else None
    if message.flow_response is not None:
        found["flow_token"] = message.flow_response.get("flow_token")
    if message.reaction is not None:
        found["emoji"] = message.reaction.emoji
        found["reacted_message_id"] = message.reaction.message_id
    return {key: value for key, value in found.items() if value is not None and value != ""}


def whatsapp_metadata(message: InboundMessage) -> dict[str, Any]:
    """`metadata["whatsapp"]`: each thing once.

    - `message`, `contact`: the raw message and `contacts[]` entry, as Meta sent them (media id,
      location, reply context, referral... are read from there);
    - `phone_number_id`, `display_phone_number`: the business number that received it;
    - the person's ids, as far as Meta gave them: `wa_id` (phone), `user_id` (BSUID),
      `parent_user_id`, `username`, and `profile_name`; in a group these describe the member and
      sit under `participant`, beside `group_id`;
    - `flow_response`: a Flow's `response_json` decoded (Meta sends it as a JSON string);
    - `edited` and `original_message_id` for an edit.
    """
    person: dict[str, Any] = {}
    if message.wa_id is not None:
        person["wa_id"] = message.wa_id
    if message.user_id is not None:
        person["user_id"] = message.user_id
    if message.parent_user_id is not None:
        person["parent_user_id"] = message.parent_user_id
    if (username := message.username) is not None:
        person["username"] = username
    if (profile_name := message.profile_name) is not None:
        person["profile_name"] = profile_name
    # The parsed JSON objects themselves (what json.loads made, used by nothing else once the
    # message is parsed), not copies: two dicts fewer per message in flight.
    contact = message.contact
    metadata: dict[str, Any] = {
        "message": _plain(message.raw),
        "contact": _plain(contact.raw) if contact else None,
        "phone_number_id": message.business.phone_number_id,
        "display_phone_number": message.business.display_phone_number,
    }
    if message.group_id is not None:
        metadata["group_id"] = message.group_id
        metadata["participant"] = person
    else:
        metadata.update(person)
    if message.flow_response is not None:
        metadata["flow_response"] = dict(message.flow_response)
    if message.kind is MessageKind.EDIT:
        metadata["edited"] = True
        metadata["original_message_id"] = message.original_message_id
    return metadata


def _plain(value: Mapping[str, Any]) -> dict[str, Any]:
    """`value` as the plain dict Rasa stores in the tracker (it is one already, from json)."""
    return value if type(value) is dict else dict(value)


def opt_out_keywords(value: str | Iterable[str] | None) -> tuple[str, ...]:
    """Keywords from the configuration: a list, or one comma-separated string."""
    if value is None:
        return DEFAULT_OPT_OUT_KEYWORDS
    words = value.split(",") if isinstance(value, str) else list(value)
    return tuple(word.strip() for word in words if isinstance(word, str) and word.strip())
