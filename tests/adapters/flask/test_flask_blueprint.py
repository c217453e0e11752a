"""The Flask adapter and server.py, through Flask's test client, with a real Graph API server."""

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from connectors.whatsapp.adapters.flask_blueprint import (
    EXTENSION_KEY,
    create_app,
    never_500,
    whatsapp_blueprint,
)
from connectors.whatsapp.core.config import ConfigError
from connectors.whatsapp.sync.service import WebhookService
from tests.conftest import VERIFY_TOKEN
from tests.support.graph_server import GraphServer
from tests.support.processes import PROJECT_ROOT, child_env
from tests.support.settings import whatsapp_env
from tests.support.sync_service import (
    Recorder,
    messages_to,
    signature_headers,
    wait_for_messages,
)
from tests.support.webhooks import encode, envelope, text_message


@pytest.fixture
def app(service: WebhookService) -> Flask:
    return create_app(service)


@pytest.fixture
def client(app: Flask) -> Iterator[FlaskClient]:
    with app.test_client() as test_client:
        yield test_client


def post_signed(client: FlaskClient, body: bytes, path: str = "/webhook") -> tuple[int, str]:
    response = client.post(path, data=body, headers=signature_headers(body))
    return response.status_code, response.get_data(as_text=True)


def test_verification_echoes_the_challenge_as_plain_text(client: FlaskClient) -> None:
    query = {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "8271"}
    response = client.get("/webhook", query_string=query)
    assert (response.status_code, response.get_data(as_text=True)) == (200, "8271")
    assert response.mimetype == "text/plain"
    wrong = client.get("/webhook", query_string={**query, "hub.verify_token": "guess"})
    assert wrong.status_code == 403
    no_challenge = client.get(
        "/webhook", query_string={"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN}
    )
    # Meta always sends a challenge; without one, the (empty) challenge is echoed all the same.
    assert (no_challenge.status_code, no_challenge.get_data(as_text=True)) == (200, "")


def test_a_signed_message_is_acknowledged_and_answered(
    client: FlaskClient, graph: GraphServer, recorder: Recorder
) -> None:
    status, text = post_signed(client, encode(text_message("5511900000301", "olá")[0]))
    assert (status, text) == (200, "EVENT_RECEIVED")
    [answer] = wait_for_messages(graph, "5511900000301", 1)
    assert answer["text"]["body"] == "eco: olá"
    assert recorder.inputs[0].metadata["whatsapp"]["profile_name"] == "Ana"


def test_the_200_does_not_wait_for_the_backend(
    client: FlaskClient, graph: GraphServer, recorder: Recorder
) -> None:
    recorder.hold()
    started = time.monotonic()
    status, _ = post_signed(client, encode(text_message("5511900000302", "espera")[0]))
    assert status == 200
    assert time.monotonic() - started < 0.5
    assert recorder.entered.wait(5)
    assert messages_to(graph, "5511900000302") == []
    recorder.release()
    wait_for_messages(graph, "5511900000302", 1)


@pytest.mark.parametrize(
    ("headers", "body", "status"),
    [
        ({}, None, 401),
        ({"X-Hub-Signature-256": "sha256=" + "ab" * 32}, None, 403),
        ({"X-Hub-Signature-256": "md5=abc"}, None, 403),
        (None, b"<xml/>", 400),
        (None, b"[1, 2, 3]", 400),
    ],
)
def test_refused_webhooks_get_a_4xx_and_nothing_is_processed(
    client: FlaskClient,
    service: WebhookService,
    graph: GraphServer,
    recorder: Recorder,
    headers: dict[str, str] | None,
    body: bytes | None,
    status: int,
) -> None:
    raw = body if body is not None else encode(text_message("5511900000303", "oi")[0])
    sent_headers = signature_headers(raw) if headers is None else headers
    response = client.post("/webhook", data=raw, headers=sent_headers)
    assert response.status_code == status
    assert service.join(5)
    assert recorder.inputs == []
    assert graph.requests == []


def test_a_body_over_3_mb_gets_413(client: FlaskClient, recorder: Recorder) -> None:
    body = b'{"object": "whatsapp_business_account", "pad": "' + b"x" * (3 * 1024 * 1024) + b'"}'
    status, _ = post_signed(client, body)
    assert status == 413
    assert recorder.inputs == []


def test_redeliveries_are_processed_once(
    client: FlaskClient, service: WebhookService, graph: GraphServer, recorder: Recorder
) -> None:
    body = encode(text_message("5511900000304", "de novo")[0])
    for _ in range(3):
        assert post_signed(client, body)[0] == 200
    assert service.join(10)
    assert recorder.texts == ["de novo"]
    assert len(messages_to(graph, "5511900000304")) == 1


def test_statuses_are_kept_away_from_the_backend(
    client: FlaskClient, service: WebhookService, recorder: Recorder
) -> None:
    status = {
        "id": "wamid.OUT9",
        "status": "read",
        "timestamp": "1732590000",
        "recipient_id": "5511900000305",
    }
    assert post_signed(client, encode(envelope(statuses=[status])))[0] == 200
    assert service.join(5)
    assert recorder.inputs == []
    assert client.get("/health").get_json()["statuses"] == 1


def test_health_answers_json_and_503_once_closed(
    client: FlaskClient, service: WebhookService
) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.get_json()["status"] == "ok"
    service.close()
    assert client.get("/health").status_code == 503
    status, _ = post_signed(client, encode(text_message("5511900000306", "tarde")[0]))
    assert status == 503


def test_unexpected_errors_answer_503_and_framework_errors_keep_their_4xx(
    app: Flask, client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    @never_500
    def broken() -> str:
        raise RuntimeError("bug in a view")

    app.add_url_rule("/broken", view_func=broken)
    response = client.get("/broken")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "10"
    assert "bug in a view" in caplog.text
    assert client.put("/webhook").status_code == 405
    assert client.get("/nowhere").status_code == 404


def test_the_blueprint_mounts_under_any_prefix(service: WebhookService) -> None:
    app = Flask("host_app")
    app.register_blueprint(whatsapp_blueprint(service, url_prefix="/whatsapp"))
    with app.test_client() as client:
        status, _ = post_signed(client, encode(envelope([])), path="/whatsapp/webhook")
        assert status == 200
        assert client.get("/whatsapp/health").status_code == 200
        assert client.post("/webhook").status_code == 404


def test_create_app_reads_the_environment(graph: GraphServer) -> None:
    env = whatsapp_env(graph.base_url, WHATSAPP_MARK_AS_READ="false")
    app = create_app(environ=env)
    service = app.extensions[EXTENSION_KEY]
    try:
        with app.test_client() as client:
            assert post_signed(client, encode(text_message("5511900000307", "eco")[0]))[0] == 200
            [answer] = wait_for_messages(graph, "5511900000307", 1)
        assert answer["text"]["body"] == "eco"  # the echo backend, by default
        assert [r.json.get("status") for r in graph.requests] == [None]  # no read receipt
    finally:
        service.close()
    with pytest.raises(ConfigError, match="WHATSAPP_VERIFY_TOKEN"):
        create_app(environ={k: v for k, v in env.items() if k != "WHATSAPP_VERIFY_TOKEN"})


def test_server_py_honours_a_dotenv_file(tmp_path: Path) -> None:
    dotenv = whatsapp_env(
        WHATSAPP_PHONE_NUMBER_ID="123123123",
        WHATSAPP_BACKEND="rasa",
        WHATSAPP_RASA_URL="http://127.0.0.1:5099",
    )
    (tmp_path / ".env").write_text("".join(f"{name}={value}\n" for name, value in dotenv.items()))
    env = {k: v for k, v in child_env().items() if not k.startswith("WHATSAPP_")}
    env["WHATSAPP_PHONE_NUMBER_ID"] = "456456456"  # the environment wins over .env
    probe = (
        "import json, server; s = server.app.extensions['whatsapp']; "
        "print(json.dumps([s.config.phone_number_id, s.health().body['backend'], "
        "s.backend.webhook_url]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(PROJECT_ROOT)},
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode()
    assert json.loads(result.stdout) == [
        "456456456",
        "rasa",
        "http://127.0.0.1:5099/webhooks/rest/webhook",
    ]
