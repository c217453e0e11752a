import json
from typing import Any

import pytest

from connectors.whatsapp.core.events import InboundMessage, MessageKind
from connectors.whatsapp.core.inbound import bot_text, intent_names, to_bot_input
from connectors.whatsapp.core.parsing import parse_webhook
from tests.conftest import PHONE_NUMBER_ID
from tests.support.webhooks import user_message

SENDER = "5511987654321"


def parsed(kind: str, content: dict[str, Any]) -> InboundMessage:
    payload, _ = user_message(SENDER, kind, content)
    [message] = parse_webhook(payload)
    assert isinstance(message, InboundMessage)
    return message


def intent_and_entities(text: str) -> tuple[str, dict[str, Any]]:
    assert text.startswith("/")
    name, _, rest = text[1:].partition("{")
    return name, json.loads("{" + rest) if rest else {}


def test_text_reaches_the_bot_as_its_body() -> None:
    bot_input = to_bot_input(parsed("text", {"body": "Quero ver o cardápio"}))
    assert bot_input is not None
    assert bot_input.text == "Quero ver o cardápio"
    assert bot_input.sender_id == SENDER
    assert bot_input.message_id.startswith("wamid.")


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ({"type": "button_reply", "button_reply": {"id": "/menu", "title": "Menu"}}, "/menu"),
        (
            {"type": "list_reply", "list_reply": {"id": '/plano{"p":"b"}', "title": "Básico"}},
            '/plano{"p":"b"}',
        ),
    ],
)
def test_interactive_replies_reach_the_bot_as_their_id(
    content: dict[str, Any], expected: str
) -> None:
    assert bot_text(parsed("interactive", content)) == expected


def test_template_quick_reply_reaches_the_bot_as_its_payload() -> None:
    assert bot_text(parsed("button", {"payload": "/confirmar", "text": "Sim"})) == "/confirmar"


def test_location_becomes_an_intent_with_its_fields_as_entities() -> None:
    content = {
        "latitude": -23.5614,
        "longitude": -46.6559,
        "name": "MASP",
        "address": "Av. Paulista",
    }
    intent, entities = intent_and_entities(bot_text(parsed("location", content)) or "")
    assert intent == "whatsapp_location"
    assert entities == {
        "latitude": -23.5614,
        "longitude": -46.6559,
        "location_name": "MASP",
        "location_address": "Av. Paulista",
    }


def test_voice_note_becomes_an_audio_intent() -> None:
    content = {"id": "media-1", "mime_type": "audio/ogg; codecs=opus", "voice": True}
    intent, entities = intent_and_entities(bot_text(parsed("audio", content)) or "")
    assert intent == "whatsapp_audio"
    assert entities == {"media_id": "media-1", "mime_type": "audio/ogg; codecs=opus", "voice": True}


def test_captioned_photo_is_an_intent_by_default_and_text_when_configured() -> None:
    message = parsed("image", {"id": "m", "mime_type": "image/jpeg", "caption": "minha nota"})
    intent, entities = intent_and_entities(bot_text(message) or "")
    assert (intent, entities["caption"]) == ("whatsapp_image", "minha nota")
    assert bot_text(message, caption_as_text=True) == "minha nota"


def test_reactions_are_not_for_the_bot_unless_an_intent_is_configured() -> None:
    message = parsed("reaction", {"message_id": "wamid.X", "emoji": "👍"})
    assert to_bot_input(message) is None
    names = intent_names({"reaction": "reagiu"})
    intent, entities = intent_and_entities(bot_text(message, names) or "")
    assert intent == "reagiu" and entities["emoji"] == "👍"


def test_intent_names_are_configurable_and_unknown_kinds_refused() -> None:
    names = intent_names({"location": "localizacao", "image": None})
    message = parsed("location", {"latitude": 1.0, "longitude": 2.0})
    assert (bot_text(message, names) or "").startswith("/localizacao{")
    assert bot_text(parsed("image", {"id": "m"}), names) is None
    with pytest.raises(ValueError, match="unknown message kind"):
        intent_names({"hologram": "x"})


def test_metadata_carries_raw_message_contact_and_receiving_number() -> None:
    bot_input = to_bot_input(parsed("location", {"latitude": 1.0, "longitude": 2.0}))
    assert bot_input is not None
    whatsapp = bot_input.metadata["whatsapp"]
    assert whatsapp["message"]["type"] == "location"
    assert whatsapp["contact"] == {"profile": {"name": "Ana"}, "wa_id": SENDER}
    assert whatsapp["phone_number_id"] == PHONE_NUMBER_ID
    assert whatsapp["display_phone_number"]
    assert whatsapp["profile_name"] == "Ana"
    assert whatsapp["wa_id"] == SENDER
    json.dumps(bot_input.metadata)  # stored by tracker stores: must be JSON


def test_metadata_holds_each_field_once() -> None:
    # Issue 11: what is in the raw message (media, location, reply context...) is not copied
    # again in another shape; Rasa stores the metadata with every user event.
    bot_input = to_bot_input(parsed("location", {"latitude": 1.0, "longitude": 2.0}))
    assert bot_input is not None
    whatsapp = bot_input.metadata["whatsapp"]
    assert set(whatsapp) == {
        "message",
        "contact",
        "phone_number_id",
        "display_phone_number",
        "wa_id",
        "profile_name",
    }
    assert whatsapp["message"]["location"]["latitude"] == 1.0


def test_unknown_type_is_not_for_the_bot() -> None:
    message = parsed("hologram", {"x": 1})
    assert message.kind is MessageKind.UNKNOWN
    assert to_bot_input(message) is None
