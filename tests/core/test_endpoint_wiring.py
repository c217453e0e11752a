"""What `WebhookEndpoint` builds from `WhatsAppConfig`: every setting reaches the part it is for."""

import asyncio

import pytest

from connectors.whatsapp.core.client import GraphClient, UntrustedMediaURLError
from connectors.whatsapp.core.config import WhatsAppConfig
from connectors.whatsapp.core.endpoint import WebhookEndpoint
from connectors.whatsapp.core.inbound import BotInput
from connectors.whatsapp.core.processing import READ_RECEIPT_WAIT_SECONDS
from connectors.whatsapp.core.signature import SIGNATURE_HEADER, sign
from connectors.whatsapp.core.webhook import WebhookRequest
from tests.conftest import ACCESS_TOKEN, APP_SECRET
from tests.support.graph_server import GraphServer, slow
from tests.support.settings import credentials
from tests.support.waiting import within
from tests.support.webhooks import encode, text_message


async def test_media_hosts_reach_the_endpoints_graph_client() -> None:
    config = WhatsAppConfig.from_mapping(
        credentials("http://127.0.0.1:9", media_hosts=["media.example"])
    )
    endpoint = WebhookEndpoint(config)
    try:
        # Refused before any request, naming the configured hosts instead of Meta's defaults.
        with pytest.raises(UntrustedMediaURLError, match=r"from media\.example or"):
            await endpoint.client.download_media("https://elsewhere.example/photo.jpg")
        with pytest.raises(UntrustedMediaURLError):
            await endpoint.client.download_media("https://lookaside.fbsbx.com/x?mid=1")
    finally:
        await endpoint.close()


async def test_a_read_receipt_that_hangs_holds_the_turn_back_two_seconds_at_most() -> None:
    """The endpoint's receipts are bounded by the Graph client (`within`), not by a timer of the
    pipeline's: one Meta never answers is given up after READ_RECEIPT_WAIT_SECONDS, retries
    included, and the turn goes on."""
    delivered: list[tuple[str, float]] = []
    async with GraphServer() as graph:
        graph.script(
            lambda request: isinstance(request.json, dict) and request.json.get("status") == "read",
            [slow(30)] * 10,
        )
        loop = asyncio.get_running_loop()

        async def deliver(bot_input: BotInput) -> None:
            delivered.append((bot_input.text, loop.time()))

        config = WhatsAppConfig.from_mapping(credentials(graph.base_url))
        endpoint = WebhookEndpoint(config, deliver)
        try:
            payload, _ = text_message("5511900000077", "oi")
            body = encode(payload)
            started = loop.time()
            request = WebhookRequest("POST", body, {SIGNATURE_HEADER: sign(body, APP_SECRET)})
            assert (await endpoint.receive(request)).status == 200
            await within(10, endpoint.join(), "join()")
        finally:
            await endpoint.close()
    assert [text for text, _ in delivered] == ["oi"]
    waited = delivered[0][1] - started
    assert READ_RECEIPT_WAIT_SECONDS - 0.1 <= waited < READ_RECEIPT_WAIT_SECONDS + 1
    assert len([r for r in graph.requests if r.json.get("status") == "read"]) == 1


async def test_a_client_of_another_class_keeps_the_pipelines_two_second_limit() -> None:
    """A subclass whose `mark_as_read` takes no `within` (written before it existed) is given
    neither `within` nor an unbounded wait: the pipeline's own timer stands in."""
    calls: list[str] = []

    class OldClient(GraphClient):
        async def mark_as_read(  # type: ignore[override]
            self, phone_number_id: str, message_id: str, typing_indicator: bool = False
        ) -> None:
            calls.append(message_id)
            await asyncio.sleep(30)  # Meta never answers

    delivered: list[str] = []

    async def deliver(bot_input: BotInput) -> None:
        delivered.append(bot_input.text)

    config = WhatsAppConfig.from_mapping(credentials("http://127.0.0.1:9"))
    client = OldClient(access_token=ACCESS_TOKEN, base_url="http://127.0.0.1:9")
    endpoint = WebhookEndpoint(config, deliver, client=client)
    loop = asyncio.get_running_loop()
    try:
        payload, _ = text_message("5511900000078", "oi")
        body = encode(payload)
        request = WebhookRequest("POST", body, {SIGNATURE_HEADER: sign(body, APP_SECRET)})
        started = loop.time()
        assert (await endpoint.receive(request)).status == 200
        await within(10, endpoint.join(), "join()")
        waited = loop.time() - started
    finally:
        await endpoint.close()
    assert delivered == ["oi"] and len(calls) == 1
    assert READ_RECEIPT_WAIT_SECONDS - 0.1 <= waited < READ_RECEIPT_WAIT_SECONDS + 1
