"""WhatsAppMetricsView on the example project's urls, through Django's test client."""

import os
from collections.abc import Iterator

import pytest

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "examples.django_project.settings")

import django

django.setup()

from django.test import Client, override_settings  # noqa: E402
from django.test.utils import setup_test_environment, teardown_test_environment  # noqa: E402

from tests.support.graph_server import GraphServer  # noqa: E402
from tests.support.sync_service import (  # noqa: E402
    Recorder,
    make_service,
    signature_headers,
    wait_for_messages,
)
from tests.support.webhooks import encode, text_message  # noqa: E402

METRICS = "/whatsapp/metrics"


@pytest.fixture(scope="module", autouse=True)
def test_environment() -> Iterator[None]:
    setup_test_environment()
    yield
    teardown_test_environment()


def test_off_by_default(graph: GraphServer, recorder: Recorder) -> None:
    with make_service(graph, recorder) as service, override_settings(WHATSAPP_SERVICE=service):
        assert Client().get(METRICS).status_code == 404


def test_metrics_with_a_token(graph: GraphServer, recorder: Recorder) -> None:
    with (
        make_service(graph, recorder, metrics=True, metrics_token="t0ken") as service,
        override_settings(WHATSAPP_SERVICE=service),
    ):
        client = Client()
        assert client.get(METRICS).status_code == 401
        assert client.get(METRICS, HTTP_AUTHORIZATION="Bearer no").status_code == 403
        body = encode(text_message("5511900000902", "oi")[0])
        signature = signature_headers(body)["X-Hub-Signature-256"]
        answer = client.post(
            "/whatsapp/webhook",
            data=body,
            content_type="application/json",
            headers={"X-Hub-Signature-256": signature},
        )
        assert answer.status_code == 200
        wait_for_messages(graph, "5511900000902", 1)
        response = client.get(METRICS, HTTP_AUTHORIZATION="Bearer t0ken")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    text = response.content.decode()
    assert 'whatsapp_messages_total{outcome="delivered"} 1.0' in text
    assert 'whatsapp_webhooks_total{status="200"} 1.0' in text
