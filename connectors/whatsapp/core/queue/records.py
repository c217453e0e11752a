"""An accepted message as stored in Redis, and back.

What is stored is what Meta sent, not our parsed form: the raw message object, its sender's
`contacts[]` entry and the change's `metadata` (the receiving number). Rebuilding goes through the
same parser as a webhook (`parse_webhook`), so a message read back is exactly the message that
would have been parsed from the webhook, whatever version of the connector stored it.
"""

import json
from typing import Any

from connectors.whatsapp.core.events import InboundMessage
from connectors.whatsapp.core.parsing import MESSAGES_FIELD, WHATSAPP_OBJECT, parse_webhook


class UnreadableRecord(ValueError):
    """A stored record that does not hold a message (written by hand, or corrupted)."""


def encode_message(message: InboundMessage) -> str:
    """The JSON text to store for `message`."""
    metadata: dict[str, Any] = {"phone_number_id": message.business.phone_number_id}
    if message.business.display_phone_number is not None:
        metadata["display_phone_number"] = message.business.display_phone_number
    record: dict[str, Any] = {"message": dict(message.raw), "metadata": metadata}
    if message.contact is not None and message.contact.raw:
        record["contact"] = dict(message.contact.raw)
    # ASCII: a lone surrogate (valid JSON, invalid UTF-8) must not make the Redis write raise.
    return json.dumps(record, separators=(",", ":"))


def decode_message(text: str | bytes) -> InboundMessage:
    """The message `encode_message` stored.

    Raises:
        UnreadableRecord: the text is not such a record.
    """
    try:
        record = json.loads(text)
    except ValueError as error:
        raise UnreadableRecord(f"not JSON: {error}") from None
    if not isinstance(record, dict) or not isinstance(record.get("message"), dict):
        raise UnreadableRecord("no 'message' object")
    value: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "metadata": record.get("metadata") or {},
        "messages": [record["message"]],
    }
    if isinstance(record.get("contact"), dict):
        value["contacts"] = [record["contact"]]
    payload = {
        "object": WHATSAPP_OBJECT,
        "entry": [{"id": "", "changes": [{"field": MESSAGES_FIELD, "value": value}]}],
    }
    messages = [event for event in parse_webhook(payload) if isinstance(event, InboundMessage)]
    if len(messages) != 1:
        raise UnreadableRecord("the stored message does not parse as one message")
    return messages[0]
