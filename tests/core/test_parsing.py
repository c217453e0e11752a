"""parse_webhook / parse_webhook_body: every fixture parses to exactly the expected events, and no
JSON shape, however odd, makes parsing raise anything but InvalidWebhook."""

import copy
import json
import logging
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.whatsapp.core.events import (
    BusinessNumber,
    Contact,
    ErrorDetail,
    Event,
    InboundMessage,
    Location,
    Media,
    MessageKind,
    PlatformEvent,
    Reaction,
    Reply,
    ReplyContext,
    SkippedChange,
    StatusUpdate,
    UserPreference,
    WebhookErrors,
)
from connectors.whatsapp.core.parsing import InvalidWebhook, parse_webhook, parse_webhook_body
from tests.conftest import PHONE_NUMBER_ID
from tests.core.fixtures import fixture_bytes, fixture_names, load_fixture

WABA = "whatsapp_business_account"
DISPLAY = "15550783881"
WA_ID = "5511987654321"
WA_ID_2 = "5521998765432"
BSUID = "BR.13491208655302741918"
OUTBOUND = "wamid.HBgNNTUxMTk4NzY1NDMyMRUCABEYEjQ0QjA2RjMxQUMwQTNFRDYzOQA="
OUTBOUND_2 = "wamid.HBgNNTUxMTk4NzY1NDMyMRUCABEYEkI2RTNDNzVFQkQ4QTg5RjRCMgA="
BUSINESS = BusinessNumber(phone_number_id=PHONE_NUMBER_ID, display_phone_number=DISPLAY)
BUSINESS_2 = BusinessNumber(phone_number_id="106540352242923", display_phone_number="15550783882")
MARIA = Contact(wa_id=WA_ID, profile_name="Maria Silva")
JOAO = Contact(wa_id=WA_ID_2, profile_name="João Souza")
ERROR_CODES_HREF = "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"


def wamid(n: int) -> str:
    """The inbound message ids used by the fixtures (distinct per message)."""
    return f"wamid.HBgNNTUxMTk4NzY1NDMyMRUCABIYFDNBMDJCMEQ1QjY5RkI3QzFC{n:04d}AA=="


def inbound(
    n: int,
    kind: MessageKind,
    type_: str | None = None,
    *,
    ts: int = 1749416383,
    sender: str = WA_ID,
    contact: Contact | None = MARIA,
    business: BusinessNumber = BUSINESS,
    **fields: Any,
) -> InboundMessage:
    fields.setdefault("wa_id", sender)
    return InboundMessage(
        id=wamid(n),
        kind=kind,
        type=type_ or kind.value,
        sender=sender,
        business=business,
        timestamp=ts,
        contact=contact,
        **fields,
    )


def status(
    message_id: str,
    state: str,
    ts: int,
    *,
    recipient: str = WA_ID,
    business: BusinessNumber = BUSINESS,
    **fields: Any,
) -> StatusUpdate:
    pricing = fields.get("pricing") or {}
    if pricing:
        fields.setdefault("pricing_category", pricing.get("category"))
        fields.setdefault("pricing_model", pricing.get("pricing_model"))
        fields.setdefault("billable", pricing.get("billable"))
    return StatusUpdate(
        message_id=message_id,
        status=state,
        recipient_id=recipient,
        business=business,
        timestamp=ts,
        **fields,
    )


class Mentions:
    """Equal to any string containing `part`: reasons are prose, only their subject is fixed."""

    def __init__(self, part: str) -> None:
        self.part = part

    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and self.part in other

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<a reason mentioning {self.part!r}>"


def skipped(field: str | None, part: str, obj: str | None = WABA) -> SkippedChange:
    return SkippedChange(object=obj, field=field, reason=Mentions(part))  # type: ignore[arg-type]


REPLY_TO_OUR_MESSAGE = ReplyContext(message_id=OUTBOUND, from_=DISPLAY)
CONVERSATION = {
    "id": "5c7f2b7d3e1f4a2b8c9d0e1f2a3b4c5d",
    "origin": {"type": "service"},
}
PRICING = {
    "billable": False,
    "pricing_model": "PMP",
    "category": "service",
    "type": "free_customer_service",
}

EXPECTED: dict[str, list[Event]] = {
    "text": [inbound(1, MessageKind.TEXT, text="Does it come in another color?")],
    "text_reply_context": [
        inbound(
            2,
            MessageKind.TEXT,
            text="Yes, the blue one please",
            context=REPLY_TO_OUR_MESSAGE,
        ),
        inbound(
            32,
            MessageKind.TEXT,
            ts=1749416384,
            text="Is this available in size 42?",
            context=ReplyContext(
                message_id=OUTBOUND_2,
                from_=DISPLAY,
                referred_product={
                    "catalog_id": "354160437058781",
                    "product_retailer_id": "SKU-SNEAKER-42",
                },
            ),
        ),
    ],
    "text_forwarded": [
        inbound(
            3,
            MessageKind.TEXT,
            text="Look at this offer",
            context=ReplyContext(forwarded=True),
        ),
        inbound(
            31,
            MessageKind.TEXT,
            ts=1749416384,
            text="Chain letter: forward to 10 friends",
            context=ReplyContext(frequently_forwarded=True),
        ),
    ],
    "text_referral": [
        inbound(
            4,
            MessageKind.TEXT,
            text="Hi! I saw your ad, is the sale still on?",
            referral={
                "source_url": "https://fb.me/3cr4Wqqkv",
                "source_id": "120226305854810726",
                "source_type": "ad",
                "body": "Summer sale: 30% off all sneakers this week only.",
                "headline": "Chat with us",
                "media_type": "image",
                "image_url": "https://scontent.xx.fbcdn.net/v/t45.1600-4/518949175_n.png",
                "ctwa_clid": "ARAkLkA8rmlFeiCktEJQ-QTwRiyYHAFDLMNDBH0CD3qpjd0HR4irJ6LEkR7JwFF4Xv"
                "nO2E4Nx0-eM-GABDLOPaOdRMv-_zfUQ2a",
                "welcome_message": {"text": "Hi there! Let us know how we can help."},
            },
        )
    ],
    "text_bsuid": [
        inbound(
            5,
            MessageKind.TEXT,
            sender=BSUID,
            wa_id=None,
            user_id=BSUID,
            contact=Contact(
                wa_id=None, user_id=BSUID, profile_name="Maria Silva", username="@mariasilva"
            ),
            text="Hello from a username account",
        )
    ],
    "text_emoji_non_bmp": [
        inbound(
            6,
            MessageKind.TEXT,
            text="Obrigada \U0001f600\U0001f44d\U0001f3fd great service \u2764\ufe0f",
        )
    ],
    "text_portuguese": [
        inbound(
            7,
            MessageKind.TEXT,
            contact=Contact(wa_id=WA_ID, profile_name="João Conceição"),
            text="Olá! Você pode confirmar a entrega para 10/06? Não recebi o código de rastreio. "
            "Açaí, pão e maçã.",
        )
    ],
    "button_reply": [
        inbound(
            8,
            MessageKind.BUTTON_REPLY,
            "interactive",
            reply=Reply(id="/affirm", title="Yes, change it"),
            context=REPLY_TO_OUR_MESSAGE,
        )
    ],
    "list_reply": [
        inbound(
            9,
            MessageKind.LIST_REPLY,
            "interactive",
            reply=Reply(
                id='/choose_slot{"slot":"tue-10"}',
                title="Tuesday 10:00",
                description="With Dr. Lima, room 2",
            ),
            context=REPLY_TO_OUR_MESSAGE,
        )
    ],
    "nfm_reply": [
        inbound(
            10,
            MessageKind.FLOW_REPLY,
            "interactive",
            text="Sent",
            reply=Reply(id="flow", title="Sent"),
            flow_response={
                "flow_token": "booking-7f3c",
                "screen_0_date_0": "2025-06-10",
                "screen_0_people_1": "2",
                "screen_0_notes_2": "Window seat",
            },
            context=REPLY_TO_OUR_MESSAGE,
        )
    ],
    "template_button": [
        inbound(
            11,
            MessageKind.TEMPLATE_BUTTON,
            reply=Reply(id="/stop_promotions", title="Stop promotions"),
            context=REPLY_TO_OUR_MESSAGE,
        )
    ],
    "image": [
        inbound(
            12,
            MessageKind.IMAGE,
            text="This is the damaged box",
            media=Media(
                id="1003383421387256",
                mime_type="image/jpeg",
                sha256="YjMzZmQ0OTdkYTc5ZDU1MjNlYWE5OTQ3ZTc4ZWY0NWIzZmI0NzM1NmE2ZmY1MGQ5ZQ==",
                caption="This is the damaged box",
            ),
        )
    ],
    "audio_voice": [
        inbound(
            13,
            MessageKind.AUDIO,
            media=Media(
                id="1234577012763312",
                mime_type="audio/ogg; codecs=opus",
                sha256="m04pFf2ERdaopTyFkGPA0+bX3i+YY2dYgVFwOgDLSDI=",
                voice=True,
            ),
        )
    ],
    "video": [
        inbound(
            14,
            MessageKind.VIDEO,
            text="Unboxing",
            media=Media(
                id="1294386945122815",
                mime_type="video/mp4",
                sha256="Jh+2ij6PzUv/J2y+grrtegr/ZMzRxkEPwc24Oyib4s0=",
                caption="Unboxing",
            ),
        )
    ],
    "document": [
        inbound(
            15,
            MessageKind.DOCUMENT,
            text="Invoice for order 1234",
            media=Media(
                id="1588426418509830",
                mime_type="application/pdf",
                sha256="grwfwe/ZPx0wAbdfbdeFUNItPZ0RylL8gGUvdt3YFqc=",
                caption="Invoice for order 1234",
                filename="invoice-1234.pdf",
            ),
        )
    ],
    "sticker": [
        inbound(
            16,
            MessageKind.STICKER,
            media=Media(
                id="1171534287485371",
                mime_type="image/webp",
                sha256="HcwyCKrTKXHk0a00ms4HWIA76GY0Du6q4Z/iuwevw1g=",
                animated=True,
            ),
        )
    ],
    "location": [
        inbound(
            17,
            MessageKind.LOCATION,
            location=Location(
                latitude=-23.561414,
                longitude=-46.655881,
                name="MASP",
                address="Av. Paulista, 1578 - Bela Vista, São Paulo - SP, 01310-200",
                url="https://masp.org.br",
            ),
        )
    ],
    "contacts": [
        inbound(
            18,
            MessageKind.CONTACTS,
            contacts=(
                {
                    "addresses": [
                        {
                            "city": "São Paulo",
                            "country": "Brazil",
                            "country_code": "br",
                            "state": "SP",
                            "street": "Rua Augusta, 100",
                            "type": "HOME",
                            "zip": "01304-000",
                        }
                    ],
                    "birthday": "1990-04-21",
                    "emails": [{"email": "ana.costa@example.com", "type": "WORK"}],
                    "name": {
                        "first_name": "Ana",
                        "last_name": "Costa",
                        "formatted_name": "Ana Costa",
                    },
                    "org": {"company": "Costa Design", "department": "Studio", "title": "Owner"},
                    "phones": [
                        {"phone": "+55 11 91234-5678", "wa_id": "5511912345678", "type": "CELL"}
                    ],
                    "urls": [{"url": "https://costa.example.com", "type": "WORK"}],
                },
                {
                    "name": {"first_name": "Pedro", "formatted_name": "Pedro"},
                    "phones": [{"phone": "+55 21 3333-4444", "type": "HOME"}],
                },
            ),
        )
    ],
    "reaction": [
        inbound(
            19, MessageKind.REACTION, reaction=Reaction(message_id=OUTBOUND, emoji="\U0001f44d")
        )
    ],
    "reaction_removed": [
        inbound(20, MessageKind.REACTION, reaction=Reaction(message_id=OUTBOUND, emoji=None))
    ],
    "order": [
        inbound(
            21,
            MessageKind.ORDER,
            order={
                "catalog_id": "354160437058781",
                "text": "Please deliver after 6pm",
                "product_items": [
                    {
                        "product_retailer_id": "SKU-SNEAKER-42",
                        "quantity": 1,
                        "item_price": 349.9,
                        "currency": "BRL",
                    },
                    {
                        "product_retailer_id": "SKU-SOCKS-3P",
                        "quantity": 2,
                        "item_price": 39.9,
                        "currency": "BRL",
                    },
                ],
            },
        )
    ],
    "system": [
        inbound(
            22,
            MessageKind.SYSTEM,
            contact=None,
            system={
                "body": "User Maria Silva changed from 5511987654321 to 5511976543210",
                "wa_id": "5511976543210",
                "type": "user_changed_number",
            },
        ),
        # `user_changed_user_id` has no `from`: the user is known by the new BSUID.
        inbound(
            23,
            MessageKind.SYSTEM,
            ts=1749416390,
            sender="BR.20582319766413852029",
            wa_id=None,
            contact=None,
            system={
                "body": "User changed from BR.13491208655302741918 to BR.20582319766413852029",
                "user_id": "BR.20582319766413852029",
                "previous_user_id": BSUID,
                "type": "user_changed_user_id",
            },
        ),
    ],
    "unsupported": [
        inbound(
            24,
            MessageKind.UNSUPPORTED,
            errors=(
                ErrorDetail(
                    code=131051,
                    title="Message type unknown",
                    message="Message type unknown",
                    details="Message type is currently not supported.",
                ),
            ),
        )
    ],
    "unknown": [
        inbound(
            25,
            MessageKind.UNSUPPORTED,
            "unknown",
            errors=(
                ErrorDetail(
                    code=131051,
                    title="Unsupported message type",
                    details="Message type is not currently supported",
                ),
            ),
        )
    ],
    "unknown_future_type": [inbound(26, MessageKind.UNKNOWN, "hologram")],
    "status_sent": [
        status(
            OUTBOUND,
            "sent",
            1749416400,
            conversation={**CONVERSATION, "expiration_timestamp": "1749502783"},
            pricing=PRICING,
            biz_opaque_callback_data="order-1234",
        )
    ],
    "status_delivered": [
        status(OUTBOUND, "delivered", 1749416402, conversation=CONVERSATION, pricing=PRICING)
    ],
    "status_read": [status(OUTBOUND, "read", 1749416460)],
    "status_failed": [
        status(
            OUTBOUND_2,
            "failed",
            1749502900,
            errors=(
                ErrorDetail(
                    code=131047,
                    title="Re-engagement message",
                    message="Re-engagement message",
                    details="Message failed to send because more than 24 hours have passed since "
                    "the customer last replied to this number.",
                    href=ERROR_CODES_HREF,
                ),
            ),
        )
    ],
    "value_errors": [
        WebhookErrors(
            business=BUSINESS,
            errors=(
                ErrorDetail(
                    code=131000,
                    title="Something went wrong",
                    message="Something went wrong",
                    details="Unsupported webhook payload",
                    href=ERROR_CODES_HREF,
                ),
            ),
        )
    ],
    "multi_entry_batch": [
        # entry 0, change 0: three messages from two users, each matched to its own contact
        inbound(101, MessageKind.TEXT, ts=1749416500, text="first"),
        inbound(102, MessageKind.TEXT, ts=1749416501, sender=WA_ID_2, contact=JOAO, text="oi"),
        inbound(103, MessageKind.TEXT, ts=1749416502, text="second"),
        # entry 0, change 1: statuses
        status(OUTBOUND, "delivered", 1749416503),
        status(OUTBOUND, "read", 1749416504),
        # entry 0, change 2: not a message
        skipped("message_template_status_update", "message_template_status_update"),
        # entry 1 (another number), change 0: messages, then the statuses of the same change
        inbound(
            104,
            MessageKind.BUTTON_REPLY,
            "interactive",
            ts=1749416505,
            business=BUSINESS_2,
            reply=Reply(id="/deny", title="No"),
        ),
        inbound(
            105,
            MessageKind.LOCATION,
            ts=1749416506,
            business=BUSINESS_2,
            location=Location(latitude=-22.951916, longitude=-43.210487),
        ),
        status(OUTBOUND_2, "sent", 1749416507, business=BUSINESS_2),
        # entry 1, change 1
        status(
            OUTBOUND_2,
            "failed",
            1749416508,
            recipient=WA_ID_2,
            business=BUSINESS_2,
            errors=(
                ErrorDetail(
                    code=131026,
                    title="Message undeliverable",
                    message="Message undeliverable",
                    details="Message Undeliverable.",
                ),
            ),
        ),
    ],
    "template_status_update": [
        skipped("message_template_status_update", "message_template_status_update")
    ],
    "account_update": [skipped("account_update", "account_update")],
    "message_echoes": [skipped("smb_message_echoes", "smb_message_echoes")],
    "other_object": [skipped(None, "page", obj="page")],
}

# --- the 2026 platform: BSUIDs, usernames, groups, standby, preferences, edits -----------------
BSUID_NEW = "BR.20582319766413852029"
PARENT = "BR.ENT.11815799212886844830"
PARENT_NEW = "BR.ENT.22926800323997955941"
WA_ID_NEW = "5511976543210"
GROUP = "Y2FwaV9ncm91cDoxMjAzNjMwNDI3NzgxNjQ4OTQ="


def _change(name: str) -> dict[str, Any]:
    change: dict[str, Any] = load_fixture(name)["entry"][0]["changes"][0]
    return change


def _notice(name: str, field: str, group_id: str | None = None) -> PlatformEvent:
    return PlatformEvent(field=field, business=BUSINESS, group_id=group_id, raw=_change(name))


EXPECTED.update(
    {
        "text_phone_and_bsuid": [
            inbound(
                40,
                MessageKind.TEXT,
                user_id=BSUID,
                parent_user_id=PARENT,
                contact=Contact(
                    wa_id=WA_ID, user_id=BSUID, profile_name="Maria Silva", parent_user_id=PARENT
                ),
                text="Oi, sou a Maria",
            )
        ],
        "system_user_changed_number": [
            inbound(
                41,
                MessageKind.SYSTEM,
                ts=1749416390,
                user_id=BSUID,
                contact=None,
                system={
                    "body": f"User Maria Silva changed from {WA_ID} to {WA_ID_NEW}",
                    "wa_id": WA_ID_NEW,
                    "user_id": BSUID_NEW,
                    "type": "user_changed_number",
                },
            )
        ],
        "system_user_changed_user_id": [
            inbound(
                42,
                MessageKind.SYSTEM,
                ts=1749416395,
                sender=BSUID_NEW,
                wa_id=None,
                contact=None,
                system={
                    "body": "User Maria Silva's user ID changed",
                    "user_id": BSUID_NEW,
                    "parent_user_id": PARENT_NEW,
                    "previous_user_id": BSUID,
                    "previous_parent_user_id": PARENT,
                    "type": "user_changed_user_id",
                },
            )
        ],
        "group_text": [
            inbound(
                43,
                MessageKind.TEXT,
                ts=1749416400,
                user_id=BSUID,
                group_id=GROUP,
                contact=Contact(wa_id=WA_ID, user_id=BSUID, profile_name="Maria Silva"),
                text="Bom dia, grupo",
            )
        ],
        "group_lifecycle_update": [
            _notice("group_lifecycle_update", "group_lifecycle_update", GROUP)
        ],
        "group_participants_update": [
            _notice("group_participants_update", "group_participants_update", GROUP)
        ],
        # Meta's Business Agent holds the conversation: the message is not ours to answer.
        "standby": [_notice("standby", "standby")],
        "messaging_handovers": [_notice("messaging_handovers", "messaging_handovers")],
        "user_preferences": [
            UserPreference(
                business=BUSINESS,
                wa_id=WA_ID,
                user_id=BSUID,
                category="marketing_messages",
                value="stop",
                detail="User requested to stop marketing messages",
                timestamp=1749416430,
            )
        ],
        "edit": [
            inbound(
                45,
                MessageKind.EDIT,
                ts=1749416440,
                text="Does it come in another colour?",
                original_message_id=wamid(1),
            )
        ],
        "revoke": [inbound(46, MessageKind.REVOKE, ts=1749416450, original_message_id=wamid(1))],
        "call_permission_reply": [
            inbound(47, MessageKind.CALL_PERMISSION_REPLY, "interactive", ts=1749416460)
        ],
        "status_pricing_bsuid": [
            status(
                OUTBOUND,
                "delivered",
                1749416470,
                recipient=BSUID,
                recipient_user_id=BSUID,
                pricing={
                    "billable": True,
                    "pricing_model": "PMP",
                    "category": "utility",
                    "type": "regular",
                },
            )
        ],
        "status_group": [
            status(
                OUTBOUND,
                "read",
                1749416480,
                recipient=GROUP,
                recipient_type="group",
                recipient_participant_id=WA_ID,
                pricing={
                    "billable": True,
                    "pricing_model": "PMP",
                    "category": "marketing",
                    "type": "regular",
                },
            )
        ],
        "status_failed_reengagement": [
            status(
                OUTBOUND,
                "failed",
                1749416490,
                errors=(
                    ErrorDetail(
                        code=131047,
                        title="Re-engagement message",
                        message="Re-engagement message",
                        details="Message failed to send because more than 24 hours have passed "
                        "since the customer last replied to this number.",
                        href=ERROR_CODES_HREF,
                    ),
                ),
            )
        ],
    }
)


RAW_BYTES_FIXTURES = ("text_emoji_non_bmp", "text_portuguese")


# --- every fixture, parsed -------------------------------------------------------------------


@pytest.mark.parametrize("name", fixture_names())
def test_fixture_parses_to_expected_events(name: str) -> None:
    assert name in EXPECTED, f"fixture {name}.json has no expectation in EXPECTED"
    assert parse_webhook_body(fixture_bytes(name)) == EXPECTED[name]


def test_every_expectation_has_a_fixture() -> None:
    assert sorted(EXPECTED) == fixture_names()


def _objects_in(value: object) -> Iterator[object]:
    yield value
    if isinstance(value, Mapping):
        for item in value.values():
            yield from _objects_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from _objects_in(item)


@pytest.mark.parametrize("name", fixture_names())
def test_every_event_keeps_its_raw_object(name: str) -> None:
    payload = load_fixture(name)
    own_objects = {id(obj) for obj in _objects_in(payload) if isinstance(obj, Mapping)}
    for event in parse_webhook(payload):
        assert id(event.raw) in own_objects
        if isinstance(event, InboundMessage):
            assert event.raw["id"] == event.id
            if event.contact is not None:
                assert id(event.contact.raw) in own_objects
        elif isinstance(event, StatusUpdate):
            assert event.raw["id"] == event.message_id


def test_a_status_for_a_bsuid_recipient_uses_recipient_user_id() -> None:
    payload = load_fixture("status_read")
    raw_status = payload["entry"][0]["changes"][0]["value"]["statuses"][0]
    del raw_status["recipient_id"]
    raw_status["recipient_user_id"] = BSUID
    [event] = parse_webhook(payload)
    assert isinstance(event, StatusUpdate)
    assert event.recipient_id == BSUID


@pytest.mark.parametrize("name", RAW_BYTES_FIXTURES)
def test_raw_bytes_fixtures_keep_metas_escaping(name: str) -> None:
    body = fixture_bytes(name)
    # As Meta sends it: compact ASCII, non-ASCII as \uXXXX, "/" as "\/", no trailing newline.
    assert body.isascii()
    assert b"\\u" in body
    assert b"\n" not in body
    assert json.dumps(json.loads(body)).encode() != body
    assert parse_webhook_body(body) == parse_webhook(json.loads(body))


def test_non_bmp_emoji_are_decoded_from_surrogate_pairs() -> None:
    assert b"\\ud83d\\ude00" in fixture_bytes("text_emoji_non_bmp")
    [message] = parse_webhook_body(fixture_bytes("text_emoji_non_bmp"))
    assert isinstance(message, InboundMessage)
    assert message.text is not None
    assert "\U0001f600" in message.text
    assert not any(0xD800 <= ord(char) <= 0xDFFF for char in message.text)


# --- not a webhook ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "not JSON"),
        (b"hello", "not JSON"),
        (b'{"object": "whatsapp_business_account", "entry": [', "not JSON"),
        (b"\xff\xfe{\x00}\x00", "not UTF-8"),
        ('{"entry": [], "x": "caf\u00e9"}'.encode("latin-1"), "not UTF-8"),
        (b'{"entry": [], "x": NaN}', "not JSON"),
        pytest.param(b'{"entry": [], "x": ' + b"9" * 5000 + b"}", "not JSON", id="huge-int"),
        pytest.param(b"[" * 100_000 + b"]" * 100_000, "not JSON", id="nested-too-deeply"),
        (b"[]", "not a JSON object"),
        (b"null", "not a JSON object"),
        (b'"whatsapp_business_account"', "not a JSON object"),
        (b"42", "not a JSON object"),
        (b"{}", "'entry'"),
        (b'{"object": "whatsapp_business_account"}', "'entry'"),
        (b'{"object": "whatsapp_business_account", "entry": {}}', "'entry'"),
        (b'{"object": "whatsapp_business_account", "entry": null}', "'entry'"),
        (b'{"object": "whatsapp_business_account", "entry": "[]"}', "'entry'"),
    ],
)
def test_a_body_that_is_not_a_webhook_raises_invalid_webhook(body: bytes, reason: str) -> None:
    with pytest.raises(InvalidWebhook) as caught:
        parse_webhook_body(body)
    assert reason in caught.value.reason
    assert str(caught.value) == caught.value.reason
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize("payload", [None, [], "text", 1, 1.5, True, b"{}"])
def test_parse_webhook_rejects_what_is_not_an_object(payload: object) -> None:
    with pytest.raises(InvalidWebhook, match="not a JSON object"):
        parse_webhook(payload)


def test_an_empty_entry_list_is_a_webhook_with_no_events() -> None:
    assert parse_webhook({"object": WABA, "entry": []}) == []


def test_another_products_webhook_is_one_skipped_change() -> None:
    payload = {"object": "instagram", "entry": [{"id": "1", "changes": [{"field": "messages"}]}]}
    [event] = parse_webhook(payload)
    assert event == skipped(None, "instagram", obj="instagram")
    assert event.raw is payload


def test_a_webhook_without_object_is_skipped_not_parsed() -> None:
    payload = load_fixture("text")
    del payload["object"]
    assert parse_webhook(payload) == [skipped(None, "None", obj=None)]


# --- odd shapes inside a valid envelope ------------------------------------------------------


def _text_payload() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """A fresh `text` fixture, with its change value and its message."""
    payload = load_fixture("text")
    value = payload["entry"][0]["changes"][0]["value"]
    return payload, value, value["messages"][0]


def _only_message(payload: object) -> InboundMessage:
    [event] = parse_webhook(payload)
    assert isinstance(event, InboundMessage)
    return event


@pytest.mark.parametrize("missing", ["id", "from"])
def test_a_message_without_id_or_sender_is_skipped_with_a_warning(
    missing: str, caplog: pytest.LogCaptureFixture
) -> None:
    payload, value, message = _text_payload()
    second = dict(message, id=wamid(900))
    value["messages"].append(second)
    del message[missing]
    with caplog.at_level(logging.WARNING, logger="connectors.whatsapp.core.parsing"):
        events = parse_webhook(payload)
    assert [event.id for event in events if isinstance(event, InboundMessage)] == [wamid(900)]
    assert "messages[0]" in caplog.text
    assert "message ignored" in caplog.text


@pytest.mark.parametrize("bad", [None, "", 5511987654321 * 10**40, True, {}, []])
def test_a_sender_of_the_wrong_type_counts_as_missing(bad: object) -> None:
    payload, _value, message = _text_payload()
    message["from"] = bad
    assert parse_webhook(payload) == []


@pytest.mark.parametrize("key", ["id", "from", "from_user_id", "group_id"])
def test_an_identity_field_that_is_a_number_is_not_handed_on(key: str) -> None:
    # Meta sends ids as strings; an integer `from` read as "5511987654321" would be a person
    # nobody wrote as.
    payload, _value, message = _text_payload()
    message[key] = 5511987654321
    assert [e for e in parse_webhook(payload) if isinstance(e, InboundMessage)] == []


@pytest.mark.parametrize("missing", ["id", "status"])
def test_a_status_without_id_or_status_is_skipped_with_a_warning(
    missing: str, caplog: pytest.LogCaptureFixture
) -> None:
    payload = load_fixture("status_read")
    del payload["entry"][0]["changes"][0]["value"]["statuses"][0][missing]
    with caplog.at_level(logging.WARNING, logger="connectors.whatsapp.core.parsing"):
        assert parse_webhook(payload) == []
    assert "status ignored" in caplog.text


@pytest.mark.parametrize("metadata", [None, "106540352242922", {}, {"phone_number_id": None}])
def test_a_change_without_the_business_number_is_skipped_with_a_warning(
    metadata: object, caplog: pytest.LogCaptureFixture
) -> None:
    payload, value, _message = _text_payload()
    value["metadata"] = metadata
    with caplog.at_level(logging.WARNING, logger="connectors.whatsapp.core.parsing"):
        assert parse_webhook(payload) == [skipped("messages", "phone_number_id")]
    assert "1 message(s)" in caplog.text


def test_value_errors_without_a_business_number_are_still_reported() -> None:
    payload = load_fixture("value_errors")
    del payload["entry"][0]["changes"][0]["value"]["metadata"]
    [event] = parse_webhook(payload)
    assert isinstance(event, WebhookErrors)
    assert event.business is None
    assert [error.code for error in event.errors] == [131000]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1749416383", 1749416383),
        (1749416383, 1749416383),
        (" 1749416383 ", 1749416383),
        ("0", 0),
        ("", None),
        ("17494x16383", None),
        ("1749416383.5", None),
        ("-5", None),
        ("\u0661\u0662", None),  # Arabic-Indic digits: str.isdigit() says yes, int() would too
        pytest.param("1" * 5000, None, id="5000-digits"),
        (1749416383.0, None),
        (True, None),
        (None, None),
        ([], None),
        ({}, None),
    ],
)
def test_timestamps_are_whole_seconds_or_none(raw: object, expected: int | None) -> None:
    payload, _value, message = _text_payload()
    message["timestamp"] = raw
    assert _only_message(payload).timestamp == expected


@pytest.mark.parametrize(
    ("key", "bad", "attribute"),
    [
        ("text", "Does it come in another color?", "text"),
        ("text", {"body": 42}, "text"),
        ("text", None, "text"),
        ("context", "wamid.x", "context"),
        ("context", [], "context"),
        ("referral", "ad", "referral"),
        ("errors", {"code": 1}, "errors"),
    ],
)
def test_a_field_of_the_wrong_type_is_treated_as_absent(
    key: str, bad: object, attribute: str
) -> None:
    payload, _value, message = _text_payload()
    message[key] = bad
    assert getattr(_only_message(payload), attribute) in (None, ())


def test_a_contacts_list_of_the_wrong_shape_gives_no_contact() -> None:
    payload, value, _message = _text_payload()
    value["contacts"] = ["5511987654321", None, {"profile": "Maria"}]
    message = _only_message(payload)
    # the one object among them is the only candidate: it has no profile name and no ids
    assert message.contact == Contact(wa_id=None)
    value["contacts"] = "Maria Silva"
    assert _only_message(payload).contact is None


def test_the_sender_is_matched_to_their_own_contact_entry() -> None:
    payload, value, _message = _text_payload()
    value["contacts"] = [
        {"profile": {"name": "Someone Else"}, "wa_id": "5511900000000"},
        {"profile": {"name": "Maria Silva"}, "wa_id": WA_ID, "user_id": BSUID},
    ]
    message = _only_message(payload)
    assert message.profile_name == "Maria Silva"
    assert message.user_id == BSUID  # taken from the contact when the message has no from_user_id


def test_with_several_contacts_and_no_match_there_is_no_contact() -> None:
    payload, value, _message = _text_payload()
    value["contacts"] = [
        {"profile": {"name": "A"}, "wa_id": "5511900000000"},
        {"profile": {"name": "B"}, "wa_id": "5511900000001"},
    ]
    assert _only_message(payload).contact is None


def test_with_one_contact_that_does_not_match_the_only_one_is_used() -> None:
    payload, value, _message = _text_payload()
    value["contacts"] = [{"profile": {"name": "Maria"}, "wa_id": "5511900000000"}]
    assert _only_message(payload).profile_name == "Maria"


def test_from_wins_over_from_user_id_and_both_are_kept() -> None:
    payload, _value, message = _text_payload()
    message["from_user_id"] = BSUID
    parsed = _only_message(payload)
    assert (parsed.sender, parsed.wa_id, parsed.user_id) == (WA_ID, WA_ID, BSUID)


@pytest.mark.parametrize(
    ("response_json", "expected"),
    [
        ('{"flow_token": "t", "rating": 5}', {"flow_token": "t", "rating": 5}),
        ("{not json", {}),
        ("[1, 2]", {}),
        ("", {}),
        pytest.param("[" * 100_000, {}, id="nested-too-deeply"),
        (None, {}),
        (7, {}),
        ({"already": "decoded"}, {"already": "decoded"}),
    ],
)
def test_flow_response_json_is_decoded_or_empty(response_json: object, expected: object) -> None:
    payload = load_fixture("nfm_reply")
    message = payload["entry"][0]["changes"][0]["value"]["messages"][0]
    message["interactive"]["nfm_reply"]["response_json"] = response_json
    parsed = _only_message(payload)
    assert parsed.kind is MessageKind.FLOW_REPLY
    assert parsed.flow_response == expected
    assert parsed.text == "Sent"
    assert parsed.reply == Reply(id="flow", title="Sent")


@pytest.mark.parametrize(
    "interactive",
    [None, "button_reply", {}, {"type": "call_permission_request"}, {"type": 3}],
)
def test_an_interactive_message_of_an_unknown_shape_is_unknown(interactive: object) -> None:
    payload = load_fixture("button_reply")
    payload["entry"][0]["changes"][0]["value"]["messages"][0]["interactive"] = interactive
    parsed = _only_message(payload)
    assert parsed.kind is MessageKind.UNKNOWN
    assert parsed.reply is None


def test_a_button_reply_without_an_object_has_no_reply() -> None:
    payload = load_fixture("button_reply")
    interactive = payload["entry"][0]["changes"][0]["value"]["messages"][0]["interactive"]
    interactive["button_reply"] = ["/affirm"]
    parsed = _only_message(payload)
    assert parsed.kind is MessageKind.BUTTON_REPLY
    assert parsed.reply is None


def test_a_template_button_without_payload_falls_back_to_its_text() -> None:
    payload = load_fixture("template_button")
    del payload["entry"][0]["changes"][0]["value"]["messages"][0]["button"]["payload"]
    assert _only_message(payload).reply == Reply(id="Stop promotions", title="Stop promotions")


@pytest.mark.parametrize(
    ("latitude", "longitude"),
    [("-23.5", -46.6), (True, -46.6), (None, -46.6), (-23.5, 10**400), (-23.5, [1])],
)
def test_a_location_without_numeric_coordinates_has_no_location(
    latitude: object, longitude: object
) -> None:
    payload = load_fixture("location")
    location = payload["entry"][0]["changes"][0]["value"]["messages"][0]["location"]
    location.update(latitude=latitude, longitude=longitude)
    parsed = _only_message(payload)
    assert parsed.kind is MessageKind.LOCATION
    assert parsed.location is None


def test_media_flags_are_true_only_when_meta_says_true() -> None:
    payload = load_fixture("audio_voice")
    audio = payload["entry"][0]["changes"][0]["value"]["messages"][0]["audio"]
    audio["voice"] = "true"
    media = _only_message(payload).media
    assert media is not None
    assert media.voice is False


def test_a_media_message_without_its_object_has_no_media() -> None:
    payload = load_fixture("image")
    payload["entry"][0]["changes"][0]["value"]["messages"][0]["image"] = "1003383421387256"
    parsed = _only_message(payload)
    assert (parsed.kind, parsed.media, parsed.text) == (MessageKind.IMAGE, None, None)


def test_a_message_without_type_is_unknown() -> None:
    payload, _value, message = _text_payload()
    del message["type"]
    parsed = _only_message(payload)
    assert (parsed.kind, parsed.type, parsed.text) == (MessageKind.UNKNOWN, "", None)


def test_error_codes_are_integers_or_none() -> None:
    payload = load_fixture("status_failed")
    errors = payload["entry"][0]["changes"][0]["value"]["statuses"][0]["errors"]
    errors.extend([{"code": "131026"}, {"code": "abc", "error_data": "x"}, "131047", None])
    [event] = parse_webhook(payload)
    assert isinstance(event, StatusUpdate)
    assert event.failed
    assert [error.code for error in event.errors] == [131047, 131026, None]


@pytest.mark.parametrize(
    "breakage",
    [
        lambda p: p["entry"].insert(0, "entry"),
        lambda p: p["entry"].insert(0, {"id": "1"}),
        lambda p: p["entry"].insert(0, {"changes": {"field": "messages"}}),
        lambda p: p["entry"][0]["changes"].insert(0, None),
        lambda p: p["entry"][0]["changes"].insert(0, {"field": "messages", "value": []}),
        lambda p: p["entry"][0]["changes"][0]["value"]["messages"].insert(0, "hi"),
    ],
)
def test_broken_siblings_do_not_hide_the_good_message(breakage: Any) -> None:
    payload, _value, _message = _text_payload()
    breakage(payload)
    assert parse_webhook(payload) == EXPECTED["text"]


# --- properties: no JSON shape makes parsing raise --------------------------------------------

KNOWN_KEYS = [
    "object", "entry", "id", "changes", "field", "value", "metadata", "phone_number_id",
    "display_phone_number", "contacts", "profile", "name", "wa_id", "user_id", "messages",
    "statuses", "errors", "from", "from_user_id", "timestamp", "type", "text", "body", "context",
    "forwarded", "frequently_forwarded", "referred_product", "referral", "interactive",
    "button_reply", "list_reply", "nfm_reply", "response_json", "title", "description", "button",
    "payload", "image", "audio", "video", "document", "sticker", "caption", "mime_type", "sha256",
    "filename", "voice", "animated", "url", "location", "latitude", "longitude", "address",
    "reaction", "message_id", "emoji", "order", "system", "status", "recipient_id",
    "recipient_user_id", "conversation", "pricing", "biz_opaque_callback_data", "code",
    "message", "error_data", "details", "href", "group_id", "from_parent_user_id",
    "parent_user_id", "username", "edit", "revoke", "original_message_id", "user_preferences",
    "category", "recipient_type", "recipient_participant_id", "billable", "pricing_model",
    "previous_user_id", "previous_parent_user_id", "call_permission_reply",
]  # fmt: skip
KNOWN_STRINGS = [
    WABA, "messages", "text", "interactive", "button_reply", "list_reply", "nfm_reply", "button",
    "image", "audio", "video", "document", "sticker", "location", "contacts", "reaction",
    "order", "system", "unsupported", "unknown", "failed", PHONE_NUMBER_ID, WA_ID, "1749416383",
    "{}", "", "standby", "user_preferences", "group_lifecycle_update", "STOP", "sair", "2",
    "BR.13491208655302741918", "\ud800", "user_changed_number", "user_changed_user_id",
]  # fmt: skip

json_leaves = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(KNOWN_STRINGS)
)
json_values = st.recursive(
    json_leaves,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(KNOWN_KEYS) | st.text(max_size=6), children, max_size=5)
    ),
    max_leaves=12,
)
MESSAGE_TYPES = [
    "text", "interactive", "button", "image", "audio", "video", "document", "sticker",
    "location", "contacts", "reaction", "order", "system", "unsupported", "unknown", "hologram",
    "edit", "revoke",
]  # fmt: skip
message_types = st.sampled_from(MESSAGE_TYPES) | st.text(max_size=8)


@st.composite
def messages(draw: st.DrawFn) -> dict[str, object]:
    """A message with Meta's keys holding anything JSON, usually with the ids that make it parse
    (so the type-specific code is reached), and a type object of any shape under its type."""
    message: dict[str, object] = draw(
        st.dictionaries(st.sampled_from(KNOWN_KEYS), json_values, max_size=5)
    )
    type_ = draw(message_types)
    message["type"] = type_
    if draw(st.integers(min_value=0, max_value=3)):
        message["id"] = draw(st.text(min_size=1, max_size=8))
        message[draw(st.sampled_from(["from", "from_user_id"]))] = draw(
            st.text(min_size=1, max_size=8)
        )
    message[type_] = draw(
        json_leaves
        | st.lists(json_values, max_size=3)
        | st.dictionaries(st.sampled_from(KNOWN_KEYS), json_values, max_size=6)
        | st.fixed_dictionaries(
            {"type": st.sampled_from(["button_reply", "list_reply", "nfm_reply"])},
            optional={
                "button_reply": json_values,
                "list_reply": json_values,
                "nfm_reply": st.fixed_dictionaries(
                    {"response_json": st.text(max_size=20) | json_values.map(json.dumps)},
                    optional={"name": json_values, "body": json_values},
                )
                | json_values,
            },
        )
    )
    return message


@st.composite
def statuses(draw: st.DrawFn) -> dict[str, object]:
    """A status with Meta's keys holding anything JSON, usually with an id and a status."""
    raw: dict[str, object] = draw(
        st.dictionaries(st.sampled_from(KNOWN_KEYS), json_values, max_size=5)
    )
    if draw(st.integers(min_value=0, max_value=3)):
        raw["id"] = draw(st.text(min_size=1, max_size=8))
        raw["status"] = draw(st.sampled_from(["sent", "delivered", "read", "failed", "x"]))
    return raw


change_values = st.fixed_dictionaries(
    {
        "metadata": st.just({"phone_number_id": PHONE_NUMBER_ID, "display_phone_number": DISPLAY}),
        "messages": st.lists(messages(), min_size=1, max_size=3),
    },
    optional={
        "contacts": st.lists(
            st.dictionaries(st.sampled_from(KNOWN_KEYS), json_values, max_size=4) | json_values,
            max_size=3,
        )
        | json_values,
        "statuses": st.lists(statuses() | json_values, max_size=3),
        "errors": st.lists(json_values, max_size=3) | json_values,
    },
)


def _envelope(value: dict[str, object]) -> dict[str, object]:
    return {
        "object": WABA,
        "entry": [{"id": "1", "changes": [{"field": "messages", "value": value}]}],
    }


envelopes = st.fixed_dictionaries(
    {
        "object": st.just(WABA),
        "entry": st.lists(
            st.fixed_dictionaries(
                {
                    "id": json_values,
                    "changes": st.lists(
                        st.fixed_dictionaries(
                            {
                                "field": st.just("messages") | json_values,
                                "value": change_values | json_values,
                            }
                        )
                        | json_values,
                        max_size=3,
                    )
                    | json_values,
                }
            )
            | json_values,
            max_size=3,
        ),
    }
)


def _assert_well_formed(events: object) -> None:
    assert isinstance(events, list)
    for event in events:
        assert isinstance(
            event,
            InboundMessage
            | StatusUpdate
            | WebhookErrors
            | SkippedChange
            | UserPreference
            | PlatformEvent,
        )
        assert isinstance(event.raw, Mapping)
        if isinstance(event, InboundMessage):
            for name in ("wa_id", "user_id", "parent_user_id", "group_id", "original_message_id"):
                assert getattr(event, name) is None or isinstance(getattr(event, name), str)
            assert event.business.phone_number_id.isdigit()
            assert isinstance(event.id, str) and event.id
            assert isinstance(event.sender, str) and event.sender
            assert isinstance(event.kind, MessageKind)
            assert event.timestamp is None or isinstance(event.timestamp, int)
            assert event.text is None or isinstance(event.text, str)
            assert event.flow_response is None or isinstance(event.flow_response, Mapping)
            assert all(isinstance(card, Mapping) for card in event.contacts)
        elif isinstance(event, StatusUpdate):
            assert isinstance(event.message_id, str) and event.message_id
            assert isinstance(event.status, str) and event.status
        elif isinstance(event, WebhookErrors):
            assert event.errors
            assert all(error.code is None or isinstance(error.code, int) for error in event.errors)


PROPERTY_SETTINGS = settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@PROPERTY_SETTINGS
@given(change_values)
def test_messages_and_statuses_of_any_shape_never_raise(value: dict[str, object]) -> None:
    _assert_well_formed(parse_webhook(_envelope(value)))


@PROPERTY_SETTINGS
@given(envelopes)
def test_anything_inside_a_valid_envelope_never_raises(payload: dict[str, Any]) -> None:
    _assert_well_formed(parse_webhook(payload))


def _paths(value: object, prefix: tuple[Any, ...]) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, (*prefix, index))


@PROPERTY_SETTINGS
@given(st.data())
def test_real_fixtures_with_any_part_replaced_never_raise(data: st.DataObject) -> None:
    box: list[Any] = [load_fixture(data.draw(st.sampled_from(fixture_names())))]
    for _ in range(data.draw(st.integers(min_value=1, max_value=4))):
        path = data.draw(st.sampled_from(list(_paths(box[0], (0,)))))
        parent: Any = box
        for key in path[:-1]:
            parent = parent[key]
        if isinstance(parent, dict) and data.draw(st.booleans()):
            del parent[path[-1]]
        else:
            parent[path[-1]] = data.draw(json_values)
    root = copy.deepcopy(box[0])
    try:
        events = parse_webhook(root)
    except InvalidWebhook:
        assert not isinstance(root, dict) or not isinstance(root.get("entry"), list)
        return
    _assert_well_formed(events)


@PROPERTY_SETTINGS
@given(json_values)
def test_any_json_at_top_level_is_events_or_invalid_webhook(value: object) -> None:
    try:
        events = parse_webhook(value)
    except InvalidWebhook:
        return
    _assert_well_formed(events)
    try:
        body = json.dumps(value).encode()
    except ValueError:  # an int beyond Python's str() digit limit
        return
    try:
        _assert_well_formed(parse_webhook_body(body))
    except InvalidWebhook as exc:
        assert "NaN" in body.decode() or "Infinity" in body.decode(), exc.reason


@PROPERTY_SETTINGS
@given(st.binary(max_size=200))
def test_any_bytes_are_events_or_invalid_webhook(body: bytes) -> None:
    try:
        events = parse_webhook_body(body)
    except InvalidWebhook as exc:
        assert exc.reason
        return
    _assert_well_formed(events)


@pytest.mark.parametrize("field", [7, ["messages"], {"name": "messages"}, True])
def test_a_change_whose_field_is_not_a_string_is_skipped(
    field: object, caplog: pytest.LogCaptureFixture
) -> None:
    payload = load_fixture("text")
    payload["entry"][0]["changes"][0]["field"] = field
    with caplog.at_level(logging.WARNING, logger="connectors.whatsapp.core.parsing"):
        events = parse_webhook(payload)
    assert events == [skipped(None, "not a string")]
    assert "'field'" in caplog.text


@pytest.mark.parametrize(
    "phone_number_id",
    [
        "\ud800",
        "1" * 30_000,
        "10654035224292a",
        " 106540352242922",
        "\uff11\uff10\uff16",
        106540352242922,
    ],
)
def test_a_change_with_a_malformed_business_number_is_skipped_and_logged(
    phone_number_id: object, caplog: pytest.LogCaptureFixture
) -> None:
    # The id goes into Graph API URLs (read receipts, answers): only Meta's shape may get there,
    # and the configured number does not stand in for a forged one.
    payload = load_fixture("text")
    payload["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"] = phone_number_id
    with caplog.at_level(logging.WARNING, logger="connectors.whatsapp.core.parsing"):
        events = parse_webhook(payload, default_phone_number_id=PHONE_NUMBER_ID)
    assert events == [skipped("messages", "digits")]
    assert "malformed metadata.phone_number_id" in caplog.text
    assert len(caplog.text) < 2_000


def test_standby_messages_are_never_parsed_as_messages() -> None:
    assert not any(
        isinstance(event, InboundMessage) for event in parse_webhook(load_fixture("standby"))
    )


def test_pricing_fields_of_a_status_keep_their_json_type() -> None:
    payload = load_fixture("status_pricing_bsuid")
    payload["entry"][0]["changes"][0]["value"]["statuses"][0]["pricing"] = {
        "billable": "yes",
        "category": 3,
        "pricing_model": None,
    }
    [event] = parse_webhook(payload)
    assert isinstance(event, StatusUpdate)
    assert (event.billable, event.pricing_category, event.pricing_model) == (None, None, None)
