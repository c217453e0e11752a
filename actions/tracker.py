"""Reading the tracker: the channel, the WhatsApp metadata, entities and slots.

Entity values come from JSON (`/whatsapp_location{"latitude": -23.56, ...}`) or from a user's
typing, so every value is checked for its type before use.
"""

import math
from collections.abc import Mapping
from typing import Any, Final

from rasa_sdk import Tracker

from connectors.whatsapp.core.textfit import fit_label

WHATSAPP: Final = "whatsapp"
"""`input_channel` of the messages that come from the WhatsApp channel."""

Events = list[dict[str, Any]]
"""What an action returns: rasa_sdk events as dicts."""


def is_whatsapp(tracker: Tracker) -> bool:
    """Whether the user writes from WhatsApp, where Cloud API bodies can be sent."""
    channel: object = tracker.get_latest_input_channel()
    return channel == WHATSAPP


def whatsapp_metadata(tracker: Tracker) -> Mapping[str, Any]:
    """`metadata["whatsapp"]` of the latest user message, or {} (other channels, tests)."""
    latest: object = tracker.latest_message
    metadata = latest.get("metadata") if isinstance(latest, Mapping) else None
    whatsapp = metadata.get(WHATSAPP) if isinstance(metadata, Mapping) else None
    return whatsapp if isinstance(whatsapp, Mapping) else {}


def first_name(tracker: Tracker) -> str | None:
    """The user's first name from their WhatsApp profile, if the channel passed it on.

    The profile name is whatever the user typed in WhatsApp: only its first word is used, and a
    long one is shortened.
    """
    metadata = whatsapp_metadata(tracker)
    name = metadata.get("profile_name")
    if not isinstance(name, str):
        contact = metadata.get("contact")
        profile = contact.get("profile") if isinstance(contact, Mapping) else None
        name = profile.get("name") if isinstance(profile, Mapping) else None
    if not isinstance(name, str) or not name.split():
        return None
    return fit_label(name.split()[0], 25)


def latest_intent(tracker: Tracker) -> str | None:
    latest: object = tracker.latest_message
    intent = latest.get("intent") if isinstance(latest, Mapping) else None
    name = intent.get("name") if isinstance(intent, Mapping) else None
    return name if isinstance(name, str) else None


def latest_entity(tracker: Tracker, name: str) -> Any:
    """The value of entity `name` in the latest user message, or None."""
    return next(tracker.get_latest_entity_values(name), None)


def entity_or_slot(tracker: Tracker, name: str) -> Any:
    """The entity of the latest message, else the slot of the same name."""
    value = latest_entity(tracker, name)
    return value if value is not None else tracker.get_slot(name)


def as_text(value: object) -> str | None:
    """A non-blank string, or None: entity values come from JSON and may be anything."""
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        stripped = str(value).strip()
        return stripped or None
    return None


def as_float(value: object) -> float | None:
    """A finite number, or None (booleans are not numbers here)."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def as_bool(value: object) -> bool:
    """True for JSON `true` and for "true", "1", "yes", "sim" typed in a story or a payload."""
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes", "sim")
    return value is True
