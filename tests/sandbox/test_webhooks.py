"""What a simulated user does reaches the bot as Meta's signed webhooks, parsed by our core."""

import json

from connectors.whatsapp.core.events import InboundMessage, MessageKind
from connectors.whatsapp.core.parsing import parse_webhook_body
from connectors.whatsapp.core.signature import SIGNATURE_HEADER, SignatureCheck, check_signature
from sandbox.config import SandboxConfig, SimulatedContact
from sandbox.webhooks import encode, inbound_message, messages_payload, signed
from tests.conftest import APP_SECRET, PHONE_NUMBER_ID
from tests.sandbox.conftest import ANA, FakeBot, Sandbox, SandboxFactory, eventually


def only_message(bot: FakeBot) -> InboundMessage:
    """The message of the last webhook carrying one (status webhooks come in between)."""
    last = [r for r in bot.received if "messages" in r.value][-1]
    (event,) = parse_webhook_body(last.body)
    assert isinstance(event, InboundMessage)
    return event


async def test_the_webhook_verifies_with_check_signature(sandbox: Sandbox, bot: FakeBot) -> None:
    await sandbox.user_does({"type": "text", "text": "Olá, ação não é ASCII 😀"})
    await bot.wait_for(lambda b: len(b.received) == 1)
    received = bot.received[0]
    header = received.headers[SIGNATURE_HEADER]
    assert check_signature(received.body, header, APP_SECRET) is SignatureCheck.VALID
    assert check_signature(received.body, header, "another secret") is SignatureCheck.INVALID
    # Meta escapes non-ASCII: re-encoding the decoded JSON gives other bytes (and signature).
    assert received.body.isascii()
    assert b"\\u00e7" in received.body
    reencoded = json.dumps(json.loads(received.body), ensure_ascii=False).encode()
    assert check_signature(reencoded, header, APP_SECRET) is SignatureCheck.INVALID


async def test_a_text_webhook_has_meta_shape(sandbox: Sandbox, bot: FakeBot) -> None:
    entry = await sandbox.user_does({"type": "text", "text": "oi"})
    await bot.wait_for(lambda b: len(b.received) == 1)
    payload = bot.received[0].payload
    assert payload["object"] == "whatsapp_business_account"
    (change,) = payload["entry"][0]["changes"]
    assert change["field"] == "messages"
    value = change["value"]
    assert value["messaging_product"] == "whatsapp"
    assert value["metadata"] == {
        "display_phone_number": sandbox.config.display_phone_number,
        "phone_number_id": PHONE_NUMBER_ID,
    }
    assert value["contacts"] == [{"profile": {"name": "Ana Souza"}, "wa_id": ANA}]
    (message,) = value["messages"]
    assert message["from"] == ANA
    assert message["id"] == entry["id"]
    assert message["timestamp"].isdigit()
    assert (message["type"], message["text"]) == ("text", {"body": "oi"})
    parsed = only_message(bot)
    assert (parsed.kind, parsed.text, parsed.sender) == (MessageKind.TEXT, "oi", ANA)
    assert parsed.profile_name == "Ana Souza"


async def test_button_and_list_replies_quote_the_bot_message(
    sandbox: Sandbox, bot: FakeBot
) -> None:
    await sandbox.user_does({"type": "text", "text": "oi"})
    _, sent = await sandbox.send(
        {
            "messaging_product": "whatsapp",
            "to": ANA,
            "type": "interactive",
            "interactive": {
                "type": "button",
                "body": {"text": "Menu?"},
                "action": {
                    "buttons": [{"type": "reply", "reply": {"id": "/menu", "title": "Menu"}}]
                },
            },
        }
    )
    bot_wamid = sent["messages"][0]["id"]
    await sandbox.user_does(
        {"type": "button_reply", "id": "/menu", "title": "Menu", "context": bot_wamid}
    )
    await bot.wait_for(lambda b: len(b.messages()) == 2)
    raw = bot.messages()[-1]
    assert raw["type"] == "interactive"
    assert raw["interactive"] == {
        "type": "button_reply",
        "button_reply": {"id": "/menu", "title": "Menu"},
    }
    assert raw["context"] == {"from": sandbox.config.display_phone_number, "id": bot_wamid}
    await sandbox.user_does(
        {
            "type": "list_reply",
            "id": "row-1",
            "title": "Feijoada",
            "description": "com arroz",
            "context": bot_wamid,
        }
    )
    await bot.wait_for(lambda b: len(b.messages()) == 3)
    parsed = only_message(bot)
    assert parsed.kind is MessageKind.LIST_REPLY
    assert parsed.reply is not None
    assert (parsed.reply.id, parsed.reply.title, parsed.reply.description) == (
        "row-1",
        "Feijoada",
        "com arroz",
    )
    assert parsed.context is not None and parsed.context.message_id == bot_wamid


async def test_a_context_that_is_not_a_bot_message_is_dropped(
    sandbox: Sandbox, bot: FakeBot
) -> None:
    await sandbox.user_does({"type": "button_reply", "id": "x", "title": "X", "context": "wamid.?"})
    await bot.wait_for(lambda b: len(b.messages()) == 1)
    assert "context" not in bot.messages()[0]


async def test_a_shared_location(sandbox: Sandbox, bot: FakeBot) -> None:
    await sandbox.user_does(
        {
            "type": "location",
            "latitude": -23.561414,
            "longitude": -46.655881,
            "name": "Avenida Paulista",
            "address": "Av. Paulista, 1578",
        }
    )
    await bot.wait_for(lambda b: len(b.messages()) == 1)
    parsed = only_message(bot)
    assert parsed.kind is MessageKind.LOCATION
    assert parsed.location is not None
    assert (parsed.location.latitude, parsed.location.longitude) == (-23.561414, -46.655881)
    assert parsed.location.name == "Avenida Paulista"


async def test_bad_actions_are_400_and_send_nothing(sandbox: Sandbox, bot: FakeBot) -> None:
    url = sandbox.url(f"/_sandbox/contacts/{ANA}/messages")
    for action in (
        {"type": "text", "text": ""},
        {"type": "dance"},
        [1],
        {"type": "location", "latitude": 200, "longitude": 0},
    ):
        async with sandbox.session.post(url, json=action) as response:
            assert response.status == 400, action
    async with sandbox.session.post(
        sandbox.url("/_sandbox/contacts/123/messages"), json={"type": "text", "text": "hi"}
    ) as response:
        assert response.status == 404
    assert bot.received == []


async def test_a_failing_bot_gets_retries_and_the_ticks_follow(
    sandbox: Sandbox, bot: FakeBot
) -> None:
    bot.answers = [500, 503]
    entry = await sandbox.user_does({"type": "text", "text": "oi"})
    await bot.wait_for(lambda b: len(b.received) == 3)
    assert len({r.body for r in bot.received}) == 1  # the same signed body each time
    conversation = await sandbox.conversation()
    assert [(m["id"], m["status"]) for m in conversation] == [(entry["id"], "delivered")]


async def test_a_bot_that_never_answers_200_leaves_the_message_failed(
    sandbox: Sandbox, bot: FakeBot
) -> None:
    bot.answers = [500, 500, 500]
    await sandbox.user_does({"type": "text", "text": "oi"})
    await bot.wait_for(lambda b: len(b.received) == 3)

    async def failed() -> bool:
        return bool((await sandbox.conversation())[0]["status"] == "failed")

    await eventually(failed)


async def test_start_up_verification_like_meta(make_sandbox: SandboxFactory, bot: FakeBot) -> None:
    sandbox = await make_sandbox(verify_on_start=True)
    await bot.wait_for(lambda b: b.verifications == 1)

    async def verified() -> bool:
        async with sandbox.session.get(sandbox.url("/_sandbox/health")) as response:
            return bool((await response.json())["verified"])

    await eventually(verified)
    async with sandbox.session.post(sandbox.url("/_sandbox/verify")) as response:
        assert await response.json() == {"verified": True}


async def test_verification_with_the_wrong_token_fails(
    make_sandbox: SandboxFactory, bot: FakeBot
) -> None:
    sandbox = await make_sandbox(verify_token="not-the-bots-token")
    async with sandbox.session.post(sandbox.url("/_sandbox/verify")) as response:
        assert await response.json() == {"verified": False}


def test_encoding_escapes_like_meta() -> None:
    assert encode({"a": "é/ü", "b": "😀"}) == b'{"a":"\\u00e9\\/\\u00fc","b":"\\ud83d\\ude00"}'


def test_signed_payload_round_trips_through_the_core_parser() -> None:
    config = SandboxConfig(app_secret=APP_SECRET)
    message = inbound_message(
        wamid="wamid.A", wa_id=ANA, timestamp=1700000000, kind="text", content={"body": "olá"}
    )
    body, headers = signed(
        messages_payload(config, SimulatedContact(ANA, "Ana"), message), APP_SECRET
    )
    assert check_signature(body, headers[SIGNATURE_HEADER], APP_SECRET) is SignatureCheck.VALID
    (event,) = parse_webhook_body(body)
    assert isinstance(event, InboundMessage)
    assert (event.id, event.text, event.timestamp) == ("wamid.A", "olá", 1700000000)
