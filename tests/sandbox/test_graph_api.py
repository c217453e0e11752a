"""The sandbox's Graph API over real HTTP: auth, Meta's errors, sends, read receipts, statuses."""

from connectors.whatsapp.core.events import StatusUpdate
from connectors.whatsapp.core.parsing import parse_webhook_body
from tests.conftest import ACCESS_TOKEN, PHONE_NUMBER_ID
from tests.sandbox.conftest import ANA, FakeBot, Sandbox, SandboxFactory

TEXT = {"messaging_product": "whatsapp", "to": ANA, "type": "text", "text": {"body": "Olá!"}}


async def test_wrong_bearer_token_is_190_with_401(sandbox: Sandbox) -> None:
    status, body = await sandbox.send(TEXT, token="EAAwrong")
    assert status == 401
    assert body["error"]["code"] == 190
    assert body["error"]["type"] == "OAuthException"
    assert body["error"]["fbtrace_id"]


async def test_missing_token_is_rejected(sandbox: Sandbox) -> None:
    status, body = await sandbox.send(TEXT, token=None)
    assert status == 400
    assert body["error"]["code"] == 104


async def test_unknown_phone_number_id_is_meta_unknown_object(sandbox: Sandbox) -> None:
    url = sandbox.url("/v23.0/999999/messages")
    headers = {"Authorization": f"Bearer {ACCESS_TOKEN}"}
    async with sandbox.session.post(url, json=TEXT, headers=headers) as response:
        body = await response.json()
    assert response.status == 400
    assert (body["error"]["code"], body["error"]["error_subcode"]) == (100, 33)


async def test_a_body_over_a_limit_gets_meta_error(sandbox: Sandbox) -> None:
    await sandbox.user_does({"type": "text", "text": "oi"})
    too_long = TEXT | {"text": {"body": "a" * 4097}}
    status, body = await sandbox.send(too_long)
    assert status == 400
    error = body["error"]
    assert error["code"] == 100
    assert error["message"] == "(#100) Invalid parameter"
    assert error["error_data"]["messaging_product"] == "whatsapp"
    assert "4096" in error["error_data"]["details"]
    assert [m for m in await sandbox.conversation() if m["direction"] == "bot"] == []


async def test_invalid_json_is_code_100(sandbox: Sandbox) -> None:
    headers = {"Authorization": f"Bearer {ACCESS_TOKEN}", "Content-Type": "application/json"}
    async with sandbox.session.post(sandbox.messages_url, data=b"{", headers=headers) as response:
        body = await response.json()
    assert response.status == 400
    assert body["error"]["code"] == 100


async def test_a_sent_message_gets_a_wamid_and_sent_delivered_read(
    sandbox: Sandbox, bot: FakeBot
) -> None:
    await sandbox.user_does({"type": "text", "text": "oi"})
    status, body = await sandbox.send(TEXT | {"biz_opaque_callback_data": "order-42"})
    assert status == 200
    assert body["messaging_product"] == "whatsapp"
    assert body["contacts"] == [{"input": ANA, "wa_id": ANA}]
    wamid = body["messages"][0]["id"]
    assert wamid.startswith("wamid.")

    def all_statuses(b: FakeBot) -> bool:
        return len([s for s in b.statuses() if s["id"] == wamid]) == 3

    await bot.wait_for(all_statuses)
    events = [
        event
        for received in bot.received
        for event in parse_webhook_body(received.body)
        if isinstance(event, StatusUpdate)
    ]
    assert [e.status for e in events] == ["sent", "delivered", "read"]
    assert {e.message_id for e in events} == {wamid}
    assert {e.recipient_id for e in events} == {ANA}
    assert {e.business.phone_number_id for e in events} == {PHONE_NUMBER_ID}
    assert {e.biz_opaque_callback_data for e in events} == {"order-42"}
    assert events[0].pricing is not None
    bot_entries = [m for m in await sandbox.conversation() if m["direction"] == "bot"]
    assert [(m["id"], m["status"]) for m in bot_entries] == [(wamid, "read")]


async def test_a_reaction_only_gets_sent(sandbox: Sandbox, bot: FakeBot) -> None:
    user = await sandbox.user_does({"type": "text", "text": "oi"})
    reaction = {"message_id": user["id"], "emoji": "👍"}
    status, body = await sandbox.send(TEXT | {"type": "reaction", "reaction": reaction})
    assert status == 200
    wamid = body["messages"][0]["id"]
    await bot.wait_for(lambda b: any(s["id"] == wamid for s in b.statuses()))
    await sandbox.send(TEXT)  # statuses are delivered in order: after this one's, none left
    await bot.wait_for(lambda b: sum(s["status"] == "read" for s in b.statuses()) == 1)
    assert [s["status"] for s in bot.statuses() if s["id"] == wamid] == ["sent"]


async def test_outside_the_service_window_the_message_fails_with_131047(
    make_sandbox: SandboxFactory, bot: FakeBot
) -> None:
    sandbox = await make_sandbox(window_refusal="status")
    status, body = await sandbox.send(TEXT)
    assert status == 200  # Meta accepts, then reports the failure in a status webhook
    wamid = body["messages"][0]["id"]
    await bot.wait_for(lambda b: any(s["id"] == wamid for s in b.statuses()))
    (failed,) = [s for s in bot.statuses() if s["id"] == wamid]
    assert failed["status"] == "failed"
    assert failed["errors"][0]["code"] == 131047
    template = {
        "messaging_product": "whatsapp",
        "to": ANA,
        "type": "template",
        "template": {"name": "hello_world", "language": {"code": "en_US"}},
    }
    status, body = await sandbox.send(template)
    assert status == 200
    assert body["messages"][0]["message_status"] == "accepted"
    wamid = body["messages"][0]["id"]
    await bot.wait_for(lambda b: any(s["id"] == wamid for s in b.statuses()))
    assert next(s["status"] for s in bot.statuses() if s["id"] == wamid) == "sent"


async def test_the_window_can_be_turned_off(make_sandbox: SandboxFactory, bot: FakeBot) -> None:
    sandbox = await make_sandbox(enforce_service_window=False)
    status, body = await sandbox.send(TEXT)
    assert status == 200
    wamid = body["messages"][0]["id"]
    await bot.wait_for(lambda b: any(s["id"] == wamid for s in b.statuses()))
    assert bot.statuses()[0]["status"] == "sent"


async def test_an_unknown_recipient_fails_with_131026(sandbox: Sandbox, bot: FakeBot) -> None:
    status, body = await sandbox.send(TEXT | {"to": "15559998888"})
    assert status == 200
    wamid = body["messages"][0]["id"]
    await bot.wait_for(lambda b: any(s["id"] == wamid for s in b.statuses()))
    assert bot.statuses()[0]["errors"][0]["code"] == 131026


async def test_read_receipt_marks_earlier_messages_read_and_shows_typing(
    sandbox: Sandbox, bot: FakeBot
) -> None:
    first = await sandbox.user_does({"type": "text", "text": "oi"})
    second = await sandbox.user_does({"type": "text", "text": "tudo bem?"})
    await bot.wait_for(lambda b: len(b.messages()) == 2)
    receipt = {
        "messaging_product": "whatsapp",
        "status": "read",
        "message_id": second["id"],
        "typing_indicator": {"type": "text"},
    }
    status, body = await sandbox.send(receipt)
    assert (status, body) == (200, {"success": True})
    statuses = {m["id"]: m["status"] for m in await sandbox.conversation()}
    assert statuses == {first["id"]: "read", second["id"]: "read"}
    async with sandbox.session.get(sandbox.url("/_sandbox/state")) as response:
        state = await response.json()
    assert state["typing"] == [ANA]
    await sandbox.send(TEXT)  # the bot's answer clears the typing indicator
    async with sandbox.session.get(sandbox.url("/_sandbox/state")) as response:
        assert (await response.json())["typing"] == []


async def test_read_receipt_for_an_unknown_message_is_rejected(sandbox: Sandbox) -> None:
    receipt = {"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.nope"}
    status, body = await sandbox.send(receipt)
    assert status == 400
    assert body["error"]["code"] == 100
