"""Building trackers the way a turn builds them, and running actions as the action server does.

A webhook body in Meta's shape (the shared fixtures) goes through the channel's parsing and
`to_bot_input`, Rasa's own parser turns the text (`/whatsapp_location{...}`, a button payload)
into intent and entities, and slots are filled from entities as the domain's `from_entity`
mappings say. The actions then run with rasa_sdk's `CollectingDispatcher`, and every Cloud API
body they send is checked against Meta's limits.
"""

import copy
from collections.abc import Mapping
from typing import Any

from rasa.shared.core.domain import Domain
from rasa.shared.core.training_data.story_reader.yaml_story_reader import YAMLStoryReader
from rasa.shared.nlu.training_data.message import Message
from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from connectors.whatsapp import builders, limits
from connectors.whatsapp.core.events import InboundMessage
from connectors.whatsapp.core.inbound import BotInput, to_bot_input
from connectors.whatsapp.core.parsing import parse_webhook
from connectors.whatsapp.core.textfit import text_length
from tests.core.fixtures import load_fixture
from tests.support.processes import PROJECT_ROOT
from tests.support.validity import assert_valid

DOMAIN = Domain.load(str(PROJECT_ROOT / "domain.yml"))
SENDER = "5511987654321"

Messages = list[dict[str, Any]]
Events = list[dict[str, Any]]


def parse_like_rasa(text: str) -> dict[str, Any]:
    """Intent and entities of an intent trigger, by the parser Rasa itself uses for them."""
    message = YAMLStoryReader.unpack_regex_message(
        Message({"text": text}), DOMAIN, "RegexMessageHandler"
    )
    intent = message.get("intent")
    assert intent, f"Rasa does not parse {text!r} as an intent of the domain"
    return {
        "text": text,
        "intent": intent,
        "intent_ranking": message.get("intent_ranking"),
        "entities": message.get("entities") or [],
    }


def slots_from_entities(entities: list[dict[str, Any]]) -> dict[str, Any]:
    """What the domain's `from_entity` slot mappings fill in for these entities."""
    slots: dict[str, Any] = {slot.name: None for slot in DOMAIN.slots}
    for slot in DOMAIN.slots:
        for mapping in slot.mappings:
            if mapping.get("type") != "from_entity":
                continue
            for entity in entities:
                if entity["entity"] == mapping.get("entity"):
                    slots[slot.name] = entity["value"]
    return slots


def tracker_for(
    text: str,
    *,
    channel: str = "whatsapp",
    metadata: Mapping[str, Any] | None = None,
    slots: Mapping[str, Any] | None = None,
) -> Tracker:
    """The tracker an action sees right after the user sent `text` (an intent trigger)."""
    latest = {**parse_like_rasa(text), "metadata": dict(metadata or {})}
    filled = {**slots_from_entities(latest["entities"]), **(slots or {})}
    events = [
        {"event": "action", "name": "action_listen"},
        {
            "event": "user",
            "text": text,
            "parse_data": latest,
            "input_channel": channel,
            "metadata": latest["metadata"],
        },
    ]
    return Tracker(SENDER, filled, latest, events, False, None, {}, "action_listen")


def webhook_input(fixture: str) -> BotInput:
    """What the WhatsApp channel hands to Rasa for the fixture's message."""
    [message] = [e for e in parse_webhook(load_fixture(fixture)) if isinstance(e, InboundMessage)]
    bot_input = to_bot_input(message)
    assert bot_input is not None
    return bot_input


def tracker_from_webhook(fixture: str) -> Tracker:
    """The tracker after the WhatsApp channel handed the fixture's message to Rasa."""
    bot_input = webhook_input(fixture)
    return tracker_for(bot_input.text, metadata=bot_input.metadata)


async def run(action: Action, tracker: Tracker) -> tuple[Messages, Events]:
    dispatcher = CollectingDispatcher()
    events = await action.run(dispatcher, tracker, DOMAIN.as_dict())
    messages: Messages = dispatcher.messages
    return messages, events


def customs(messages: Messages) -> list[dict[str, Any]]:
    """The Cloud API bodies sent with `json_message`, each checked as the channel would send it."""
    bodies = [message["custom"] for message in messages if message.get("custom")]
    for body in bodies:
        assert_sendable(body)
    return bodies


def texts(messages: Messages) -> str:
    return "\n".join(message["text"] for message in messages if message.get("text"))


def slot_events(events: Events) -> dict[str, Any]:
    return {event["name"]: event["value"] for event in events if event["event"] == "slot"}


def domain_buttons(response: str) -> list[dict[str, Any]]:
    """The response's buttons as Rasa sends them: placeholders filled, `{{` `}}` unescaped."""
    from rasa.core.nlg.interpolator import interpolate

    [variation] = DOMAIN.responses[response]
    buttons: list[dict[str, Any]] = interpolate(copy.deepcopy(variation["buttons"]), {})
    return buttons


# --------------------------------------------------------------------------------------------
# Meta's limits, checked by the independent checker of tests/support.


def assert_label(label: str, limit: int) -> None:
    """Fits, and was not shortened by a builder (the bot's own content is written to fit)."""
    assert text_length(label) <= limit, label
    assert not label.endswith("…"), f"{label!r} was shortened to fit"


def labels(interactive: Mapping[str, Any]) -> list[tuple[str, int]]:
    """The labels of an interactive message that builders shorten, with their limits."""
    action = interactive["action"]
    found: list[tuple[str, int]] = []
    if interactive["type"] == "list":
        found.append((action["button"], limits.LIST_BUTTON_LABEL))
        for section in action["sections"]:
            if "title" in section:
                found.append((section["title"], limits.LIST_SECTION_TITLE))
            for row in section["rows"]:
                found.append((row["title"], limits.LIST_ROW_TITLE))
                if "description" in row:
                    found.append((row["description"], limits.LIST_ROW_DESCRIPTION))
    elif interactive["type"] == "button":
        found += [(b["reply"]["title"], limits.REPLY_BUTTON_TITLE) for b in action["buttons"]]
    elif interactive["type"] == "cta_url":
        found.append((action["parameters"]["display_text"], limits.CTA_DISPLAY_TEXT))
    return found


def assert_sendable(body: Mapping[str, Any]) -> None:
    """A custom body as an action sends it: unaddressed (the channel fills in the recipient),
    within every limit once addressed, and with no label that had to be shortened."""
    assert "to" not in body and "recipient" not in body, "the channel addresses custom bodies"
    assert_valid(builders.complete(body, SENDER))
    if body["type"] == "interactive":
        for label, limit in labels(body["interactive"]):
            assert_label(label, limit)
    if body["type"] == "image":
        assert body["image"]["link"].startswith("https://")
