"""What of a WhatsApp message reaches the bot: its text, sender, id and metadata.

The contract (README, "What reaches the bot"):

- text: the body; a reply button or list row: the reply id, which is the payload of the Rasa button
  that was sent; a template quick-reply button: its payload.
- location, media, contacts, orders and Flow answers: an intent trigger such as
  `/whatsapp_location{"latitude": -23.56, "longitude": -46.65}` whose entities carry the useful
  fields. Intent names are configurable per kind.
- reactions, system messages, unsupported and unknown types: not sent to the bot unless an intent
  name is configured for them; they are logged.

`metadata["whatsapp"]` always carries the raw message, the raw contact, the receiving number, and
typed extras, so custom actions can use anything Meta sent.
"""

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from connectors.whatsapp.core.events import MEDIA_KINDS, InboundMessage, MessageKind

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
) -> BotInput | None:
    """Turn a message into what the bot receives, or None when it is not for the bot."""
    text = bot_text(message, intents, caption_as_text=caption_as_text)
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
        sender_id=message.sender,
        message_id=message.id,
        metadata={"whatsapp": whatsapp_metadata(message)},
        message=message,
    )


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
    """`metadata["whatsapp"]`: the raw message and contact, the receiving number, typed extras."""
    metadata: dict[str, Any] = {
        "message": dict(message.raw),
        "contact": dict(message.contact.raw) if message.contact else None,
        "phone_number_id": message.business.phone_number_id,
        "display_phone_number": message.business.display_phone_number,
        "profile_name": message.profile_name,
        "wa_id": message.wa_id,
        "user_id": message.user_id,
        "type": message.type,
        "kind": message.kind.value,
        "timestamp": message.timestamp,
    }
    if message.media is not None:
        metadata["media"] = {
            "id": message.media.id,
            "mime_type": message.media.mime_type,
            "sha256": message.media.sha256,
            "caption": message.media.caption,
            "filename": message.media.filename,
            "voice": message.media.voice,
        }
    if message.location is not None:
        metadata["location"] = {
            "latitude": message.location.latitude,
            "longitude": message.location.longitude,
            "name": message.location.name,
            "address": message.location.address,
        }
    if message.reply is not None:
        metadata["reply"] = {
            "id": message.reply.id,
            "title": message.reply.title,
            "description": message.reply.description,
        }
    if message.context is not None:
        metadata["context"] = {
            "message_id": message.context.message_id,
            "from": message.context.from_,
            "forwarded": message.context.forwarded,
            "frequently_forwarded": message.context.frequently_forwarded,
        }
    if message.referral is not None:
        metadata["referral"] = dict(message.referral)
    if message.flow_response is not None:
        metadata["flow_response"] = dict(message.flow_response)
    if message.reaction is not None:
        metadata["reaction"] = {
            "message_id": message.reaction.message_id,
            "emoji": message.reaction.emoji,
        }
    return metadata
