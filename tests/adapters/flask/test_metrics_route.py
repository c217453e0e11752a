"""GET /metrics on the Flask blueprint, over a real service and a real Graph API server."""

from collections.abc import Iterator

import pytest
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from connectors.whatsapp.adapters.flask_blueprint import create_app
from tests.support.graph_server import GraphServer
from tests.support.sync_service import Recorder, make_service, signature_headers, wait_for_messages
from tests.support.webhooks import encode, text_message


@pytest.fixture
def metered(graph: GraphServer, recorder: Recorder) -> Iterator[FlaskClient]:
    service = make_service(graph, recorder, metrics=True, metrics_token="t0ken")
    with service, create_app(service).test_client() as client:
        yield client


def test_off_by_default(service: object, graph: GraphServer) -> None:
    from connectors.whatsapp.sync.service import WebhookService

    assert isinstance(service, WebhookService)
    with create_app(service).test_client() as client:
        assert client.get("/metrics").status_code == 404


def test_a_message_shows_in_the_scrape(metered: FlaskClient, graph: GraphServer) -> None:
    assert metered.get("/metrics").status_code == 401
    assert metered.get("/metrics", headers={"Authorization": "Bearer x"}).status_code == 403
    body = encode(text_message("5511900000901", "oi")[0])
    assert metered.post("/webhook", data=body, headers=signature_headers(body)).status_code == 200
    wait_for_messages(graph, "5511900000901", 1)
    response = metered.get("/metrics", headers={"Authorization": "Bearer t0ken"})
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain; version=0.0.4")
    values = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.get_data(as_text=True))
        for sample in family.samples
    }
    assert values[("whatsapp_webhooks_total", (("status", "200"),))] == 1
    assert values[("whatsapp_messages_total", (("outcome", "accepted"),))] == 1
    sent = (("kind", "message"), ("outcome", "ok"))
    assert values[("whatsapp_graph_requests_total", sent)] == 1
