"""The 2026 platform in the sandbox: BSUIDs and usernames, groups, the 24-hour window, templates.

Formats are Meta's (../shared/reference/platform-2026.md): `from_user_id` / `contacts[].user_id`,
no `from` for a user who hides their phone number, `group_id` on group messages, `recipient` for
sends to a BSUID, `recipient_type: "group"`, 131047 outside the window.
"""

from typing import Any

import aiohttp
import pytest

from sandbox.config import DEFAULT_GROUP_ID
from sandbox.validation import message_problem, validate_request
from tests.sandbox.conftest import ANA, FakeBot, Sandbox, SandboxFactory

BRUNO, BRUNO_BSUID = "5521998765432", "BR.13kYqJt5m7VwX2pQ9a"
ELISA_BSUID = "BR.1Hd5Gs8Jf2Ka6Lp9Zx4C"
GROUP = DEFAULT_GROUP_ID
TEMPLATE = {
    "name": "lembrete_pedido",
    "language": {"code": "pt_BR"},
    "components": [
        {
            "type": "body",
            "parameters": [{"type": "text", "text": "Ana"}, {"type": "text", "text": "42"}],
        }
    ],
}


def text(body: str = "Olá!", **address: Any) -> dict[str, Any]:
    return {"messaging_product": "whatsapp", "type": "text", "text": {"body": body}, **address}


async def post(sandbox: Sandbox, path: str, body: Any) -> tuple[int, Any]:
    async with sandbox.session.post(sandbox.url(path), json=body) as response:
        return response.status, await response.json()


# --- identities


async def test_phone_only_contact_has_no_user_id(sandbox: Sandbox, bot: FakeBot) -> None:
    await sandbox.user_does({"type": "text", "text": "oi"})
    await bot.wait_for(lambda b: len(b.messages()) == 1)
    value = bot.received[0].value
    assert value["contacts"] == [{"profile": {"name": "Ana Souza"}, "wa_id": ANA}]
    assert "from_user_id" not in value["messages"][0]
    assert value["messages"][0]["from"] == ANA


async def test_phone_and_bsuid_contact(sandbox: Sandbox, bot: FakeBot) -> None:
    await sandbox.user_does({"type": "text", "text": "oi"}, BRUNO)
    await bot.wait_for(lambda b: len(b.messages()) == 1)
    value = bot.received[0].value
    assert value["contacts"] == [
        {"profile": {"name": "Bruno Oliveira"}, "wa_id": BRUNO, "user_id": BRUNO_BSUID}
    ]
    message = value["messages"][0]
    assert (message["from"], message["from_user_id"]) == (BRUNO, BRUNO_BSUID)


async def test_username_contact_arrives_without_a_phone_number(
    sandbox: Sandbox, bot: FakeBot
) -> None:
    await sandbox.user_does({"type": "text", "text": "oi"}, ELISA_BSUID)
    await bot.wait_for(lambda b: len(b.messages()) == 1)
    value = bot.received[0].value
    assert value["contacts"] == [
        {"profile": {"name": "Elisa Rocha", "username": "elisa.rocha"}, "user_id": ELISA_BSUID}
    ]
    message = value["messages"][0]
    assert "from" not in message
    assert message["from_user_id"] == ELISA_BSUID


async def test_send_to_a_bsuid_with_recipient_is_delivered_with_recipient_user_id(
    sandbox: Sandbox, bot: FakeBot
) -> None:
    await sandbox.user_does({"type": "text", "text": "oi"}, ELISA_BSUID)
    status, body = await sandbox.send(text(recipient=ELISA_BSUID))
    assert status == 200
    assert body["contacts"] == [{"input": ELISA_BSUID, "user_id": ELISA_BSUID}]
    wamid = body["messages"][0]["id"]
    await bot.wait_for(lambda b: len([s for s in b.statuses() if s["id"] == wamid]) == 3)
    statuses = [s for s in bot.statuses() if s["id"] == wamid]
    assert {s["recipient_user_id"] for s in statuses} == {ELISA_BSUID}
    assert all("recipient_id" not in s for s in statuses)  # no phone number to give
    (entry,) = [m for m in await sandbox.conversation(ELISA_BSUID) if m["direction"] == "bot"]
    assert (entry["id"], entry["status"]) == (wamid, "read")


async def test_statuses_of_a_phone_plus_bsuid_contact_carry_both(
    sandbox: Sandbox, bot: FakeBot
) -> None:
    await sandbox.user_does({"type": "text", "text": "oi"}, BRUNO)
    status, body = await sandbox.send(text(to=BRUNO))
    assert status == 200
    wamid = body["messages"][0]["id"]
    await bot.wait_for(lambda b: any(s["id"] == wamid for s in b.statuses()))
    first = next(s for s in bot.statuses() if s["id"] == wamid)
    assert (first["recipient_id"], first["recipient_user_id"]) == (BRUNO, BRUNO_BSUID)


async def test_a_bsuid_in_to_gets_200_and_is_silently_dropped(
    sandbox: Sandbox, bot: FakeBot, caplog: pytest.LogCaptureFixture
) -> None:
    await sandbox.user_does({"type": "text", "text": "oi"}, ELISA_BSUID)
    await bot.wait_for(lambda b: len(b.messages()) == 1)
    status, body = await sandbox.send(text(to=ELISA_BSUID))
    assert status == 200  # exactly Meta's pitfall
    wamid = body["messages"][0]["id"]
    (entry,) = [m for m in await sandbox.conversation(ELISA_BSUID) if m["direction"] == "bot"]
    assert (entry["id"], entry["status"]) == (wamid, "dropped")
    assert "recipient" in entry["error"]["details"]
    async with sandbox.session.get(sandbox.url("/_sandbox/state")) as response:
        log = (await response.json())["log"]
    assert any("dropped" in item["text"] and not item["ok"] for item in log)
    assert any("dropped" in r.getMessage() for r in caplog.records if r.levelname == "WARNING")
    await sandbox.send(text(recipient=ELISA_BSUID))  # statuses are delivered in order
    await bot.wait_for(lambda b: len(b.statuses()) == 3)
    assert all(s["id"] != wamid for s in bot.statuses())  # no status at all for the dropped one


async def test_addressing_errors() -> None:
    assert message_problem(text(to=ANA)) is None
    assert message_problem(text(recipient=BRUNO_BSUID)) is None
    assert "recipient" in (message_problem(text(to=ANA, recipient=BRUNO_BSUID)) or "")
    assert "business-scoped" in (message_problem(text(recipient=ANA)) or "")
    assert "to is required" in (message_problem(text()) or "")
    dropped = validate_request(text(to=BRUNO_BSUID))
    assert dropped.to_holds_user_id  # type: ignore[union-attr]


async def test_a_contact_can_be_added_with_a_username_and_no_phone(sandbox: Sandbox) -> None:
    status, contact = await post(
        sandbox, "/_sandbox/contacts", {"name": "Fábio", "username": "fabio"}
    )
    assert status == 200
    assert contact["wa_id"] is None
    assert contact["user_id"].startswith("BR.")
    assert contact["key"] == contact["user_id"]
    await sandbox.user_does({"type": "text", "text": "oi"}, contact["key"])


# --- groups


async def test_a_group_message_carries_group_id_and_the_member_who_wrote(
    sandbox: Sandbox, bot: FakeBot
) -> None:
    status, entry = await post(
        sandbox,
        f"/_sandbox/groups/{GROUP}/messages",
        {"member": BRUNO, "type": "text", "text": "oi"},
    )
    assert status == 200
    assert (entry["chat"], entry["author"]) == (GROUP, BRUNO)
    await bot.wait_for(lambda b: len(b.messages()) == 1)
    value = bot.received[0].value
    message = value["messages"][0]
    assert message["group_id"] == GROUP
    assert (message["from"], message["from_user_id"]) == (BRUNO, BRUNO_BSUID)
    assert value["contacts"][0]["wa_id"] == BRUNO
    status, _ = await post(
        sandbox,
        f"/_sandbox/groups/{GROUP}/messages",
        {"member": "5531987651234", "type": "text", "text": "x"},
    )
    assert status == 400  # Carla is not in the group


async def test_sends_to_a_group_reach_it_with_group_statuses(
    sandbox: Sandbox, bot: FakeBot
) -> None:
    await post(
        sandbox, f"/_sandbox/groups/{GROUP}/messages", {"member": ANA, "type": "text", "text": "oi"}
    )
    menu = "Escolha uma opção:\n1. Planos\n2. Lojas"
    status, body = await sandbox.send(text(menu, recipient_type="group", to=GROUP))
    assert status == 200
    wamid = body["messages"][0]["id"]
    (entry,) = [m for m in await sandbox.conversation(GROUP) if m["direction"] == "bot"]
    assert entry["content"]["text"]["body"] == menu
    # sent once for the group, delivered and read once per member
    await bot.wait_for(lambda b: len([s for s in b.statuses() if s["id"] == wamid]) == 5)
    statuses = [s for s in bot.statuses() if s["id"] == wamid]
    assert {s["recipient_type"] for s in statuses} == {"group"}
    assert {s["recipient_id"] for s in statuses} == {GROUP}
    read = [s for s in statuses if s["status"] == "read"]
    assert sorted(s["recipient_participant_id"] for s in read) == sorted([ANA, BRUNO])
    assert await sandbox.conversation(ANA) == []  # nothing leaked into a private chat


async def test_a_group_refuses_interactive_messages_and_read_receipts(sandbox: Sandbox) -> None:
    user = await post(
        sandbox, f"/_sandbox/groups/{GROUP}/messages", {"member": ANA, "type": "text", "text": "oi"}
    )
    buttons = {
        "messaging_product": "whatsapp",
        "recipient_type": "group",
        "to": GROUP,
        "type": "interactive",
        "interactive": {
            "type": "button",
            "body": {"text": "Escolha"},
            "action": {"buttons": [{"type": "reply", "reply": {"id": "a", "title": "A"}}]},
        },
    }
    status, body = await sandbox.send(buttons)
    assert status == 400
    assert body["error"]["code"] == 131009
    assert "groups" in body["error"]["error_data"]["details"]
    receipt = {
        "messaging_product": "whatsapp",
        "status": "read",
        "message_id": user[1]["id"],
        "typing_indicator": {"type": "text"},
    }
    status, body = await sandbox.send(receipt)
    assert status == 400
    assert body["error"]["code"] == 131009
    statuses = {m["id"]: m["status"] for m in await sandbox.conversation(GROUP)}
    assert statuses[user[1]["id"]] != "read"


# --- the 24-hour window and templates


async def test_25_hours_later_free_form_is_refused_with_131047_and_a_template_goes_through(
    sandbox: Sandbox, bot: FakeBot
) -> None:
    await sandbox.user_does({"type": "text", "text": "oi"})
    assert (await sandbox.send(text(to=ANA)))[0] == 200
    status, note = await post(sandbox, f"/_sandbox/conversations/{ANA}/skip", {"hours": 25})
    assert (status, note["direction"], note["type"]) == (200, "system", "time_skip")
    status, body = await sandbox.send(text("Seu pedido chegou", to=ANA))
    assert status == 400
    error = body["error"]
    assert (error["code"], error["message"]) == (131047, "(#131047) Re-engagement message")
    assert "24 hours" in error["error_data"]["details"]
    refused = [m for m in await sandbox.conversation() if m["status"] == "refused"]
    assert refused[0]["error"]["code"] == 131047
    status, body = await sandbox.send(
        {"messaging_product": "whatsapp", "to": ANA, "type": "template", "template": TEMPLATE}
    )
    assert status == 200
    assert body["messages"][0]["message_status"] == "accepted"
    wamid = body["messages"][0]["id"]
    await bot.wait_for(
        lambda b: any(s["id"] == wamid and s["status"] == "sent" for s in b.statuses())
    )
    sent = next(s for s in bot.statuses() if s["id"] == wamid)
    assert sent["pricing"]["billable"] is True  # templates are paid for
    # The user writes again: the window is open again.
    await sandbox.user_does({"type": "text", "text": "obrigado"})
    assert (await sandbox.send(text(to=ANA)))[0] == 200


async def test_131047_as_a_failed_status_when_set_so(sandbox: Sandbox, bot: FakeBot) -> None:
    await sandbox.user_does({"type": "text", "text": "oi"})
    await post(sandbox, f"/_sandbox/conversations/{ANA}/skip", {})
    status, settings = await post(sandbox, "/_sandbox/settings", {"window_refusal": "status"})
    assert (status, settings["window_refusal"]) == (200, "status")
    status, body = await sandbox.send(text(to=ANA))
    assert status == 200
    wamid = body["messages"][0]["id"]
    await bot.wait_for(lambda b: any(s["id"] == wamid for s in b.statuses()))
    (failed,) = [s for s in bot.statuses() if s["id"] == wamid]
    assert (failed["status"], failed["errors"][0]["code"]) == ("failed", 131047)


async def test_the_window_of_a_group_and_bad_controls(sandbox: Sandbox) -> None:
    await post(
        sandbox, f"/_sandbox/groups/{GROUP}/messages", {"member": ANA, "type": "text", "text": "oi"}
    )
    await post(sandbox, f"/_sandbox/conversations/{GROUP}/skip", {"hours": 25})
    status, body = await sandbox.send(text(recipient_type="group", to=GROUP))
    assert (status, body["error"]["code"]) == (400, 131047)
    assert (await post(sandbox, "/_sandbox/conversations/nobody/skip", {}))[0] == 404
    assert (await post(sandbox, f"/_sandbox/conversations/{ANA}/skip", {"hours": -1}))[0] == 400
    assert (await post(sandbox, "/_sandbox/settings", {"window": "x"}))[0] == 400
    assert (await post(sandbox, "/_sandbox/settings", {"window_refusal": "later"}))[0] == 400


async def test_without_the_window_check_free_form_always_goes(
    make_sandbox: SandboxFactory,
) -> None:
    sandbox = await make_sandbox(enforce_service_window=False)
    await post(sandbox, f"/_sandbox/conversations/{ANA}/skip", {})
    assert (await sandbox.send(text(to=ANA)))[0] == 200


async def test_a_member_sends_a_photo_in_the_group(sandbox: Sandbox, bot: FakeBot) -> None:
    form = aiohttp.FormData()
    form.add_field("member", BRUNO)
    form.add_field("caption", "nossa loja")
    form.add_field("file", b"\x89PNG\r\n\x1a\n", filename="loja.png", content_type="image/png")
    url = sandbox.url(f"/_sandbox/groups/{GROUP}/media")
    async with sandbox.session.post(url, data=form) as response:
        assert response.status == 200, await response.text()
        entry = await response.json()
    assert (entry["chat"], entry["author"], entry["type"]) == (GROUP, BRUNO, "image")
    await bot.wait_for(lambda b: len(b.messages()) == 1)
    message = bot.messages()[0]
    assert (message["group_id"], message["from"]) == (GROUP, BRUNO)
    assert message["image"]["caption"] == "nossa loja"
    form = aiohttp.FormData()
    form.add_field("member", "5531987651234")
    form.add_field("file", b"x", filename="x.png", content_type="image/png")
    async with sandbox.session.post(url, data=form) as response:
        assert response.status == 400  # not a member
