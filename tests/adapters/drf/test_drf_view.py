"""The DRF views, through Django's test client on the example project, with a real Graph API
server; and the example project itself, served by `manage.py runserver`."""

import os
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "examples.django_project.settings")

import django

django.setup()

from django.test import Client, override_settings  # noqa: E402
from django.test.utils import (  # noqa: E402
    setup_test_environment,
    teardown_test_environment,
)

from connectors.whatsapp.adapters.drf_view import configured_service  # noqa: E402
from connectors.whatsapp.core.config import ConfigError  # noqa: E402
from connectors.whatsapp.sync.service import WebhookService  # noqa: E402
from tests.conftest import VERIFY_TOKEN  # noqa: E402
from tests.support.graph_server import GraphServer  # noqa: E402
from tests.support.processes import PROJECT_ROOT, free_port, running  # noqa: E402
from tests.support.settings import whatsapp_env  # noqa: E402
from tests.support.sync_service import (  # noqa: E402
    Recorder,
    messages_to,
    signature_headers,
    wait_for_messages,
)
from tests.support.webhooks import encode, envelope, text_message  # noqa: E402

WEBHOOK = "/whatsapp/webhook"
HEALTH = "/whatsapp/health"

_SERVICES: dict[str, WebhookService] = {}


def make_registered_service() -> WebhookService:
    """For `WHATSAPP_SERVICE` given as the import path of a factory."""
    return _SERVICES["factory"]


@pytest.fixture(scope="module", autouse=True)
def test_environment() -> Iterator[None]:
    setup_test_environment()  # lets the test client's "testserver" host in
    yield
    teardown_test_environment()


@pytest.fixture
def client(service: WebhookService) -> Iterator[Client]:
    with override_settings(WHATSAPP_SERVICE=service):
        yield Client(enforce_csrf_checks=True)


def post_signed(client: Client, body: bytes, content_type: str = "application/json") -> int:
    signature = signature_headers(body)["X-Hub-Signature-256"]
    response = client.post(
        WEBHOOK, data=body, content_type=content_type, headers={"X-Hub-Signature-256": signature}
    )
    return response.status_code


def test_verification_echoes_the_challenge(client: Client) -> None:
    query = {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "5150"}
    response = client.get(WEBHOOK, query)
    assert (response.status_code, response.content) == (200, b"5150")
    assert response["Content-Type"].startswith("text/plain")
    assert client.get(WEBHOOK, {**query, "hub.verify_token": "x"}).status_code == 403


def test_a_signed_message_is_answered_without_a_csrf_token(
    client: Client, graph: GraphServer, recorder: Recorder
) -> None:
    assert post_signed(client, encode(text_message("5511900000401", "oi")[0])) == 200
    [answer] = wait_for_messages(graph, "5511900000401", 1)
    assert answer["text"]["body"] == "eco: oi"


def test_the_body_is_never_parsed_by_drf(client: Client, graph: GraphServer) -> None:
    # With no parsers, touching request.data would answer 415 for any content type.
    for content_type in ("text/plain", "application/x-www-form-urlencoded"):
        body = encode(text_message("5511900000402", content_type)[0])
        assert post_signed(client, body, content_type) == 200
    wait_for_messages(graph, "5511900000402", 2)


def test_any_accept_header_is_fine(client: Client) -> None:
    body = encode(envelope([]))
    response = client.post(
        WEBHOOK,
        data=body,
        content_type="application/json",
        headers={**signature_headers(body), "Accept": "image/png"},
    )
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("signature", "body", "status"),
    [
        (None, None, 401),
        ("sha256=" + "0" * 64, None, 403),
        ("sign", b"not json", 400),
    ],
)
def test_refused_webhooks(
    client: Client,
    service: WebhookService,
    graph: GraphServer,
    recorder: Recorder,
    signature: str | None,
    body: bytes | None,
    status: int,
) -> None:
    raw = body if body is not None else encode(text_message("5511900000403", "oi")[0])
    headers = {}
    if signature == "sign":
        headers = {"X-Hub-Signature-256": signature_headers(raw)["X-Hub-Signature-256"]}
    elif signature is not None:
        headers = {"X-Hub-Signature-256": signature}
    response = client.post(WEBHOOK, data=raw, content_type="application/json", headers=headers)
    assert response.status_code == status
    assert service.join(5)
    assert recorder.inputs == []
    assert graph.requests == []


def test_bodies_over_the_limits_get_413(client: Client, recorder: Recorder) -> None:
    big = b'{"object": "whatsapp_business_account", "pad": "' + b"x" * (3 * 1024 * 1024) + b'"}'
    assert post_signed(client, big) == 413
    medium = encode(text_message("5511900000404", "x" * 2000)[0])
    with override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=1000):
        assert post_signed(client, medium) == 413
    assert recorder.inputs == []


def test_redeliveries_once_and_statuses_never_reach_the_backend(
    client: Client, service: WebhookService, graph: GraphServer, recorder: Recorder
) -> None:
    body = encode(text_message("5511900000405", "repetida")[0])
    status = {"id": "wamid.S", "status": "delivered", "timestamp": "1", "recipient_id": "55"}
    for _ in range(3):
        assert post_signed(client, body) == 200
    assert post_signed(client, encode(envelope(statuses=[status]))) == 200
    assert service.join(10)
    assert recorder.texts == ["repetida"]
    assert len(messages_to(graph, "5511900000405")) == 1
    health = client.get(HEALTH).json()
    assert (health["duplicates"], health["statuses"]) == (2, 1)


def test_health_is_503_once_closed_and_webhooks_are_redelivered_later(
    client: Client, service: WebhookService
) -> None:
    assert client.get(HEALTH).status_code == 200
    service.close()
    assert client.get(HEALTH).status_code == 503
    assert post_signed(client, encode(text_message("5511900000406", "tarde")[0])) == 503


def test_wrong_methods_are_405(client: Client) -> None:
    assert client.put(WEBHOOK).status_code == 405
    assert client.post(HEALTH).status_code == 405


def test_missing_configuration_is_a_logged_503_not_a_500(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    for name in list(os.environ):
        if name.startswith("WHATSAPP_"):
            monkeypatch.delenv(name)
    with override_settings(WHATSAPP_SERVICE=None):
        response = Client().get(WEBHOOK, {"hub.mode": "subscribe"})
    assert response.status_code == 503
    assert "WHATSAPP_ACCESS_TOKEN" in caplog.text


def test_the_service_comes_from_the_environment_once(
    monkeypatch: pytest.MonkeyPatch, graph: GraphServer
) -> None:
    for name, value in whatsapp_env(graph.base_url, WHATSAPP_BACKEND="echo").items():
        monkeypatch.setenv(name, value)
    with override_settings(WHATSAPP_SERVICE=None):
        first = configured_service()
        try:
            assert configured_service() is first
            assert first.config.api_base_url == graph.base_url
            assert post_signed(Client(), encode(text_message("5511900000407", "env")[0])) == 200
            [answer] = wait_for_messages(graph, "5511900000407", 1)
            assert answer["text"]["body"] == "env"
        finally:
            first.close()
        replacement = configured_service()  # a closed one is replaced
        assert replacement is not first
        replacement.close()


def test_the_setting_may_name_a_factory(service: WebhookService) -> None:
    _SERVICES["factory"] = service
    path = "tests.adapters.drf.test_drf_view:make_registered_service"
    with override_settings(WHATSAPP_SERVICE=path):
        assert configured_service() is service
    with override_settings(WHATSAPP_SERVICE=42), pytest.raises(ConfigError):
        configured_service()


def test_the_example_project_runs_with_manage_py(graph: GraphServer) -> None:
    port = free_port()
    env = whatsapp_env(
        graph.base_url,
        WHATSAPP_BACKEND="echo",
        WHATSAPP_DEDUP="memory",
        WHATSAPP_MARK_AS_READ="true",
        WHATSAPP_VALIDATE_SIGNATURE="true",
        DJANGO_SETTINGS_MODULE="examples.django_project.settings",
    )
    manage = str(PROJECT_ROOT / "examples" / "django_project" / "manage.py")
    args = [sys.executable, manage, "runserver", "--noreload", f"127.0.0.1:{port}"]
    base = f"http://127.0.0.1:{port}"
    with running(args, base + HEALTH, env=env, timeout=60):
        body = encode(text_message("5511900000408", "do django")[0])
        request = urllib.request.Request(
            base + WEBHOOK, data=body, headers=signature_headers(body), method="POST"
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200
        [answer] = wait_for_messages(graph, "5511900000408", 1)
        assert answer["text"]["body"] == "do django"
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(
                urllib.request.Request(base + WEBHOOK, data=body, method="POST"), timeout=10
            )
        assert refused.value.code == 401
