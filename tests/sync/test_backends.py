"""Answer backends: loading them by name, calling sync and async ones, and the Rasa REST one
against a real HTTP server on 127.0.0.1 that answers like Rasa's REST channel."""

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp import web

from connectors.whatsapp.core.config import ConfigError
from connectors.whatsapp.core.events import InboundMessage
from connectors.whatsapp.core.inbound import BotInput, to_bot_input
from connectors.whatsapp.core.parsing import parse_webhook
from connectors.whatsapp.sync.backends import (
    EchoBackend,
    RasaRestBackend,
    as_bot_messages,
    ask_backend,
    backend_name,
    load_backend,
)
from tests.support.processes import free_port
from tests.support.webhooks import text_message

NOT_CALLABLE = 42


def shout(bot_input: BotInput) -> list[dict[str, Any]]:
    return [{"text": bot_input.text.upper()}]


class Polite:
    name = "polite"

    async def __call__(self, bot_input: BotInput) -> list[dict[str, Any]]:
        return [{"text": f"Obrigado, {bot_input.sender_id}"}]


class NeedsArguments:
    def __init__(self, greeting: str) -> None:
        self.greeting = greeting

    def __call__(self, bot_input: BotInput) -> list[dict[str, Any]]:
        return [{"text": self.greeting}]


def bot_input(text: str = "oi", sender: str = "5511900000201") -> BotInput:
    payload, _ = text_message(sender, text)
    [message] = parse_webhook(payload)
    assert isinstance(message, InboundMessage)
    result = to_bot_input(message)
    assert result is not None
    return result


# -- loading ------------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", [None, "", "echo", " ECHO "])
def test_echo_is_the_default(spec: str | None) -> None:
    assert isinstance(load_backend(spec), EchoBackend)


def test_rasa_reads_its_url_timeout_and_apology_from_the_environment() -> None:
    backend = load_backend(
        "rasa",
        {
            "WHATSAPP_RASA_URL": "http://rasa.internal:5005/",
            "WHATSAPP_RASA_TIMEOUT": "7.5",
            "WHATSAPP_RASA_APOLOGY": "Desculpe, tente de novo.",
        },
    )
    assert isinstance(backend, RasaRestBackend)
    assert backend.webhook_url == "http://rasa.internal:5005/webhooks/rest/webhook"
    assert backend.apology == "Desculpe, tente de novo."
    default = load_backend("rasa", {})
    assert isinstance(default, RasaRestBackend)
    assert default.webhook_url == "http://127.0.0.1:5005/webhooks/rest/webhook"
    assert default.apology is None


def test_a_full_rest_webhook_url_is_kept_as_it_is() -> None:
    backend = RasaRestBackend("https://bot.example.com/webhooks/rest/webhook")
    assert backend.webhook_url == "https://bot.example.com/webhooks/rest/webhook"


def test_import_paths_load_functions_and_instantiate_classes() -> None:
    assert load_backend("tests.sync.test_backends:shout") is shout
    assert load_backend("tests.sync.test_backends.shout") is shout
    polite = load_backend("tests.sync.test_backends:Polite")
    assert isinstance(polite, Polite)
    assert backend_name(polite) == "polite"
    assert backend_name(shout) == "tests.sync.test_backends:shout"


@pytest.mark.parametrize(
    ("spec", "env", "message"),
    [
        ("chatgpt", {}, "must be 'echo', 'rasa' or"),
        ("no_such_package.module:answer", {}, "cannot be imported"),
        ("tests.sync.test_backends:missing", {}, "cannot be imported"),
        ("tests.sync.test_backends:NOT_CALLABLE", {}, "is not callable"),
        ("tests.sync.test_backends:NeedsArguments", {}, "without arguments"),
        ("tests.sync.test_backends:", {}, "must be 'package.module:attribute'"),
        ("rasa", {"WHATSAPP_RASA_TIMEOUT": "soon"}, "WHATSAPP_RASA_TIMEOUT"),
        ("rasa", {"WHATSAPP_RASA_TIMEOUT": "0"}, "must be positive"),
        ("rasa", {"WHATSAPP_RASA_URL": "localhost:5005"}, "http(s) URL"),
    ],
)
def test_bad_specs_are_config_errors_that_say_why(
    spec: str, env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        load_backend(spec, env)
    assert message in str(raised.value)


# -- calling ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("returned", "expected"),
    [
        (None, []),
        ([], []),
        ("olá", [{"text": "olá"}]),
        ("   ", []),
        ({"text": "um"}, [{"text": "um"}]),
        (
            [{"text": "um"}, "dois", 3, None, {"image": "https://x/y.png"}],
            [{"text": "um"}, {"text": "dois"}, {"image": "https://x/y.png"}],
        ),
        (({"text": "tupla"},), [{"text": "tupla"}]),
        (42, []),
    ],
)
def test_answers_are_normalised_to_bot_messages(returned: object, expected: list[Any]) -> None:
    assert as_bot_messages(returned) == expected


async def test_sync_backends_run_in_a_worker_thread_and_async_ones_on_the_loop() -> None:
    seen: dict[str, int] = {}

    def sync_backend(received: BotInput) -> list[dict[str, Any]]:
        seen["sync"] = threading.get_ident()
        return [{"text": "sync"}]

    async def async_backend(received: BotInput) -> list[dict[str, Any]]:
        seen["async"] = threading.get_ident()
        return [{"text": "async"}]

    assert await ask_backend(sync_backend, bot_input()) == [{"text": "sync"}]
    assert await ask_backend(async_backend, bot_input()) == [{"text": "async"}]
    assert await ask_backend(Polite(), bot_input(sender="55")) == [{"text": "Obrigado, 55"}]
    assert seen["async"] == threading.get_ident()
    assert seen["sync"] != threading.get_ident()


async def test_a_blocking_sync_backend_does_not_block_the_loop() -> None:
    release = threading.Event()

    def blocking(received: BotInput) -> str:
        release.wait(5)
        return "done"

    call = asyncio.ensure_future(ask_backend(blocking, bot_input()))
    await asyncio.sleep(0.05)  # the loop runs while the backend blocks
    assert not call.done()
    release.set()
    assert await call == [{"text": "done"}]


async def test_the_echo_backend_answers_with_the_text() -> None:
    assert await EchoBackend()(bot_input("bom dia")) == [{"text": "bom dia"}]


# -- the Rasa REST backend ---------------------------------------------------------------------


class FakeRasa:
    """Answers `POST /webhooks/rest/webhook` like Rasa's REST channel, as scripted."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.client_ports: list[int] = []
        self.answer: Callable[[dict[str, Any]], web.StreamResponse | Any] = lambda body: [
            {"recipient_id": body["sender"], "text": f"Rasa: {body['message']}"}
        ]
        self.delay = 0.0
        self.url = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.received.append(body)
        peer = request.transport.get_extra_info("peername") if request.transport else None
        self.client_ports.append(peer[1] if peer else -1)
        if self.delay:
            await asyncio.sleep(self.delay)
        answer = self.answer(body)
        return answer if isinstance(answer, web.StreamResponse) else web.json_response(answer)


@pytest.fixture
async def rasa() -> AsyncIterator[FakeRasa]:
    fake = FakeRasa()
    app = web.Application()
    app.router.add_post("/webhooks/rest/webhook", fake.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    fake.url = f"http://127.0.0.1:{port}"
    yield fake
    await runner.cleanup()


async def test_rasa_gets_what_the_rasa_channel_would_give_it(rasa: FakeRasa) -> None:
    backend = RasaRestBackend(rasa.url)
    received = bot_input("quero ver os planos", sender="5511900000202")
    answers = await backend(received)
    await backend.close()
    assert answers == [{"recipient_id": "5511900000202", "text": "Rasa: quero ver os planos"}]
    [sent] = rasa.received
    assert sent["sender"] == "5511900000202"
    assert sent["message"] == "quero ver os planos"
    assert sent["input_channel"] == "whatsapp"
    assert sent["metadata"]["whatsapp"]["message"]["id"] == received.message_id
    assert sent["metadata"]["whatsapp"]["profile_name"] == "Ana"


async def test_rasa_answers_are_relayed_in_order_with_custom_payloads(rasa: FakeRasa) -> None:
    custom = {"type": "location_request_message", "location_request_message": {}}
    rasa.answer = lambda body: [
        {"recipient_id": "x", "text": "um", "buttons": [{"title": "A", "payload": "/a"}]},
        {"recipient_id": "x", "custom": custom},
        "not a bot message",
    ]
    backend = RasaRestBackend(rasa.url)
    answers = await backend(bot_input())
    await backend.close()
    assert [answer.get("text") for answer in answers] == ["um", None]
    assert answers[1]["custom"] == custom


@pytest.mark.parametrize(
    "failure",
    [
        lambda body: web.Response(status=500, text="Internal Server Error"),
        lambda body: web.Response(status=200, text="<html>proxy</html>"),
        lambda body: {"not": "a list"},
    ],
)
async def test_a_failing_rasa_gets_the_apology_or_silence(
    rasa: FakeRasa, failure: Callable[[dict[str, Any]], Any], caplog: pytest.LogCaptureFixture
) -> None:
    rasa.answer = failure
    silent = RasaRestBackend(rasa.url)
    polite = RasaRestBackend(rasa.url, apology="Estou com problemas, tente mais tarde.")
    assert await silent(bot_input()) == []
    assert await polite(bot_input()) == [{"text": "Estou com problemas, tente mais tarde."}]
    await silent.close()
    await polite.close()
    assert "did not answer message" in caplog.text


async def test_a_slow_rasa_times_out(rasa: FakeRasa, caplog: pytest.LogCaptureFixture) -> None:
    rasa.delay = 2
    backend = RasaRestBackend(rasa.url, timeout=0.2, apology="Demorou demais.")
    assert await backend(bot_input()) == [{"text": "Demorou demais."}]
    await backend.close()
    assert "timed out" in caplog.text


async def test_rasa_not_running_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    backend = RasaRestBackend(f"http://127.0.0.1:{free_port()}")
    assert await backend(bot_input()) == []
    await backend.close()
    assert "did not answer message" in caplog.text


async def test_the_backend_keeps_its_connection_and_reopens_after_close(rasa: FakeRasa) -> None:
    backend = RasaRestBackend(rasa.url)
    await backend(bot_input())
    await backend(bot_input())
    await backend.close()
    assert await backend(bot_input()) != []  # usable again after close
    await backend.close()
    first, second, third = rasa.client_ports
    assert first == second  # one pooled connection
    assert third != first
