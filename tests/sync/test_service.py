"""`WebhookService`, framework-free: the guarantees every sync adapter inherits."""

import logging
import subprocess
import sys
import textwrap
import threading
import time
from typing import Any

import pytest

from connectors.whatsapp.core.config import ConfigError, WhatsAppConfig
from connectors.whatsapp.core.inbound import BotInput
from connectors.whatsapp.core.webhook import WebhookRequest
from connectors.whatsapp.sync.backends import EchoBackend, RasaRestBackend
from connectors.whatsapp.sync.service import WebhookService
from tests.conftest import ACCESS_TOKEN, APP_SECRET, PHONE_NUMBER_ID, VERIFY_TOKEN
from tests.support.graph_server import GraphServer, meta_error
from tests.support.processes import PROJECT_ROOT, child_env
from tests.support.settings import whatsapp_env
from tests.support.sync_service import (
    Recorder,
    make_config,
    make_service,
    messages_to,
    signature_headers,
    wait_for_messages,
)
from tests.support.webhooks import encode, envelope, text_message


def post(body: bytes, headers: dict[str, str] | None = None) -> WebhookRequest:
    return WebhookRequest("POST", body, signature_headers(body) if headers is None else headers)


def text_post(sender: str, text: str, **kwargs: Any) -> WebhookRequest:
    return post(encode(text_message(sender, text, **kwargs)[0]))


def test_a_text_is_answered_by_the_backend_after_a_read_receipt(
    graph: GraphServer, service: WebhookService
) -> None:
    answer = service.receive(text_post("5511900000101", "oi"))
    assert (answer.status, answer.body) == (200, "EVENT_RECEIVED")
    [sent] = wait_for_messages(graph, "5511900000101", 1)
    assert sent["text"]["body"] == "eco: oi"
    receipt, reply = graph.requests
    assert receipt.json["status"] == "read"
    assert receipt.json["typing_indicator"] == {"type": "text"}
    assert reply.path == f"/v23.0/{PHONE_NUMBER_ID}/messages"
    assert reply.bearer == ACCESS_TOKEN


def test_the_answer_goes_out_from_the_number_that_received_the_message(
    graph: GraphServer, service: WebhookService
) -> None:
    payload, _ = text_message("5511900000102", "oi")
    payload["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"] = "999000111"
    assert service.receive(post(encode(payload))).status == 200
    wait_for_messages(graph, "5511900000102", 1)
    assert {request.path for request in graph.requests} == {"/v23.0/999000111/messages"}


def test_the_webhook_is_answered_before_the_backend_finishes(
    graph: GraphServer, service: WebhookService, recorder: Recorder
) -> None:
    recorder.hold()
    started = time.monotonic()
    answer = service.receive(text_post("5511900000103", "devagar"))
    assert answer.status == 200
    assert time.monotonic() - started < 0.5
    assert recorder.entered.wait(5)
    assert service.health().body["pending"] == 1
    assert messages_to(graph, "5511900000103") == []
    recorder.release()
    wait_for_messages(graph, "5511900000103", 1)


def test_redeliveries_from_several_threads_reach_the_backend_once(
    graph: GraphServer, service: WebhookService, recorder: Recorder
) -> None:
    request = text_post("5511900000104", "uma vez")
    threads = [threading.Thread(target=service.receive, args=(request,)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert service.join(10)
    assert recorder.texts == ["uma vez"]
    assert len(messages_to(graph, "5511900000104")) == 1
    assert service.health().body["duplicates"] == 7


def test_statuses_never_reach_the_backend(service: WebhookService, recorder: Recorder) -> None:
    failed = {
        "id": "wamid.OUT1",
        "status": "failed",
        "timestamp": "1732590000",
        "recipient_id": "5511900000105",
        "errors": [{"code": 131047, "title": "Re-engagement message"}],
    }
    delivered = {**failed, "id": "wamid.OUT2", "status": "delivered", "errors": []}
    assert service.receive(post(encode(envelope(statuses=[failed, delivered])))).status == 200
    assert service.join(10)
    health = service.health().body
    assert recorder.inputs == []
    assert (health["statuses"], health["failed_statuses"], health["delivered"]) == (2, 1, 0)


@pytest.mark.parametrize(
    ("headers", "body", "status"),
    [
        ({}, None, 401),
        ({"X-Hub-Signature-256": "sha256=" + "0" * 64}, None, 403),
        (None, b"not json", 400),
        (None, b"{" + b" " * (3 * 1024 * 1024) + b"}", 413),
    ],
)
def test_refused_webhooks_are_not_processed(
    graph: GraphServer,
    service: WebhookService,
    recorder: Recorder,
    headers: dict[str, str] | None,
    body: bytes | None,
    status: int,
) -> None:
    raw = body if body is not None else encode(text_message("5511900000106", "oi")[0])
    assert service.receive(post(raw, headers)).status == status
    assert service.join(5)
    assert recorder.inputs == []
    assert graph.requests == []


def test_a_senders_messages_keep_their_order_while_others_are_served(
    graph: GraphServer, service: WebhookService, recorder: Recorder
) -> None:
    recorder.hold()
    texts = [f"mensagem {i}" for i in range(5)]
    for text in texts:
        assert service.receive(text_post("5511900000107", text)).status == 200
    assert recorder.entered.wait(5)
    # The first sender's backend call is blocked in its worker thread; another sender is not.
    other = Recorder(prefix="")
    with make_service(graph, other) as second:
        assert second.receive(text_post("5511900000108", "outro")).status == 200
        wait_for_messages(graph, "5511900000108", 1)
    recorder.release()
    assert service.join(10)
    assert recorder.texts == texts
    assert [m["text"]["body"] for m in messages_to(graph, "5511900000107")] == [
        "eco: " + text for text in texts
    ]
    assert threading.get_ident() not in recorder.threads  # sync backends run in worker threads


def test_two_senders_on_one_service_are_served_concurrently(graph: GraphServer) -> None:
    release_first = threading.Event()

    def backend(bot_input: BotInput) -> list[dict[str, Any]]:
        if bot_input.sender_id == "5511900000109":
            release_first.wait(10)
        return [{"text": "ok"}]

    with make_service(graph, backend) as service:
        service.receive(text_post("5511900000109", "lento"))
        service.receive(text_post("5511900000110", "rápido"))
        wait_for_messages(graph, "5511900000110", 1)
        assert messages_to(graph, "5511900000109") == []
        release_first.set()
        wait_for_messages(graph, "5511900000109", 1)


def test_answers_are_rendered_like_rasa_messages(graph: GraphServer) -> None:
    async def backend(bot_input: BotInput) -> list[dict[str, Any]]:
        buttons = [{"title": "Sim", "payload": "/sim"}, {"title": "Não", "payload": "/nao"}]
        return [{"text": "Confirma?", "buttons": buttons}, {"image": "https://ex.com/a.png"}]

    with make_service(graph, backend) as service:
        service.receive(text_post("5511900000111", "oi"))
        question, image = wait_for_messages(graph, "5511900000111", 2)
    assert question["type"] == "interactive"
    assert question["interactive"]["type"] == "button"
    assert [b["reply"]["id"] for b in question["interactive"]["action"]["buttons"]] == [
        "/sim",
        "/nao",
    ]
    assert image["type"] == "image"
    assert image["image"]["link"] == "https://ex.com/a.png"


def test_a_send_failure_is_logged_with_its_code_and_the_next_answer_still_goes(
    graph: GraphServer, caplog: pytest.LogCaptureFixture
) -> None:
    def backend(bot_input: BotInput) -> list[dict[str, Any]]:
        return [{"text": "primeira"}, {"text": "segunda"}]

    graph.script("/messages", [meta_error(131047, message="Re-engagement message")])
    with make_service(graph, backend, mark_as_read=False) as service:
        service.receive(text_post("5511900000112", "oi"))
        assert service.join(10)
        health = service.health().body
    assert [m["text"]["body"] for m in graph.sent_messages] == ["primeira", "segunda"]
    assert (health["send_failures"], health["answers_sent"]) == (1, 1)
    [failure] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "131047" in failure.getMessage()
    assert "5511900000112" in failure.getMessage()


def test_a_failing_backend_is_logged_and_the_next_message_is_answered(
    graph: GraphServer, caplog: pytest.LogCaptureFixture
) -> None:
    def backend(bot_input: BotInput) -> list[dict[str, Any]]:
        if bot_input.text == "quebra":
            raise RuntimeError("backend bug")
        return [{"text": "ok"}]

    with make_service(graph, backend) as service:
        service.receive(text_post("5511900000113", "quebra"))
        service.receive(text_post("5511900000113", "depois"))
        wait_for_messages(graph, "5511900000113", 1)
        assert service.health().body["backend_failures"] == 1
    assert "backend bug" in caplog.text


def test_close_finishes_accepted_messages_then_refuses_with_503(
    graph: GraphServer, recorder: Recorder
) -> None:
    service = make_service(graph, recorder)
    recorder.hold()
    assert service.receive(text_post("5511900000114", "antes de parar")).status == 200
    assert recorder.entered.wait(5)
    threading.Timer(0.3, recorder.release).start()
    assert service.close() is True
    assert [m["text"]["body"] for m in messages_to(graph, "5511900000114")] == [
        "eco: antes de parar"
    ]
    late = service.receive(text_post("5511900000114", "tarde"))
    assert late.status == 503  # Meta redelivers it to a process that is running
    assert service.health().body["status"] == "closed"
    assert service.receive(post(b"{}", {})).status == 401  # still checked first
    assert service.close() is True  # idempotent


def test_close_gives_up_after_its_timeout(graph: GraphServer, recorder: Recorder) -> None:
    service = make_service(graph, recorder)
    recorder.hold()
    service.receive(text_post("5511900000115", "preso"))
    assert recorder.entered.wait(5)
    started = time.monotonic()
    assert service.close(timeout=0.3) is False
    assert time.monotonic() - started < 3


def test_verification(service: WebhookService) -> None:
    query = {
        "hub.mode": "subscribe",
        "hub.verify_token": VERIFY_TOKEN,
        "hub.challenge": "1158201444",
    }
    assert (service.verify(query).status, service.verify(query).body) == (200, "1158201444")
    assert service.verify({**query, "hub.verify_token": "wrong"}).status == 403


def test_health_reports_the_backend_and_counters(service: WebhookService) -> None:
    health = service.health().body
    assert health["status"] == "ok"
    assert health["backend"] == "tests.support.sync_service:Recorder"
    assert health["pending"] == 0
    assert health["accepted"] == 0


def test_accepted_messages_are_answered_when_the_process_exits(
    graph: GraphServer, tmp_path: Any
) -> None:
    """No close() call: the exit hook drains, and a sync backend can still run its thread."""
    script = tmp_path / "app.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import sys, time
            from connectors.whatsapp.core.config import WhatsAppConfig
            from connectors.whatsapp.sync.service import WebhookService
            from connectors.whatsapp.core.webhook import WebhookRequest
            from connectors.whatsapp.core.signature import sign

            def slow_backend(bot_input):
                time.sleep(0.5)
                return [{{"text": "respondido na saída"}}]

            config = WhatsAppConfig(
                access_token={ACCESS_TOKEN!r}, phone_number_id={PHONE_NUMBER_ID!r},
                verify_token="v", app_secret={APP_SECRET!r}, api_base_url={graph.base_url!r},
                mark_as_read=False,
            )
            service = WebhookService(config, slow_backend)
            body = sys.stdin.buffer.read()
            answer = service.receive(
                WebhookRequest("POST", body, {{"X-Hub-Signature-256": sign(body, {APP_SECRET!r})}})
            )
            print(answer.status)
            """
        )
    )
    body = encode(text_message("5511900000116", "tchau")[0])
    result = subprocess.run(
        [sys.executable, str(script)],
        input=body,
        capture_output=True,
        env=child_env(),
        cwd=PROJECT_ROOT,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode().strip() == "200"
    assert [m["text"]["body"] for m in messages_to(graph, "5511900000116")] == [
        "respondido na saída"
    ]


def test_a_service_is_not_started_until_used(graph: GraphServer) -> None:
    before = {thread.name for thread in threading.enumerate()}
    service = make_service(graph)
    assert "whatsapp-service-loop" not in {t.name for t in threading.enumerate()} - before
    assert service.close() is True  # nothing to drain


def test_inconsistent_settings_are_refused(graph: GraphServer) -> None:
    with pytest.raises(ConfigError, match="app_secret"):
        WebhookService(make_config(graph, app_secret=None))
    with pytest.raises(ConfigError, match="unknown message kind"):
        WebhookService(make_config(graph, intents={"hologram": "x"}))
    with pytest.raises(ConfigError, match="status_hook"):
        WebhookService(make_config(graph, status_hook="no_such_module.hook"))
    unsigned = WebhookService(make_config(graph, app_secret=None, validate_signature=False))
    assert unsigned.receive(post(encode(envelope([])), {})).status == 200
    unsigned.close()


def test_from_env_names_what_is_missing_and_picks_the_backend() -> None:
    env = whatsapp_env()
    with pytest.raises(ConfigError, match="WHATSAPP_ACCESS_TOKEN"):
        WebhookService.from_env({k: v for k, v in env.items() if k != "WHATSAPP_ACCESS_TOKEN"})
    echo = WebhookService.from_env(env)
    assert isinstance(echo.backend, EchoBackend)
    assert isinstance(echo.config, WhatsAppConfig)
    rasa = WebhookService.from_env(
        {**env, "WHATSAPP_BACKEND": "rasa", "WHATSAPP_RASA_URL": "http://127.0.0.1:5999"}
    )
    assert isinstance(rasa.backend, RasaRestBackend)
    assert rasa.backend.webhook_url == "http://127.0.0.1:5999/webhooks/rest/webhook"
    echo.close()
    rasa.close()
