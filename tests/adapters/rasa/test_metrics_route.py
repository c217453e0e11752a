"""GET /webhooks/whatsapp/metrics in Rasa's own Sanic app (no model needed: no message is sent)."""

from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sanic import Sanic

from connectors.whatsapp.adapters.rasa_channel import WhatsAppInput
from connectors.whatsapp.core.config import WhatsAppConfig
from tests.support.http import client_session
from tests.support.sanic_server import serve
from tests.support.settings import credentials
from tests.support.webhooks import encode, envelope, post_webhook

Sanic.test_mode = True
METRICS = "/webhooks/whatsapp/metrics"


async def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str, str]:
    async with client_session() as http, http.get(url, headers=headers) as response:
        return response.status, response.headers.get("Content-Type", ""), await response.text()


async def served(**overrides: Any) -> Any:
    from rasa.core.run import configure_app

    channel = WhatsAppInput(WhatsAppConfig.from_mapping({**credentials(), **overrides}))
    return serve(configure_app([channel], enable_api=False))


async def test_off_unless_configured() -> None:
    async with await served() as url:
        status, _, _ = await get(url + METRICS)
    assert status == 404


async def test_prometheus_text_with_a_bearer_token() -> None:
    async with await served(metrics=True, metrics_token="t0ken") as url:
        assert (await get(url + METRICS))[0] == 401
        assert (await get(url + METRICS, {"Authorization": "Bearer nope"}))[0] == 403
        async with client_session() as http:
            body = encode(envelope(statuses=[]))
            assert (await post_webhook(http, url + "/webhooks/whatsapp/webhook", body))[0] == 200
        status, content_type, text = await get(url + METRICS, {"Authorization": "Bearer t0ken"})
    assert status == 200
    assert content_type.startswith("text/plain; version=0.0.4")
    names = {family.name for family in text_string_to_metric_families(text)}
    assert {"whatsapp_webhooks", "whatsapp_messages", "whatsapp_graph_requests"} <= names
    assert 'whatsapp_webhooks_total{status="200"} 1.0' in text


@pytest.mark.parametrize("path", ["/webhooks/whatsapp/", "/webhooks/whatsapp/webhook"])
async def test_the_other_routes_are_unchanged(path: str) -> None:
    async with await served(metrics=True) as url:
        status, _, _ = await get(url + path)
    assert status in (200, 403)  # health; verification without a token
