"""What a simulated user does in the chat page, turned into Meta's inbound message objects.

The page posts small JSON actions (`{"type": "text", "text": "oi"}`, a tapped button, a chosen
list row, a shared location); this module checks them and builds the `messages[]` object Meta
would deliver (https://developers.facebook.com/docs/whatsapp/cloud-api/webhooks/components).
Photos and other files come through `media_message` once stored.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from connectors.whatsapp.core import limits

from .media import kind_of
from .state import MediaItem

PAULISTA = {
    "latitude": -23.561414,
    "longitude": -46.655881,
    "name": "Avenida Paulista",
    "address": "Av. Paulista, 1578 - Bela Vista, São Paulo - SP, 01310-200",
}


class ActionError(ValueError):
    """An action the page should not have sent: answered with 400 and this message."""


@dataclass(frozen=True, slots=True)
class UserMessage:
    """Meta's `type` and type object of an inbound message, and the message it replies to."""

    kind: str
    content: dict[str, Any]
    context_id: str | None = None


def _text(action: Mapping[str, Any], key: str, *, limit: int, required: bool = True) -> str | None:
    value = action.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value.strip()):
        raise ActionError(f"{key} must be a non-empty string")
    if len(value) > limit:
        raise ActionError(f"{key} is longer than {limit} characters")
    return value


def _number(action: Mapping[str, Any], key: str, low: float, high: float) -> float:
    value = action.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise ActionError(f"{key} must be a number between {low} and {high}")
    return float(value)


def _context(action: Mapping[str, Any]) -> str | None:
    context = action.get("context")
    if context is None:
        return None
    if not isinstance(context, str) or not context:
        raise ActionError("context must be the id of the message replied to")
    return context


def parse_action(action: object) -> UserMessage:
    """The inbound message for a page action; `ActionError` for anything malformed."""
    if not isinstance(action, Mapping):
        raise ActionError("an action is a JSON object with a 'type'")
    kind = action.get("type")
    if kind == "text":
        body = _text(action, "text", limit=limits.TEXT_BODY)
        return UserMessage("text", {"body": body})
    if kind in ("button_reply", "list_reply"):
        reply: dict[str, Any] = {
            "id": _text(action, "id", limit=limits.REPLY_BUTTON_ID),
            "title": _text(action, "title", limit=limits.LIST_ROW_TITLE),
        }
        if kind == "list_reply":
            description = _text(
                action, "description", limit=limits.LIST_ROW_DESCRIPTION, required=False
            )
            if description:
                reply["description"] = description
        return UserMessage("interactive", {"type": kind, kind: reply}, _context(action))
    if kind == "location":
        location: dict[str, Any] = {
            "latitude": _number(action, "latitude", -90, 90),
            "longitude": _number(action, "longitude", -180, 180),
        }
        for key in ("name", "address"):
            value = _text(action, key, limit=256, required=False)
            if value:
                location[key] = value
        return UserMessage("location", location, _context(action))
    raise ActionError("type must be one of text, button_reply, list_reply, location")


def media_message(item: MediaItem, caption: str | None, *, voice: bool = False) -> UserMessage:
    """The inbound message for a file the user sent, already stored in the sandbox."""
    kind = kind_of(item.mime_type)
    content: dict[str, Any] = {"mime_type": item.mime_type, "sha256": item.sha256, "id": item.id}
    if kind in ("image", "video", "document") and caption:
        content["caption"] = caption[: limits.CAPTION]
    if kind == "document":
        content["filename"] = item.filename or "document"
    if kind == "audio":
        content["voice"] = voice
    return UserMessage(kind, content)
