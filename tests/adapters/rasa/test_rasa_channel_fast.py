"""The Rasa adapter without a trained model: credentials, `WhatsAppOutput`, routes, one round trip.

Rasa loads the channel the way `rasa run --credentials credentials.yml` does
(`rasa.core.run.create_http_input_channels`), serves it from its own app factory
(`configure_app([...], enable_api=False)`) with a stub agent in place of a model (Rasa's own
channel tests do the same, /work/shared/reference/rasa-3.6-internals.md section 5), and sends to
the suite's Graph API (the sandbox's, which refuses any body Meta would refuse).
"""

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from sanic import Sanic

from connectors.whatsapp import WhatsAppInput, WhatsAppOutput
from connectors.whatsapp.adapters.rasa_channel import WhatsAppConfigError
from connectors.whatsapp.core.config import WhatsAppConfig
from tests.conftest import PHONE_NUMBER_ID, VERIFY_TOKEN
from tests.support.graph_server import GraphServer, meta_error, slow
from tests.support.http import client_session
from tests.support.sanic_server import serve
from tests.support.settings import credentials
from tests.support.validity import assert_valid
from tests.support.webhooks import encode, post_webhook, text_message

Sanic.test_mode = True  # Rasa names every app alike; Sanic refuses a second one otherwise
TO = "5511987654321"
CHANNEL = "connectors.whatsapp.WhatsAppInput"


def credentials_yml(tmp_path: Path, lines: list[str]) -> str:
    path = tmp_path / "credentials.yml"
    path.write_text(f"{CHANNEL}:\n" + "".join(f"  {line}\n" for line in lines))
    return str(path)


def rasa_loads(path: str) -> list[Any]:
    """What `rasa run --credentials <path>` does with the file."""
    from rasa.core.run import create_http_input_channels

    channels: list[Any] = create_http_input_channels(None, path)
    return channels


def required_lines(**changes: str) -> list[str]:
    values = {key: str(value) for key, value in credentials().items()} | changes
    return [f"{key}: {value}" for key, value in values.items() if value != "-"]


@pytest.fixture
def no_whatsapp_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """`from_credentials` falls back to `WHATSAPP_*` variables: none may leak in."""
    import os

    for name in list(os.environ):
        if name.startswith("WHATSAPP_"):
            monkeypatch.delenv(name)


# -- from_credentials: every error names the key --------------------------------------------------


@pytest.mark.usefixtures("no_whatsapp_env")
def test_the_projects_credentials_shape_loads(tmp_path: Path) -> None:
    [channel] = rasa_loads(credentials_yml(tmp_path, required_lines()))
    assert isinstance(channel, WhatsAppInput)
    assert channel.config.phone_number_id == credentials()["phone_number_id"]


@pytest.mark.usefixtures("no_whatsapp_env")
@pytest.mark.parametrize(
    ("lines", "named"),
    [
        # missing: named, with the variable it may also come from
        (required_lines(access_token="-"), ["'access_token'", "WHATSAPP_ACCESS_TOKEN"]),
        # a typo: named, with the key it likely meant
        ([*required_lines(), "dedupe: redis"], ["'dedupe'", "'dedup'"]),
        # quoted, Rasa leaves ${VAR} as it is: the channel must not take it for a token
        (
            required_lines(access_token='"${WHATSAPP_ACCESS_TOKEN}"'),
            ["'access_token'", "${WHATSAPP_ACCESS_TOKEN}"],
        ),
    ],
    ids=["missing", "unknown", "unexpanded"],
)
def test_a_key_at_fault_is_named(tmp_path: Path, lines: list[str], named: list[str]) -> None:
    with pytest.raises(WhatsAppConfigError) as caught:
        rasa_loads(credentials_yml(tmp_path, lines))
    message = str(caught.value)
    assert "WhatsAppInput in credentials.yml" in message
    for part in named:
        assert part in message


@pytest.mark.usefixtures("no_whatsapp_env")
def test_from_credentials_without_any_credentials_names_the_first_key() -> None:
    with pytest.raises(WhatsAppConfigError, match="'access_token'"):
        WhatsAppInput.from_credentials(None)


# -- WhatsAppOutput: each kind of bot message, to a real Graph API --------------------------------


@pytest.fixture
async def graph() -> AsyncIterator[GraphServer]:
    async with GraphServer() as server:
        yield server


@pytest.fixture
async def channel(graph: GraphServer) -> AsyncIterator[WhatsAppInput]:
    channel = WhatsAppInput(WhatsAppConfig.from_mapping(credentials(graph.base_url)))
    yield channel
    await channel.endpoint.close()


BUTTONS = [{"title": "Sim", "payload": "/affirm"}, {"title": "Não", "payload": "/deny"}]


async def test_each_kind_of_bot_message_is_sent(graph: GraphServer, channel: WhatsAppInput) -> None:
    output = channel.get_output_channel()
    assert isinstance(output, WhatsAppOutput)
    assert output.name() == "whatsapp"
    await output.send_text_message(TO, "Olá!")
    await output.send_image_url(TO, "https://example.com/cardapio.jpg")
    await output.send_attachment(TO, "https://example.com/cardapio.pdf")
    await output.send_text_with_buttons(TO, "Confirma?", BUTTONS)
    await output.send_quick_replies(TO, "Confirma?", BUTTONS)
    await output.send_elements(TO, [{"title": "Feijoada", "subtitle": "Com arroz"}])
    location = {"type": "location", "location": {"latitude": -23.56, "longitude": -46.65}}
    await output.send_custom_json(TO, location)

    sent = graph.sent_messages
    kinds = [(body["type"], body.get("interactive", {}).get("type")) for body in sent]
    assert kinds == [
        ("text", None),
        ("image", None),
        ("document", None),
        ("interactive", "button"),
        ("interactive", "button"),
        ("text", None),
        ("location", None),
    ]
    assert all(body["to"] == TO for body in sent)
    assert sent[0]["text"]["body"] == "Olá!"
    assert sent[1]["image"] == {"link": "https://example.com/cardapio.jpg"}
    assert sent[2]["document"]["link"] == "https://example.com/cardapio.pdf"
    replies = sent[3]["interactive"]["action"]["buttons"]
    assert [(b["reply"]["id"], b["reply"]["title"]) for b in replies] == [
        ("/affirm", "Sim"),
        ("/deny", "Não"),
    ]
    assert sent[4] == sent[3]
    assert "Feijoada" in sent[5]["text"]["body"]
    assert sent[6]["location"] == location["location"]
    assert_valid(*sent)
    assert channel.endpoint.outbound.counters["answers_sent"] == len(sent)
    assert channel.endpoint.outbound.counters["send_failures"] == 0


async def test_the_channels_client_and_store_are_the_endpoints(
    graph: GraphServer, channel: WhatsAppInput
) -> None:
    # Code written against the first layout reads them from the channel.
    assert channel.client is channel.endpoint.client
    assert channel.client.base_url == graph.base_url
    assert channel.dedup is channel.endpoint.dedup
    assert await channel.dedup.first_seen("message:wamid.X")
    assert not await channel.dedup.first_seen("message:wamid.X")


async def test_send_response_sends_the_whole_message_in_rasas_order(
    graph: GraphServer, channel: WhatsAppInput
) -> None:
    output = channel.get_output_channel()
    await output.send_response(
        TO, {"text": "Veja", "buttons": BUTTONS, "image": "https://example.com/a.png"}
    )
    assert [body["type"] for body in graph.sent_messages] == ["interactive", "image"]


async def test_a_refused_send_does_not_raise_into_rasa(
    graph: GraphServer, channel: WhatsAppInput
) -> None:
    graph.script("/messages", [meta_error(131009, details="Parameter value is not valid")])
    output = channel.get_output_channel()
    await output.send_text_message(TO, "primeira")  # refused: logged, not raised
    await output.send_text_message(TO, "segunda")
    assert [body["text"]["body"] for body in graph.sent_messages] == ["primeira", "segunda"]
    assert channel.endpoint.outbound.counters["send_failures"] == 1
    assert channel.endpoint.outbound.counters["answers_sent"] == 1


# -- Rasa's app: the routes, and one webhook through to the agent and back ------------------------


class EchoAgent:
    """Stands in for Rasa's Agent: `register()`'s handler calls `handle_message` (no model)."""

    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_message(self, message: Any) -> None:
        self.messages.append(message)
        await message.output_channel.send_text_message(message.sender_id, "eco: " + message.text)


def configured_app(channel: WhatsAppInput, agent: EchoAgent) -> Any:
    from rasa.core.run import configure_app

    app = configure_app([channel], enable_api=False)
    app.ctx.agent = agent
    return app


def test_the_routes_are_registered_under_webhooks_whatsapp(channel: WhatsAppInput) -> None:
    app = configured_app(channel, EchoAgent())
    routes = {
        ("/" + "/".join(route.parts), method)
        for route in app.router.routes
        for method in route.methods
    }
    assert {
        ("/webhooks/whatsapp", "GET"),
        ("/webhooks/whatsapp/metrics", "GET"),
        ("/webhooks/whatsapp/webhook", "GET"),
        ("/webhooks/whatsapp/webhook", "POST"),
    } <= {(path.rstrip("/"), method) for path, method in routes}


async def test_a_signed_text_reaches_the_agent_and_its_answer_reaches_whatsapp(
    graph: GraphServer, channel: WhatsAppInput
) -> None:
    agent = EchoAgent()
    payload, wamid = text_message(TO, "oi")
    async with serve(configured_app(channel, agent)) as url, client_session() as http:
        webhook = url + "/webhooks/whatsapp/webhook"
        query = {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "42"}
        async with http.get(webhook, params=query) as response:
            assert (response.status, await response.text()) == (200, "42")
        assert (await post_webhook(http, webhook, encode(payload), secret="wrong"))[0] in (401, 403)
        assert (await post_webhook(http, webhook, encode(payload)))[0] == 200
        await channel.pipeline.join()
        async with http.get(url + "/webhooks/whatsapp/") as response:
            assert response.status == 200

    [message] = agent.messages
    assert (message.text, message.sender_id, message.message_id) == ("oi", TO, wamid)
    assert message.input_channel == "whatsapp"
    assert isinstance(message.output_channel, WhatsAppOutput)
    [answer] = graph.sent_messages
    assert (answer["to"], answer["text"]["body"]) == (TO, "eco: oi")


class ScriptedAgent:
    """An agent whose turn runs `script(message)`: what a Rasa turn does between its sends."""

    def __init__(self, script: Callable[[Any], Awaitable[None]]) -> None:
        self.script = script

    async def handle_message(self, message: Any) -> None:
        await self.script(message)


async def one_turn(
    channel: WhatsAppInput,
    agent: Any,
    text: str = "oi",
    *,
    then: Callable[[], Awaitable[Any]] | None = None,
) -> None:
    """One webhook through the served channel, its turn awaited, then `then` (while the server,
    and so the channel's Graph client, still runs)."""
    payload, _ = text_message(TO, text)
    async with serve(configured_app(channel, agent)) as url, client_session() as http:
        assert (await post_webhook(http, url + "/webhooks/whatsapp/webhook", encode(payload)))[
            0
        ] == 200
        await channel.pipeline.join()
        if then is not None:
            await then()


async def test_a_turns_answers_leave_after_the_turn_lets_go_and_before_it_ends(
    graph: GraphServer, channel: WhatsAppInput
) -> None:
    """Rasa hands over each answer as soon as its action ran; awaiting the Graph API there would
    hold the turn (its tracker, the conversation's lock) for the round trip. The answers are sent
    once the turn lets go of the event loop, in order, and the turn ends only after them."""
    seen_inside: list[int] = []

    async def turn(message: Any) -> None:
        await message.output_channel.send_text_message(message.sender_id, "um")
        await message.output_channel.send_text_message(message.sender_id, "dois")
        seen_inside.append(len(graph.sent_messages))  # the turn went on at once
        # A custom action: the turn waits for the action server, the answers so far go out.
        await until(lambda: len(graph.sent_messages) == 2)
        seen_inside.append(len(graph.sent_messages))
        await message.output_channel.send_text_message(message.sender_id, "três")

    await one_turn(channel, ScriptedAgent(turn))
    assert seen_inside == [0, 2]
    assert [body["text"]["body"] for body in graph.sent_messages] == ["um", "dois", "três"]


async def test_the_answers_of_a_turn_that_raised_are_still_sent(
    graph: GraphServer, channel: WhatsAppInput
) -> None:
    async def turn(message: Any) -> None:
        await message.output_channel.send_text_message(message.sender_id, "antes do erro")
        raise RuntimeError("a bug in a custom component")

    await one_turn(channel, ScriptedAgent(turn))
    assert [body["text"]["body"] for body in graph.sent_messages] == ["antes do erro"]


async def test_proactive_sends_are_sent_before_they_return(
    graph: GraphServer, channel: WhatsAppInput
) -> None:
    """trigger_intent sends through `get_output_channel()`, and a reminder through the output of
    the turn that scheduled it, long after that turn: no turn follows to wait for their answers,
    so each send is done when it returns."""
    kept: list[Any] = []

    async def turn(message: Any) -> None:
        kept.append(message.output_channel)  # what Rasa stores in the reminder's job
        await message.output_channel.send_text_message(message.sender_id, "lembrete marcado")

    await one_turn(channel, ScriptedAgent(turn))
    await channel.get_output_channel().send_text_message(TO, "trigger_intent")
    assert len(graph.sent_messages) == 2
    await kept[0].send_text_message(TO, "lembrete")  # the reminder fires
    assert [body["text"]["body"] for body in graph.sent_messages] == [
        "lembrete marcado",
        "trigger_intent",
        "lembrete",
    ]


async def test_a_proactive_send_does_not_overtake_the_answers_of_a_turn_that_just_ended(
    graph: GraphServer, channel: WhatsAppInput
) -> None:
    """Rasa releases the conversation's lock when the turn returns, before its answers are out;
    a trigger_intent arriving then waits for them."""
    graph.script(
        lambda request: (
            isinstance(request.json, dict) and request.json.get("text", {}).get("body") == "um"
        ),
        [slow(0.5)],
    )
    proactive: list[asyncio.Task[None]] = []

    async def turn(message: Any) -> None:
        await message.output_channel.send_text_message(message.sender_id, "um")
        await message.output_channel.send_text_message(message.sender_id, "dois")
        output = channel.get_output_channel()  # runs once the turn has returned
        proactive.append(asyncio.create_task(output.send_text_message(TO, "proativa")))

    # Awaited before the server stops: stopping closes the client under a send in flight.
    await one_turn(channel, ScriptedAgent(turn), then=lambda: proactive[0])
    assert [body["text"]["body"] for body in graph.sent_messages] == ["um", "dois", "proativa"]


async def test_a_stopped_turn_sends_nothing_it_had_not_sent(
    graph: GraphServer, channel: WhatsAppInput
) -> None:
    """Stopping the server cancels the turns still running: a turn's answers not sent yet go with
    it (with `queue: redis` the turn runs again elsewhere), and it stops at once instead of
    waiting for a slow Graph API first."""
    graph.script(
        lambda request: (
            isinstance(request.json, dict)
            and request.json.get("text", {}).get("body") == "primeira"
        ),
        [slow(10)],
    )
    waiting = asyncio.Event()

    async def turn(message: Any) -> None:
        await message.output_channel.send_text_message(message.sender_id, "primeira")
        await message.output_channel.send_text_message(message.sender_id, "segunda")
        waiting.set()
        await asyncio.sleep(30)  # an action server that does not answer

    payload, _ = text_message(TO, "oi")
    async with serve(configured_app(channel, ScriptedAgent(turn))) as url:
        async with client_session() as http:
            webhook = url + "/webhooks/whatsapp/webhook"
            assert (await post_webhook(http, webhook, encode(payload)))[0] == 200
        await asyncio.wait_for(waiting.wait(), 5)
        await until(lambda: len(graph.sent_messages) == 1)  # "primeira" is under way
        # What the event loop's shutdown does to the tasks still running:
        workers = [
            task
            for task in asyncio.all_tasks()
            if getattr(task.get_coro(), "__qualname__", "") == "SenderQueues._work"
        ]
        assert workers
        for task in workers:
            task.cancel()
        await asyncio.wait_for(asyncio.gather(*workers, return_exceptions=True), 2)
    await asyncio.sleep(0.2)
    assert [body["text"]["body"] for body in graph.sent_messages] == ["primeira"]


async def test_with_queue_redis_a_turn_run_again_does_not_send_its_answers_twice(
    graph: GraphServer,
) -> None:
    """A turn that raised (or whose instance died) after sending an answer runs again from the
    Redis queue; the answers it had sent are not sent a second time."""
    from tests.support.redis_server import redis_server

    runs: list[int] = []

    async def turn(message: Any) -> None:
        runs.append(len(runs))
        await message.output_channel.send_text_message(message.sender_id, "primeira")
        if len(runs) == 1:  # "primeira" still goes out (the channel sends what a turn handed
            raise RuntimeError("the action server went away")  # over), then the turn is retried
        await message.output_channel.send_text_message(message.sender_id, "segunda")

    with redis_server() as url:
        channel = WhatsAppInput(
            WhatsAppConfig.from_mapping(credentials(graph.base_url, queue="redis", redis_url=url))
        )
        try:
            await one_turn(channel, ScriptedAgent(turn))
            await until(lambda: len(graph.sent_messages) >= 2, timeout=15)
            await asyncio.sleep(0.5)  # a third send would arrive meanwhile
        finally:
            await channel.endpoint.close()
    assert len(runs) == 2
    assert [body["text"]["body"] for body in graph.sent_messages] == ["primeira", "segunda"]


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def test_the_first_layouts_output_form_still_sends(graph: GraphServer) -> None:
    from connectors.whatsapp.core.client import GraphClient

    client = GraphClient(access_token="token", base_url=graph.base_url)
    try:
        await WhatsAppOutput(client, PHONE_NUMBER_ID).send_text_message(TO, "ainda funciona")
    finally:
        await client.close()
    [sent] = graph.sent_messages
    assert (sent["to"], sent["text"]["body"]) == (TO, "ainda funciona")


async def test_a_fault_in_a_route_is_a_503_never_a_500(
    channel: WhatsAppInput, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken_health() -> Any:
        raise RuntimeError("a bug of ours")

    app = configured_app(channel, EchoAgent())
    monkeypatch.setattr(channel.endpoint, "health", broken_health)  # fault injection
    async with serve(app) as url, client_session() as http:
        async with http.get(url + "/webhooks/whatsapp/") as response:
            assert response.status == 503
            assert response.headers["Retry-After"] == "10"
        async with http.get(url + "/webhooks/whatsapp/nowhere") as response:
            assert response.status == 404  # Sanic's own errors keep their status


async def test_the_log_level_survives_the_model_s_imports(channel: WhatsAppInput) -> None:
    """Loading a LogisticRegressionClassifier model imports numpy.distutils, which sets the root
    logger to WARNING; the channel's INFO lines (a template sent outside the window, draining)
    must still show once the server has started."""
    from numpy.distutils import log as numpy_distutils_log  # what skops imports, via numpy

    root = logging.getLogger()
    before = root.level
    root.setLevel(logging.INFO)  # rasa run's default --log-level
    try:
        app = configured_app(channel, EchoAgent())

        async def load_model(*_: Any) -> None:  # Rasa loads the model in before_server_start
            numpy_distutils_log.set_verbosity(0, force=True)  # what its import does

        app.register_listener(load_model, "before_server_start")
        async with serve(app):
            assert root.level == logging.INFO
            assert logging.getLogger("connectors.whatsapp.core.outbound").isEnabledFor(logging.INFO)
    finally:
        root.setLevel(before)
