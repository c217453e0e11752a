"""End to end: real signed webhooks into Rasa's own server with the trained sample bot.

The Graph API is a real HTTP server on 127.0.0.1 (tests/support/graph_server.py), the actions run
in a real `rasa run actions`, and what the bot sends is observed where Meta would receive it.
"""

import asyncio
import json
from typing import Any

import pytest

from connectors.whatsapp.core.signature import sign
from tests.adapters.rasa.conftest import RasaWhatsApp, running_rasa
from tests.conftest import APP_SECRET, PHONE_NUMBER_ID, VERIFY_TOKEN
from tests.support.graph_server import GraphServer, meta_error
from tests.support.webhooks import encode, envelope, text_message, user_message

pytestmark = pytest.mark.e2e


def sender_for(test: str) -> str:
    """A distinct WhatsApp id per test: the agent (and its trackers) is shared by the session."""
    return "55119" + str(abs(hash(test)) % 10**8).zfill(8)


@pytest.fixture
def sender(request: pytest.FixtureRequest) -> str:
    return sender_for(request.node.nodeid)


async def test_health_route_answers(rasa_whatsapp: RasaWhatsApp) -> None:
    async with rasa_whatsapp.http.get(rasa_whatsapp.url + "/webhooks/whatsapp/") as response:
        assert response.status == 200
        assert (await response.json())["status"] == "ok"


async def test_verification_echoes_the_challenge(rasa_whatsapp: RasaWhatsApp) -> None:
    query = {
        "hub.mode": "subscribe",
        "hub.verify_token": VERIFY_TOKEN,
        "hub.challenge": "1158201444",
    }
    async with rasa_whatsapp.http.get(rasa_whatsapp.webhook_url, params=query) as response:
        assert (response.status, await response.text()) == (200, "1158201444")
    query["hub.verify_token"] = "wrong"
    async with rasa_whatsapp.http.get(rasa_whatsapp.webhook_url, params=query) as response:
        assert response.status == 403


async def test_text_is_answered_after_a_read_receipt_with_typing_indicator(
    rasa_whatsapp: RasaWhatsApp, sender: str
) -> None:
    payload, wamid = text_message(sender, "oi")
    assert (await rasa_whatsapp.post(payload))[0] == 200
    await rasa_whatsapp.settle()
    [turn] = await rasa_whatsapp.user_turns(sender)
    assert turn.text == "oi"
    assert turn.intent["name"] == "saudar"
    assert turn.message_id == wamid
    assert turn.input_channel == "whatsapp"
    assert turn.metadata["whatsapp"]["profile_name"] == "Ana"
    receipts = [r.json for r in rasa_whatsapp.graph.requests if r.json and r.json.get("status")]
    assert receipts == [
        {
            "messaging_product": "whatsapp",
            "status": "read",
            "message_id": wamid,
            "typing_indicator": {"type": "text"},
        }
    ]
    replies = rasa_whatsapp.replies_to(sender)
    assert replies, "the bot answered nothing"
    assert all(r["messaging_product"] == "whatsapp" for r in replies)
    # The typing indicator comes before the answer, never after it.
    kinds = ["receipt" if r.json.get("status") else "reply" for r in rasa_whatsapp.graph.requests]
    assert kinds[0] == "receipt"


async def test_webhook_is_acknowledged_before_the_bot_runs(
    rasa_whatsapp: RasaWhatsApp, sender: str
) -> None:
    # Hold the conversation's lock, as a long turn would: the bot cannot run, Meta still gets 200.
    async with rasa_whatsapp.agent.lock_store.lock(sender):
        status, _ = await rasa_whatsapp.post(text_message(sender, "oi")[0])
        assert status == 200
        assert await rasa_whatsapp.user_turns(sender) == []
    await rasa_whatsapp.settle()
    assert len(await rasa_whatsapp.user_turns(sender)) == 1


async def test_reply_buttons_and_list_reach_whatsapp_and_taps_reach_the_bot(
    rasa_whatsapp: RasaWhatsApp, sender: str
) -> None:
    await rasa_whatsapp.post(text_message(sender, "menu")[0])
    await rasa_whatsapp.settle()
    menu = rasa_whatsapp.replies_to(sender)[-1]
    assert menu["type"] == "interactive"
    assert menu["interactive"]["type"] == "button"
    buttons = menu["interactive"]["action"]["buttons"]
    assert 1 <= len(buttons) <= 3
    categories = next(b for b in buttons if b["reply"]["id"] == "/ver_categorias")

    tap = {"type": "button_reply", "button_reply": categories["reply"]}
    await rasa_whatsapp.post(user_message(sender, "interactive", tap)[0])
    await rasa_whatsapp.settle()
    assert (await rasa_whatsapp.user_turns(sender))[-1].intent["name"] == "ver_categorias"
    listing = rasa_whatsapp.replies_to(sender)[-1]
    assert listing["interactive"]["type"] == "list"
    rows = [row for s in listing["interactive"]["action"]["sections"] for row in s["rows"]]
    assert len(rows) > 3

    choice = {"type": "list_reply", "list_reply": {"id": rows[1]["id"], "title": rows[1]["title"]}}
    await rasa_whatsapp.post(user_message(sender, "interactive", choice)[0])
    await rasa_whatsapp.settle()
    last = (await rasa_whatsapp.user_turns(sender))[-1]
    assert last.intent["name"] == "escolher_categoria"
    expected = json.loads(rows[1]["id"].partition("{")[1] + rows[1]["id"].partition("{")[2])
    assert {e["entity"]: e["value"] for e in last.entities} == expected


INBOUND_INTENTS: list[tuple[str, dict[str, Any], str]] = [
    (
        "location",
        {"latitude": -23.5614, "longitude": -46.6559, "name": "MASP"},
        "whatsapp_location",
    ),
    ("image", {"id": "m1", "mime_type": "image/jpeg", "caption": "olha"}, "whatsapp_image"),
    ("audio", {"id": "m2", "mime_type": "audio/ogg; codecs=opus", "voice": True}, "whatsapp_audio"),
    ("video", {"id": "m3", "mime_type": "video/mp4"}, "whatsapp_video"),
    (
        "document",
        {"id": "m4", "mime_type": "application/pdf", "filename": "a.pdf"},
        "whatsapp_document",
    ),
    ("sticker", {"id": "m5", "mime_type": "image/webp", "animated": False}, "whatsapp_sticker"),
    (
        "contacts",
        [{"name": {"formatted_name": "Bia"}, "phones": [{"phone": "+55 11 9", "wa_id": "55119"}]}],
        "whatsapp_contacts",
    ),  # type: ignore[list-item]
    (
        "order",
        {"catalog_id": "c1", "product_items": [{"product_retailer_id": "p"}]},
        "whatsapp_order",
    ),
    ("button", {"payload": "/menu", "text": "Menu"}, "menu"),
]


@pytest.mark.parametrize(("kind", "content", "intent"), INBOUND_INTENTS)
async def test_every_inbound_type_reaches_the_bot_as_its_intent(
    rasa_whatsapp: RasaWhatsApp, kind: str, content: Any, intent: str
) -> None:
    sender = sender_for(f"inbound-{kind}")
    assert (await rasa_whatsapp.post(user_message(sender, kind, content)[0]))[0] == 200
    await rasa_whatsapp.settle()
    [turn] = await rasa_whatsapp.user_turns(sender)
    assert turn.intent["name"] == intent
    assert turn.metadata["whatsapp"]["message"]["type"] == kind


async def test_flow_reply_reaches_the_bot(rasa_whatsapp: RasaWhatsApp, sender: str) -> None:
    reply = {
        "type": "nfm_reply",
        "nfm_reply": {"name": "flow", "body": "Sent", "response_json": '{"flow_token": "t-1"}'},
    }
    await rasa_whatsapp.post(user_message(sender, "interactive", reply)[0])
    await rasa_whatsapp.settle()
    [turn] = await rasa_whatsapp.user_turns(sender)
    assert turn.intent["name"] == "whatsapp_flow_reply"
    assert turn.metadata["whatsapp"]["flow_response"] == {"flow_token": "t-1"}


async def test_shared_location_gets_the_nearest_store(
    rasa_whatsapp: RasaWhatsApp, sender: str
) -> None:
    av_paulista = {"latitude": -23.5614, "longitude": -46.6559}
    await rasa_whatsapp.post(user_message(sender, "location", av_paulista)[0])
    await rasa_whatsapp.settle()
    assert any(r["type"] in ("text", "location") for r in rasa_whatsapp.replies_to(sender))


@pytest.mark.parametrize(
    ("kind", "content"),
    [
        ("reaction", {"message_id": "wamid.X", "emoji": "👍"}),
        ("system", {"body": "User changed number", "type": "user_changed_number"}),
        ("unsupported", {}),
        ("hologram", {"depth": 3}),
    ],
)
async def test_messages_not_for_the_bot_are_read_but_not_sent_to_nlu(
    rasa_whatsapp: RasaWhatsApp, kind: str, content: dict[str, Any]
) -> None:
    sender = sender_for(f"not-for-bot-{kind}")
    payload, wamid = user_message(sender, kind, content)
    if kind == "unsupported":
        payload["entry"][0]["changes"][0]["value"]["messages"][0]["errors"] = [
            {"code": 131051, "title": "Message type unknown"}
        ]
    assert (await rasa_whatsapp.post(payload))[0] == 200
    await rasa_whatsapp.settle()
    assert await rasa_whatsapp.user_turns(sender) == []
    assert rasa_whatsapp.replies_to(sender) == []
    await asyncio.sleep(0.05)
    assert any(r.json and r.json.get("message_id") == wamid for r in rasa_whatsapp.graph.requests)


async def test_redeliveries_reach_the_bot_once(rasa_whatsapp: RasaWhatsApp, sender: str) -> None:
    payload, _ = text_message(sender, "oi")
    await rasa_whatsapp.post(payload)
    await rasa_whatsapp.settle()
    answered = len(rasa_whatsapp.replies_to(sender))
    # Then again, sequentially and all at once, as Meta may redeliver.
    await rasa_whatsapp.post(payload)
    await asyncio.gather(*(rasa_whatsapp.post(payload) for _ in range(5)))
    await rasa_whatsapp.settle()
    assert len(await rasa_whatsapp.user_turns(sender)) == 1
    assert len(rasa_whatsapp.replies_to(sender)) == answered


async def test_one_batch_with_many_messages_is_processed_in_order(
    rasa_whatsapp: RasaWhatsApp, sender: str
) -> None:
    first, _ = text_message(sender, "oi")
    second, _ = text_message(sender, "menu")
    batch = first
    batch["entry"].append(second["entry"][0])
    await rasa_whatsapp.post(batch)
    await rasa_whatsapp.settle()
    assert [t.text for t in await rasa_whatsapp.user_turns(sender)] == ["oi", "menu"]


async def test_statuses_never_reach_nlu_and_failures_reach_the_hook(
    rasa_whatsapp: RasaWhatsApp, sender: str
) -> None:
    def status(state: str, **extra: Any) -> dict[str, Any]:
        return {
            "id": f"wamid.OUT-{state}",
            "status": state,
            "timestamp": "1732590000",
            "recipient_id": sender,
            **extra,
        }

    errors = [{"code": 131047, "title": "Re-engagement message", "error_data": {"details": "24h"}}]
    statuses = [
        status("sent"),
        status("delivered"),
        status("read"),
        status("failed", errors=errors),
    ]
    assert (await rasa_whatsapp.post(envelope(statuses=statuses)))[0] == 200
    await rasa_whatsapp.settle()
    await asyncio.sleep(0.05)
    assert await rasa_whatsapp.user_turns(sender) == []
    assert [s.message_id for s in rasa_whatsapp.failed_statuses] == ["wamid.OUT-failed"]
    assert rasa_whatsapp.failed_statuses[0].errors[0].code == 131047


async def test_replies_go_out_from_the_number_that_received_the_message(
    rasa_whatsapp: RasaWhatsApp, sender: str
) -> None:
    other_number = "200000000000002"
    payload, _ = text_message(sender, "oi")
    payload["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"] = other_number
    await rasa_whatsapp.post(payload)
    await rasa_whatsapp.settle()
    paths = {
        r.path
        for r in rasa_whatsapp.graph.requests
        if r.json and (r.json.get("to") == sender or r.json.get("status") == "read")
    }
    assert paths == {f"/v23.0/{other_number}/messages"}


async def test_trigger_intent_reaches_whatsapp(rasa_whatsapp: RasaWhatsApp, sender: str) -> None:
    url = f"{rasa_whatsapp.url}/conversations/{sender}/trigger_intent"
    async with rasa_whatsapp.http.post(
        url, params={"output_channel": "whatsapp"}, json={"name": "menu"}
    ) as response:
        assert response.status == 200, await response.text()
    replies = rasa_whatsapp.replies_to(sender)
    assert replies and replies[-1]["type"] == "interactive"
    assert {
        r.path for r in rasa_whatsapp.graph.requests if r.json and r.json.get("to") == sender
    } == {f"/v23.0/{PHONE_NUMBER_ID}/messages"}


async def test_throttled_sends_are_retried(rasa_whatsapp: RasaWhatsApp, sender: str) -> None:
    rasa_whatsapp.graph.script(
        lambda r: r.path.endswith("/messages") and bool(r.json) and r.json.get("to") == sender,
        [meta_error(130429, message="Rate limit hit"), meta_error(131056)],
    )
    await rasa_whatsapp.post(text_message(sender, "oi")[0])
    await rasa_whatsapp.settle()
    assert rasa_whatsapp.replies_to(sender), "the reply was not retried"
    assert len(await rasa_whatsapp.bot_turns(sender)) >= 1


async def test_graph_outage_mid_turn_loses_neither_the_turn_nor_the_next_one(
    rasa_whatsapp: RasaWhatsApp, sender: str
) -> None:
    down = True
    rasa_whatsapp.graph.script(
        lambda r: down and bool(r.json) and r.json.get("to") == sender,
        [meta_error(131000, http_status=500, message="Something went wrong")] * 100,
    )
    await rasa_whatsapp.post(text_message(sender, "oi")[0])
    await rasa_whatsapp.settle()
    # The turn is saved although nothing could be sent.
    assert len(await rasa_whatsapp.user_turns(sender)) == 1
    assert len(await rasa_whatsapp.bot_turns(sender)) >= 1
    # Meta is back: the next message is answered.
    down = False
    await rasa_whatsapp.post(text_message(sender, "menu")[0])
    await rasa_whatsapp.settle()
    assert len(await rasa_whatsapp.user_turns(sender)) == 2
    assert rasa_whatsapp.replies_to(sender)


async def test_permanent_error_is_not_retried(rasa_whatsapp: RasaWhatsApp, sender: str) -> None:
    rasa_whatsapp.graph.script(
        lambda r: r.path.endswith("/messages") and bool(r.json) and r.json.get("to") == sender,
        [meta_error(131026, message="Message undeliverable")] * 5,
    )
    await rasa_whatsapp.post(text_message(sender, "oi")[0])
    await rasa_whatsapp.settle()
    sends = [r for r in rasa_whatsapp.graph.requests if r.json and r.json.get("to") == sender]
    bot_messages = await rasa_whatsapp.bot_turns(sender)
    # One attempt per rendered message, no retries.
    assert 1 <= len(sends) <= len(bot_messages) * 3


@pytest.mark.parametrize(
    ("signature", "status"),
    [(None, 401), ("sha256=" + "0" * 64, 403)],
)
async def test_unsigned_or_forged_webhooks_are_refused(
    rasa_whatsapp: RasaWhatsApp, sender: str, signature: str | None, status: int
) -> None:
    payload, _ = text_message(sender, "oi")
    if signature is None:
        result = await rasa_whatsapp.post(payload, secret=None)
    else:
        result = await rasa_whatsapp.post(payload, signature=signature)
    assert result[0] == status
    await rasa_whatsapp.settle()
    assert await rasa_whatsapp.user_turns(sender) == []


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"not json at all", 400),
        (b"[]", 400),
        (b'{"object": "whatsapp_business_account"}', 400),
        (b"{" + b" " * (3 * 1024 * 1024 + 1) + b"}", 413),
    ],
)
async def test_malformed_bodies_get_a_4xx_never_a_500(
    rasa_whatsapp: RasaWhatsApp, body: bytes, status: int
) -> None:
    assert (await rasa_whatsapp.post(body))[0] == status


@pytest.mark.parametrize(
    "payload",
    [
        {"object": "page", "entry": [{"id": "1", "messaging": []}]},
        {
            "object": "whatsapp_business_account",
            "entry": [{"id": "1", "changes": [{"field": "message_template_status_update"}]}],
        },
        {"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": "odd"}]},
        {"object": "whatsapp_business_account", "entry": [{"changes": [{"value": None}]}]},
    ],
)
async def test_valid_webhooks_we_ignore_get_200(
    rasa_whatsapp: RasaWhatsApp, payload: dict[str, Any]
) -> None:
    assert (await rasa_whatsapp.post(payload))[0] == 200


async def test_accepted_messages_are_processed_before_shutdown(
    graph: GraphServer, rasa_agent: Any
) -> None:
    sender = sender_for("shutdown")
    async with running_rasa(graph, rasa_agent) as server:
        for text in ("oi", "menu"):
            assert (await server.post(text_message(sender, text)[0]))[0] == 200
        # Leave at once: the server stops like on Ctrl-C, with both messages still queued.
    turns = await server.user_turns(sender)
    assert [t.text for t in turns] == ["oi", "menu"]
    assert len(server.replies_to(sender)) >= 2


async def test_webhooks_arriving_while_stopping_get_503_so_meta_redelivers(
    rasa_whatsapp: RasaWhatsApp, sender: str
) -> None:
    await rasa_whatsapp.channel.endpoint.drain(timeout=1)  # what Ctrl-C starts with
    async with rasa_whatsapp.http.post(
        rasa_whatsapp.webhook_url,
        data=(body := encode(text_message(sender, "oi")[0])),
        headers={"X-Hub-Signature-256": sign(body, APP_SECRET)},
    ) as response:
        assert response.status == 503
        assert response.headers["Retry-After"] == "10"
    assert await rasa_whatsapp.user_turns(sender) == []
