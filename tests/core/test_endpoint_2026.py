"""The 2026 platform through a whole WebhookEndpoint: signed webhooks in, a real Graph API server
on 127.0.0.1 out. Identities, groups, the 24-hour window and its template, hooks, bad input."""

import asyncio
import contextlib
import copy
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from connectors.whatsapp.core.client import GraphClient
from connectors.whatsapp.core.config import WhatsAppConfig
from connectors.whatsapp.core.endpoint import WebhookEndpoint
from connectors.whatsapp.core.events import PlatformEvent, StatusUpdate, UserPreference
from connectors.whatsapp.core.inbound import BotInput
from connectors.whatsapp.core.retry import RetryPolicy
from connectors.whatsapp.core.signature import sign
from connectors.whatsapp.core.webhook import WebhookRequest
from tests.conftest import ACCESS_TOKEN, APP_SECRET, PHONE_NUMBER_ID, VERIFY_TOKEN
from tests.core.fixtures import load_fixture
from tests.support.graph_server import GraphServer, meta_error, ok
from tests.support.webhooks import encode, envelope, new_wamid

FAST = RetryPolicy(base_delay=0.01, max_delay=0.02, max_total_seconds=1)
WA_ID = "5511987654321"
BSUID = "BR.13491208655302741918"
GROUP = "Y2FwaV9ncm91cDoxMjAzNjMwNDI3NzgxNjQ4OTQ="
TEMPLATE = {
    "name": "retomar_conversa",
    "language": "pt_BR",
    "components": [{"type": "body", "parameters": [{"type": "text", "text": "{text}"}]}],
}


def is_send(request: Any) -> bool:
    """Message sends, not read receipts (both are POSTs to /messages)."""
    return request.path.endswith("/messages") and bool(request.json) and "type" in request.json


MENU = {
    "text": "O que deseja?",
    "buttons": [
        {"title": "Categorias", "payload": "/ver_categorias"},
        {"title": "Carrinho", "payload": "/ver_carrinho"},
    ],
}


class Bot:
    """Records what reaches it and answers each message with `answer`."""

    def __init__(self, endpoint: WebhookEndpoint) -> None:
        self.endpoint = endpoint
        self.inputs: list[BotInput] = []
        self.answer: dict[str, Any] = {"text": "Olá!"}
        self.statuses: list[StatusUpdate] = []
        self.events: list[Any] = []
        self.sent_ids: list[str] = []

    async def deliver(self, bot_input: BotInput) -> None:
        self.inputs.append(bot_input)
        results = await self.endpoint.outbound.send(bot_input.sender_id, self.answer)
        self.sent_ids += [result.message_id for result in results if result is not None]


@pytest.fixture
async def graph() -> AsyncIterator[GraphServer]:
    async with GraphServer(access_token=ACCESS_TOKEN) as server:
        yield server


async def make_bot(graph: GraphServer, **overrides: Any) -> Bot:
    values: dict[str, Any] = {
        "access_token": ACCESS_TOKEN,
        "phone_number_id": PHONE_NUMBER_ID,
        "verify_token": VERIFY_TOKEN,
        "app_secret": APP_SECRET,
        "api_base_url": graph.base_url,
    }
    values.update(overrides)
    config = WhatsAppConfig.from_mapping(values)
    client = GraphClient(access_token=ACCESS_TOKEN, base_url=graph.base_url, retry=FAST)
    statuses: list[StatusUpdate] = []
    endpoint = WebhookEndpoint(config, client=client, status_hook=statuses.append)
    bot = Bot(endpoint)
    bot.statuses = statuses
    endpoint.event_hook = bot.events.append
    endpoint.bind(bot.deliver)
    return bot


@pytest.fixture
async def bot(graph: GraphServer) -> AsyncIterator[Bot]:
    made = await make_bot(graph)
    yield made
    await made.endpoint.close()


@pytest.fixture
async def bot_with_template(graph: GraphServer) -> AsyncIterator[Bot]:
    made = await make_bot(graph, reengagement_template=TEMPLATE)
    yield made
    await made.endpoint.close()


async def post(bot: Bot, payload: dict[str, Any] | bytes) -> int:
    body = payload if isinstance(payload, bytes) else encode(payload)
    request = WebhookRequest("POST", body, {"X-Hub-Signature-256": sign(body, APP_SECRET)})
    answer = await bot.endpoint.receive(request)
    await bot.endpoint.join()
    return answer.status


def person_message(
    text: str, *, wa_id: str | None = WA_ID, user_id: str | None = None, ts: float | None = None
) -> dict[str, Any]:
    message: dict[str, Any] = {
        "id": new_wamid(),
        "timestamp": str(int(ts if ts is not None else time.time())),
        "type": "text",
        "text": {"body": text},
    }
    contact: dict[str, Any] = {"profile": {"name": "Maria Silva"}}
    if wa_id:
        message["from"] = wa_id
        contact["wa_id"] = wa_id
    if user_id:
        message["from_user_id"] = user_id
        contact["user_id"] = user_id
    return envelope([message], contacts=[contact])


def group_message(text: str, member: str = WA_ID) -> dict[str, Any]:
    message = {
        "from": member,
        "group_id": GROUP,
        "id": new_wamid(),
        "timestamp": str(int(time.time())),
        "type": "text",
        "text": {"body": text},
    }
    return envelope([message], contacts=[{"profile": {"name": "Membro"}, "wa_id": member}])


def failed_status(message_id: str, code: int = 131047) -> dict[str, Any]:
    payload = copy.deepcopy(load_fixture("status_failed_reengagement"))
    status = payload["entry"][0]["changes"][0]["value"]["statuses"][0]
    status["id"] = message_id
    status["errors"][0]["code"] = code
    return payload


# --- identity ---------------------------------------------------------------------------------


async def test_a_user_known_by_bsuid_only_is_answered_through_recipient(
    bot: Bot, graph: GraphServer
) -> None:
    assert await post(bot, person_message("oi", wa_id=None, user_id=BSUID)) == 200
    assert bot.inputs[-1].sender_id == BSUID
    [reply] = graph.sent_messages
    assert reply["recipient"] == BSUID and "to" not in reply


async def test_the_conversation_survives_the_phone_number_disappearing(
    bot: Bot, graph: GraphServer
) -> None:
    await post(bot, person_message("oi", user_id=BSUID))
    await post(bot, person_message("sou eu", wa_id=None, user_id=BSUID))
    assert [b.sender_id for b in bot.inputs] == [WA_ID, WA_ID]
    first, second = graph.sent_messages
    assert first["to"] == WA_ID
    # The latest message withheld the phone number: the answer goes to the BSUID.
    assert second["recipient"] == BSUID and "to" not in second
    await post(bot, person_message("de novo", user_id=BSUID))
    assert graph.sent_messages[-1]["to"] == WA_ID


async def test_a_send_that_needs_a_phone_number_fails_clearly_without_one(
    bot: Bot, graph: GraphServer, caplog: pytest.LogCaptureFixture
) -> None:
    bot.answer = {
        "custom": {
            "type": "template",
            "template": {"name": "codigo", "language": {"code": "pt_BR"}},
            "needs_phone_number": True,
        }
    }
    await post(bot, person_message("meu código", wa_id=None, user_id=BSUID))
    assert graph.sent_messages == []
    assert "needs the person's phone number" in caplog.text
    await post(bot, person_message("meu código", user_id=BSUID))
    [sent] = graph.sent_messages
    assert sent["to"] == WA_ID and "needs_phone_number" not in sent


# --- groups -----------------------------------------------------------------------------------


async def test_a_group_conversation_numbered_menu_out_and_a_number_in(
    bot: Bot, graph: GraphServer
) -> None:
    bot.answer = MENU
    assert await post(bot, group_message("menu")) == 200
    assert bot.inputs[-1].sender_id == GROUP
    assert bot.inputs[-1].metadata["whatsapp"]["participant"]["wa_id"] == WA_ID
    [menu] = graph.sent_messages
    assert menu["recipient_type"] == "group" and menu["to"] == GROUP
    assert menu["type"] == "text"
    assert menu["text"]["body"].endswith("1. Categorias\n2. Carrinho")
    bot.answer = {"text": "Carrinho vazio"}
    await post(bot, group_message("2", member="5521998765432"))
    assert bot.inputs[-1].text == "/ver_carrinho"
    # No read receipt, no typing indicator for group messages.
    assert not any(r.json and r.json.get("status") == "read" for r in graph.requests)


async def test_proactive_messages_to_a_group_go_to_the_group(bot: Bot, graph: GraphServer) -> None:
    await post(bot, group_message("oi"))
    await bot.endpoint.outbound.send(GROUP, {"text": "Lembrete para o grupo"})
    last = graph.sent_messages[-1]
    assert (last["recipient_type"], last["to"]) == ("group", GROUP)


# --- the 24-hour window -----------------------------------------------------------------------


async def test_outside_the_window_a_bot_message_goes_as_the_template(
    bot_with_template: Bot, graph: GraphServer
) -> None:
    bot = bot_with_template
    bot.answer = {"text": "Seu pedido saiu"}
    await post(bot, person_message("oi", ts=time.time() - 25 * 3600))
    [sent] = graph.sent_messages
    assert sent["type"] == "template" and sent["to"] == WA_ID
    assert sent["template"]["name"] == "retomar_conversa"
    assert sent["template"]["components"][0]["parameters"][0]["text"] == "Seu pedido saiu"


async def test_a_template_from_the_domain_is_sent_as_given_even_outside_the_window(
    bot_with_template: Bot, graph: GraphServer
) -> None:
    bot = bot_with_template
    template = {
        "type": "template",
        "template": {
            "name": "lembrete",
            "language": {"code": "pt_BR"},
            "components": [
                {
                    "type": "header",
                    "parameters": [{"type": "image", "image": {"link": "https://x.example/a.png"}}],
                },
                {"type": "body", "parameters": [{"type": "text", "text": "Maria"}]},
                {
                    "type": "button",
                    "sub_type": "quick_reply",
                    "index": "0",
                    "parameters": [{"type": "payload", "payload": "/confirmar"}],
                },
            ],
        },
    }
    bot.answer = {"custom": template}
    await post(bot, person_message("oi", ts=time.time() - 25 * 3600))
    [sent] = graph.sent_messages
    assert sent["template"] == template["template"]
    assert sent["to"] == WA_ID and sent["messaging_product"] == "whatsapp"


async def test_an_immediate_131047_is_sent_once_more_as_the_template(
    bot_with_template: Bot, graph: GraphServer
) -> None:
    graph.script(is_send, [meta_error(131047)])
    await post(bot_with_template, person_message("oi"))
    refused, template = graph.sent_messages
    assert refused["type"] == "text"
    assert template["type"] == "template" and template["to"] == WA_ID
    assert template["template"]["components"][0]["parameters"][0]["text"] == "Olá!"
    assert bot_with_template.endpoint.outbound.counters["templates_sent"] == 1


async def test_a_template_refused_with_131047_is_not_sent_again(
    bot_with_template: Bot, graph: GraphServer
) -> None:
    graph.script(is_send, [meta_error(131047), meta_error(131047)])
    await post(bot_with_template, person_message("oi"))
    assert [m["type"] for m in graph.sent_messages] == ["text", "template"]
    assert bot_with_template.statuses and bot_with_template.statuses[-1].errors[0].code == 131047


async def test_without_a_template_an_immediate_131047_reaches_the_status_hook(
    bot: Bot, graph: GraphServer, caplog: pytest.LogCaptureFixture
) -> None:
    graph.script(is_send, [meta_error(131047)])
    await post(bot, person_message("oi"))
    assert [m["type"] for m in graph.sent_messages] == ["text"]
    [status] = bot.statuses
    assert (status.recipient_id, status.errors[0].code) == (WA_ID, 131047)
    assert "no reengagement_template is configured" in caplog.text
    assert WA_ID in caplog.text


async def test_a_later_failed_status_with_131047_gets_the_template_once(
    bot_with_template: Bot, graph: GraphServer
) -> None:
    bot = bot_with_template
    bot.answer = {"text": "Chegou seu pedido"}
    await post(bot, person_message("oi"))
    [reply] = graph.sent_messages
    wamid = bot.sent_ids[-1]
    await post(bot, failed_status(wamid))
    await post(bot, failed_status(wamid))  # Meta redelivers: still one template
    assert [m["type"] for m in graph.sent_messages] == ["text", "template"]
    template = graph.sent_messages[-1]
    assert template["to"] == WA_ID
    assert template["template"]["components"][0]["parameters"][0]["text"] == "Chegou seu pedido"
    assert reply["type"] == "text"
    assert len(bot.statuses) == 1  # the hook still hears of the failure


def is_text(request: Any) -> bool:
    """A text message send."""
    return is_send(request) and request.json.get("type") == "text"


class Outage:
    """Meta's /messages answering 503 to text messages while `down` is set."""

    def __init__(self, graph: GraphServer) -> None:
        self.down = True
        graph.script(self.refuses, [meta_error(2, 503)] * 1000)

    def refuses(self, request: Any) -> bool:
        return self.down and is_text(request)


@contextlib.asynccontextmanager
async def answer_in_the_outbox(
    graph: GraphServer, answer: dict[str, Any] | None = None, **overrides: Any
) -> AsyncIterator[tuple[Bot, Outage]]:
    """A bot whose answer to "oi" waits in the outbox, the Graph API down (`outage.down`)."""
    bot = await make_bot(graph, outbox_retry_seconds=60, **overrides)
    try:
        outage = Outage(graph)
        if answer is not None:
            bot.answer = answer
        await post(bot, person_message("oi"))
        yield bot, outage
    finally:
        await bot.endpoint.close()


async def until(condition: Any, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_an_answer_that_waited_in_the_outbox_past_the_window_goes_as_the_template(
    graph: GraphServer,
) -> None:
    async with answer_in_the_outbox(graph, reengagement_template=TEMPLATE) as (bot, outage):
        assert bot.endpoint.outbound.counters["answers_queued"] == 1
        # Meta is back, but the window closed while the answer waited: 131047 on the retry.
        graph.script(is_text, [meta_error(131047)])
        outage.down = False
        await until(lambda: bot.endpoint.outbound.counters["templates_sent"] == 1)
        template = graph.sent_messages[-1]
        assert template["type"] == "template" and template["to"] == WA_ID
        assert template["template"]["components"][0]["parameters"][0]["text"] == "Olá!"
        assert bot.statuses == []  # answered, not lost


async def test_a_later_131047_for_an_answer_the_outbox_sent_gets_the_template(
    graph: GraphServer,
) -> None:
    answer = {"text": "Chegou seu pedido"}
    async with answer_in_the_outbox(graph, answer, reengagement_template=TEMPLATE) as (
        bot,
        outage,
    ):
        accepted = {
            "messaging_product": "whatsapp",
            "contacts": [{"input": WA_ID, "wa_id": WA_ID}],
            "messages": [{"id": "wamid.SENT-FROM-THE-OUTBOX"}],
        }
        graph.script(is_send, [ok(accepted)])
        outage.down = False
        await until(lambda: bot.endpoint.outbox.counters["outbox_sent"] == 1)
        await post(bot, failed_status("wamid.SENT-FROM-THE-OUTBOX"))
        template = graph.sent_messages[-1]
        assert template["type"] == "template" and template["to"] == WA_ID
        assert template["template"]["components"][0]["parameters"][0]["text"] == (
            "Chegou seu pedido"
        )


async def test_without_a_template_an_outboxed_answer_refused_with_131047_is_given_up_once(
    graph: GraphServer,
) -> None:
    async with answer_in_the_outbox(graph) as (bot, outage):
        graph.script(is_text, [meta_error(131047)])
        outage.down = False
        await until(lambda: bot.endpoint.outbox.counters["outbox_expired"] == 1)
        assert bot.endpoint.outbox.counters["outbox_sent"] == 0
        assert await bot.endpoint.outbox.waiting() == 0
        [status] = bot.statuses  # told once, with Meta's code
        assert (status.recipient_id, status.errors[0].code) == (WA_ID, 131047)


async def test_a_template_that_fails_for_a_while_is_retried_by_the_outbox(
    graph: GraphServer,
) -> None:
    async with answer_in_the_outbox(graph, reengagement_template=TEMPLATE) as (bot, outage):
        # Outside the window now (Meta refuses the answer each time), and the template meets
        # the end of the outage: every attempt of the client's first try fails.
        graph.script(is_text, [meta_error(131047)] * 2)
        graph.script(
            lambda r: is_send(r) and r.json["type"] == "template", [meta_error(2, 503)] * 4
        )
        outage.down = False
        await until(lambda: bot.endpoint.outbound.counters["templates_sent"] == 1)
        assert graph.sent_messages[-1]["type"] == "template"
        assert bot.endpoint.outbox.counters["outbox_sent"] == 1
        assert bot.statuses == []


async def test_another_failure_or_an_unknown_message_id_sends_no_template(
    bot_with_template: Bot, graph: GraphServer
) -> None:
    await post(bot_with_template, person_message("oi"))
    await post(bot_with_template, failed_status(bot_with_template.sent_ids[-1], code=131026))
    await post(bot_with_template, failed_status("wamid.never-sent-by-us"))
    assert [m["type"] for m in graph.sent_messages] == ["text"]


# --- hooks and what never reaches the bot -----------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "standby",
        "messaging_handovers",
        "group_lifecycle_update",
        "group_participants_update",
        "user_preferences",
        "revoke",
        "call_permission_reply",
        "status_pricing_bsuid",
    ],
)
async def test_platform_webhooks_are_acknowledged_and_never_reach_the_bot(
    bot: Bot, graph: GraphServer, name: str
) -> None:
    assert await post(bot, load_fixture(name)) == 200
    assert bot.inputs == []
    assert graph.sent_messages == []


async def test_the_event_hook_gets_statuses_preferences_and_group_events(bot: Bot) -> None:
    for name in ("status_pricing_bsuid", "user_preferences", "group_lifecycle_update", "standby"):
        await post(bot, load_fixture(name))
    status, preference, group, standby = bot.events
    assert isinstance(status, StatusUpdate)
    assert (status.pricing_category, status.pricing_model, status.billable) == (
        "utility",
        "PMP",
        True,
    )
    assert isinstance(preference, UserPreference) and preference.opted_out
    assert isinstance(group, PlatformEvent) and group.group_id == GROUP
    assert isinstance(standby, PlatformEvent) and standby.field == "standby"


async def test_an_opt_out_keyword_reaches_the_bot_as_its_intent(bot: Bot) -> None:
    await post(bot, person_message("Parar"))
    assert bot.inputs[-1].text == "/whatsapp_opt_out"


@pytest.mark.parametrize("phone_number_id", ["\ud800", "9" * 30_000, "12/../me"])
async def test_a_malformed_business_number_never_reaches_a_graph_url(
    bot: Bot, graph: GraphServer, phone_number_id: str
) -> None:
    payload = person_message("oi")
    payload["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"] = phone_number_id
    assert await post(bot, payload) == 200
    assert bot.inputs == []
    assert graph.requests == []
