"""End to end through Rasa's own server with the trained sample bot, the 2026 platform:

- identity continuity: a customer first seen with phone + BSUID, later with the BSUID only, stays
  in one Rasa conversation (history and slots kept), answered through `recipient`;
- a group conversation: the bot's menu goes to the group as a numbered text menu, a member's "2"
  reaches the bot as the second option's payload, no read receipts;
- the template fallback: Meta refusing a free-form answer with 131047 gets the
  `reengagement_template`, and so does a trigger_intent outside the 24-hour window.

Real signed webhooks, the sandbox's Graph API on 127.0.0.1 (tests/support/graph_server.py).
"""

import json
import time
from typing import Any

import pytest

from tests.adapters.rasa.conftest import RasaWhatsApp, running_rasa
from tests.support.graph_server import GraphServer, meta_error
from tests.support.webhooks import envelope, new_wamid

pytestmark = pytest.mark.e2e

TEMPLATE = {
    "name": "retomar_conversa",
    "language": "pt_BR",
    "components": [{"type": "body", "parameters": [{"type": "text", "text": "{text}"}]}],
}


def ids_for(test: str) -> tuple[str, str, str]:
    """A phone number, a BSUID and a group id per test: the agent's trackers are shared."""
    n = str(abs(hash(test)) % 10**8).zfill(8)
    return "55119" + n, f"BR.7{n}0042", f"Z3JvdXA{n}"


def message(
    text: str,
    *,
    wa_id: str | None,
    user_id: str | None = None,
    group_id: str | None = None,
    ts: float | None = None,
) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "id": new_wamid(),
        "timestamp": str(int(ts if ts is not None else time.time())),
        "type": "text",
        "text": {"body": text},
    }
    contact: dict[str, Any] = {"profile": {"name": "Ana"}}
    if wa_id:
        raw["from"] = contact["wa_id"] = wa_id
    if user_id:
        raw["from_user_id"] = contact["user_id"] = user_id
    if group_id:
        raw["group_id"] = group_id
    return envelope([raw], contacts=[contact])


def sends(request: Any) -> bool:
    return request.path.endswith("/messages") and bool(request.json) and "type" in request.json


async def test_a_customer_who_loses_the_phone_number_keeps_the_conversation(
    rasa_whatsapp: RasaWhatsApp, request: pytest.FixtureRequest
) -> None:
    phone, bsuid, _ = ids_for(request.node.nodeid)
    assert (await rasa_whatsapp.post(message("oi", wa_id=phone, user_id=bsuid)))[0] == 200
    await rasa_whatsapp.settle()
    assert (await rasa_whatsapp.post(message("menu", wa_id=None, user_id=bsuid)))[0] == 200
    await rasa_whatsapp.settle()
    turns = await rasa_whatsapp.user_turns(phone)
    assert [turn.text for turn in turns] == ["oi", "menu"]
    assert turns[-1].metadata["whatsapp"]["user_id"] == bsuid
    assert "wa_id" not in turns[-1].metadata["whatsapp"]
    assert await rasa_whatsapp.user_turns(bsuid) == []  # no second conversation
    last = rasa_whatsapp.graph.sent_messages[-1]
    assert last["recipient"] == bsuid and "to" not in last


async def test_a_group_conversation_menu_out_and_a_members_number_in(
    rasa_whatsapp: RasaWhatsApp, request: pytest.FixtureRequest
) -> None:
    phone, _, group = ids_for(request.node.nodeid)
    await rasa_whatsapp.post(message("menu", wa_id=phone, group_id=group))
    await rasa_whatsapp.settle()
    [turn] = await rasa_whatsapp.user_turns(group)
    assert turn.metadata["whatsapp"]["participant"]["wa_id"] == phone
    to_group = [m for m in rasa_whatsapp.graph.sent_messages if m.get("to") == group]
    assert to_group and all(m["recipient_type"] == "group" for m in to_group)
    assert all(m["type"] != "interactive" for m in to_group)
    assert "2. " in to_group[-1]["text"]["body"]
    payloads = await rasa_whatsapp.channel.endpoint.identities.menu(group)
    assert len(payloads) >= 2

    other_member = "5521998765432"
    await rasa_whatsapp.post(message("2", wa_id=other_member, group_id=group))
    await rasa_whatsapp.settle()
    second = (await rasa_whatsapp.user_turns(group))[-1]
    assert second.text == payloads[1]
    assert second.intent["name"] == payloads[1].lstrip("/").partition("{")[0]
    receipts = [r for r in rasa_whatsapp.graph.requests if r.json and r.json.get("status")]
    assert receipts == []


async def test_an_answer_refused_with_131047_is_sent_as_the_template(
    graph: GraphServer, rasa_agent: Any, request: pytest.FixtureRequest
) -> None:
    phone, _, _ = ids_for(request.node.nodeid)
    async with running_rasa(graph, rasa_agent, reengagement_template=TEMPLATE) as rasa:
        graph.script(sends, [meta_error(131047)])
        await rasa.post(message("oi", wa_id=phone))
        await rasa.settle()
        kinds = [m["type"] for m in rasa.replies_to(phone)]
        # The first answer was refused (recorded, then 131047), the template went right after it.
        assert kinds[1] == "template" and kinds.count("template") == 1, kinds
        template = next(m for m in rasa.replies_to(phone) if m["type"] == "template")
        assert template["template"]["name"] == "retomar_conversa"
        assert template["template"]["components"][0]["parameters"][0]["text"]


async def test_trigger_intent_outside_the_window_goes_as_the_template(
    graph: GraphServer, rasa_agent: Any, request: pytest.FixtureRequest
) -> None:
    phone, _, _ = ids_for(request.node.nodeid)
    async with running_rasa(graph, rasa_agent, reengagement_template=TEMPLATE) as rasa:
        await rasa.post(message("oi", wa_id=phone, ts=time.time() - 25 * 3600))
        await rasa.settle()
        before = len(rasa.replies_to(phone))
        url = f"{rasa.url}/conversations/{phone}/trigger_intent"
        async with rasa.http.post(
            url, params={"output_channel": "whatsapp"}, json={"name": "menu"}
        ) as response:
            assert response.status == 200, await response.text()
        proactive = rasa.replies_to(phone)[before:]
        assert proactive and all(m["type"] == "template" for m in proactive)
        body = proactive[0]["template"]["components"][0]["parameters"][0]["text"]
        assert body and json.dumps(proactive[0])
