"""Prometheus metrics of a WebhookEndpoint: real webhooks in, a real Graph API server out."""

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from connectors.whatsapp.core.client import GraphClient
from connectors.whatsapp.core.config import ConfigError, WhatsAppConfig
from connectors.whatsapp.core.endpoint import WebhookEndpoint
from connectors.whatsapp.core.events import StatusUpdate
from connectors.whatsapp.core.inbound import BotInput
from connectors.whatsapp.core.metrics import CONTENT_TYPE, BoundedLabel
from connectors.whatsapp.core.retry import RetryPolicy
from connectors.whatsapp.core.signature import sign
from connectors.whatsapp.core.webhook import WebhookRequest
from tests.conftest import ACCESS_TOKEN, APP_SECRET, PHONE_NUMBER_ID, VERIFY_TOKEN
from tests.support.graph_server import GraphServer, meta_error
from tests.support.webhooks import encode, envelope, new_wamid, text_message, user_message

SENDER = "5511987650001"
FAST = RetryPolicy(base_delay=0.01, max_delay=0.02, max_total_seconds=1)


@pytest.fixture
async def graph() -> AsyncIterator[GraphServer]:
    async with GraphServer() as server:
        yield server


def config(graph: GraphServer, **overrides: Any) -> WhatsAppConfig:
    values: dict[str, Any] = {
        "access_token": ACCESS_TOKEN,
        "phone_number_id": PHONE_NUMBER_ID,
        "verify_token": VERIFY_TOKEN,
        "app_secret": APP_SECRET,
        "api_base_url": graph.base_url,
        "metrics": True,
    }
    values.update(overrides)
    return WhatsAppConfig.from_mapping(values)


async def echo_endpoint(graph: GraphServer, **overrides: Any) -> WebhookEndpoint:
    cfg = config(graph, **overrides)
    client = GraphClient(access_token=ACCESS_TOKEN, base_url=graph.base_url, retry=FAST)
    endpoint = WebhookEndpoint(cfg, client=client)

    async def deliver(bot_input: BotInput) -> None:
        await endpoint.outbound.send(bot_input.sender_id, {"text": "eco: " + bot_input.text})

    endpoint.bind(deliver)
    return endpoint


def post(payload: dict[str, Any], *, secret: str = APP_SECRET) -> WebhookRequest:
    body = encode(payload)
    return WebhookRequest("POST", body, {"X-Hub-Signature-256": sign(body, secret)})


def status(message_id: str, kind: str, code: int | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": message_id,
        "status": kind,
        "timestamp": "1732590000",
        "recipient_id": SENDER,
    }
    if code is not None:
        item["errors"] = [{"code": code, "title": "Message undeliverable"}]
    return item


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape, by name and sorted labels."""
    found: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


async def scrape(endpoint: WebhookEndpoint, headers: dict[str, str] | None = None) -> str:
    answer = await endpoint.metrics(WebhookRequest("GET", headers=headers or {}))
    assert answer.status == 200, answer.body
    assert answer.content_type == CONTENT_TYPE
    return answer.body


async def test_off_by_default_the_route_is_404(graph: GraphServer) -> None:
    endpoint = WebhookEndpoint(config(graph, metrics=False))
    answer = await endpoint.metrics(WebhookRequest("GET"))
    assert answer.status == 404
    assert endpoint.meter is None
    await endpoint.close()


async def test_a_conversation_counted_from_webhook_to_graph_api(graph: GraphServer) -> None:
    endpoint = await echo_endpoint(graph)
    sent = new_wamid()
    graph.script("/messages", [meta_error(131026)], method="POST")  # the first read receipt
    webhooks = [
        text_message(SENDER, "oi")[0],
        text_message(SENDER, "tudo bem?")[0],
        user_message(SENDER, "reaction", {"message_id": sent, "emoji": "👍"})[0],
        envelope(statuses=[status(sent, "delivered"), status(sent, "read")]),
        envelope(statuses=[status(sent, "failed", 131026)]),
        envelope(statuses=[status(sent, "failed", 131026)]),  # a redelivery
    ]
    answers = [await endpoint.receive(post(webhook)) for webhook in webhooks]
    answers.append(await endpoint.receive(post(webhooks[0], secret="wrong")))
    await endpoint.join()
    assert [answer.status for answer in answers] == [200] * 6 + [403]

    found = samples(await scrape(endpoint))
    assert found[("whatsapp_webhooks_total", (("status", "200"),))] == 6
    assert found[("whatsapp_webhooks_total", (("status", "403"),))] == 1
    assert found[("whatsapp_webhook_answer_seconds_count", ())] == 7
    assert found[("whatsapp_messages_total", (("outcome", "accepted"),))] == 3
    assert found[("whatsapp_messages_total", (("outcome", "delivered"),))] == 2
    assert found[("whatsapp_messages_total", (("outcome", "not_for_bot"),))] == 1
    assert found[("whatsapp_messages_total", (("outcome", "duplicate"),))] == 0
    assert found[("whatsapp_statuses_total", (("status", "delivered"),))] == 1
    assert found[("whatsapp_statuses_total", (("status", "read"),))] == 1
    assert found[("whatsapp_statuses_total", (("status", "failed"),))] == 2
    assert found[("whatsapp_failed_statuses_total", (("code", "131026"),))] == 1  # de-duplicated
    message_ok = (("kind", "message"), ("outcome", "ok"))
    assert found[("whatsapp_graph_requests_total", message_ok)] == 2
    read_failed = (("kind", "read"), ("outcome", "graph_error"))
    assert found[("whatsapp_graph_requests_total", read_failed)] == 1
    assert found[("whatsapp_graph_errors_total", (("code", "131026"),))] == 1
    assert found[("whatsapp_graph_request_seconds_count", (("kind", "message"),))] == 2
    assert found[("whatsapp_bot_turn_seconds_count", ())] == 2
    assert found[("whatsapp_queue_depth", ())] == 0
    await endpoint.close()


async def test_retries_are_counted_by_kind(graph: GraphServer) -> None:
    endpoint = await echo_endpoint(graph, mark_as_read=False)
    graph.script("/messages", [meta_error(131000, 500), meta_error(130429)], method="POST")
    await endpoint.receive(post(text_message(SENDER, "oi")[0]))
    await endpoint.join()
    found = samples(await scrape(endpoint))
    assert found[("whatsapp_graph_retries_total", (("kind", "message"),))] == 2
    assert found[("whatsapp_graph_errors_total", (("code", "131000"),))] == 1
    assert found[("whatsapp_graph_errors_total", (("code", "130429"),))] == 1
    assert found[("whatsapp_graph_requests_total", (("kind", "message"), ("outcome", "ok")))] == 1
    await endpoint.close()


async def test_the_time_pacing_held_sends_back_is_counted(graph: GraphServer) -> None:
    # 20 sends per second in bursts of a quarter second: the 6th to 14th answers wait 50 ms each.
    endpoint = await echo_endpoint(
        graph, mark_as_read=False, max_messages_per_second=20, pair_interval_seconds=0
    )
    for index in range(14):
        await endpoint.outbound.send(SENDER, {"text": f"resposta {index}"})
    found = samples(await scrape(endpoint))
    assert found[("whatsapp_pacing_wait_seconds_total", ())] > 0.05
    await endpoint.close()


async def test_no_phone_number_or_message_id_in_any_label(graph: GraphServer) -> None:
    endpoint = await echo_endpoint(graph)
    payload, wamid = text_message(SENDER, "oi")
    await endpoint.receive(post(payload))
    await endpoint.receive(post(envelope(statuses=[status(wamid, "failed", 131047)])))
    await endpoint.join()
    text = await scrape(endpoint)
    labels = [
        value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        for value in sample.labels.values()
    ]
    assert labels
    for forbidden in (SENDER, wamid, PHONE_NUMBER_ID, "eco"):
        assert not any(forbidden in value for value in labels), forbidden
    await endpoint.close()


async def test_the_status_hook_still_runs_when_metrics_are_on(graph: GraphServer) -> None:
    seen: list[StatusUpdate] = []

    async def hook(update: StatusUpdate) -> None:
        seen.append(update)

    cfg = config(graph)
    endpoint = WebhookEndpoint(cfg, lambda _: asyncio.sleep(0), status_hook=hook)
    await endpoint.receive(post(envelope(statuses=[status("wamid.X", "failed", 131049)])))
    await endpoint.join()
    assert [update.message_id for update in seen] == ["wamid.X"]
    found = samples(await scrape(endpoint))
    assert found[("whatsapp_failed_statuses_total", (("code", "131049"),))] == 1
    await endpoint.close()


async def test_a_bearer_token_guards_the_route(graph: GraphServer) -> None:
    endpoint = WebhookEndpoint(config(graph, metrics_token="s3cret"))
    request = WebhookRequest
    assert (await endpoint.metrics(request("GET"))).status == 401
    assert (await endpoint.metrics(request("GET", headers={"Authorization": ""}))).status == 401
    for wrong in ("Bearer nope", "Basic s3cret", "s3cret", "Bearer s3cret2"):
        answer = await endpoint.metrics(request("GET", headers={"Authorization": wrong}))
        assert answer.status == 403, wrong
    text = await scrape(endpoint, {"authorization": "bearer s3cret"})
    assert "whatsapp_webhooks_total" in text
    await endpoint.close()


async def test_two_endpoints_keep_their_own_numbers(graph: GraphServer) -> None:
    first, second = await echo_endpoint(graph), await echo_endpoint(graph)
    await first.receive(post(text_message(SENDER, "oi")[0]))
    await first.join()
    assert samples(await scrape(first))[("whatsapp_webhooks_total", (("status", "200"),))] == 1
    assert ("whatsapp_webhooks_total", (("status", "200"),)) not in samples(await scrape(second))
    await first.close()
    await second.close()


def test_meta_codes_are_bounded() -> None:
    label = BoundedLabel(limit=3)
    assert [label(code) for code in (1, 2, 3, 4, 1, None)] == ["1", "2", "3", "other", "1", "none"]


def test_config_keys() -> None:
    base = {"access_token": "t", "phone_number_id": "1", "verify_token": "v", "app_secret": "s"}
    defaults = WhatsAppConfig.from_mapping(base)
    assert (defaults.metrics, defaults.metrics_token, defaults.max_messages_per_second) == (
        False,
        None,
        80.0,
    )
    assert (defaults.pair_interval_seconds, defaults.pair_burst) == (6.0, 40)
    on = WhatsAppConfig.from_mapping(
        {**base, "metrics": "true", "metrics_token": "tok3n", "max_messages_per_second": "1000"}
    )
    assert (on.metrics, on.metrics_token, on.max_messages_per_second) == (True, "tok3n", 1000.0)
    assert "tok3n" not in repr(on)
    env = WhatsAppConfig.from_mapping(base, {"WHATSAPP_METRICS": "1"})
    assert env.metrics
    for bad in ({"max_messages_per_second": 0}, {"pair_burst": 0}, {"metrics": "maybe"}):
        with pytest.raises(ConfigError, match=next(iter(bad))):
            WhatsAppConfig.from_mapping({**base, **bad})


def test_queue_gauges_come_from_what_the_intake_reports() -> None:
    from connectors.whatsapp.core.metrics import Metrics

    metrics = Metrics(counters=lambda: {"accepted": 4})
    health = {"pending": 3, "claimed": 1, "dead_letters": 2, "outbox_waiting": 5, "status": "ok"}
    found = samples(metrics.render(health))
    assert found[("whatsapp_queue_depth", ())] == 3
    assert found[("whatsapp_queue_claimed", ())] == 1
    assert found[("whatsapp_queue_dead_letters", ())] == 2
    assert found[("whatsapp_outbox_waiting", ())] == 5
    assert found[("whatsapp_messages_total", (("outcome", "accepted"),))] == 4
    # A gauge the intake does not report (queue: memory has no dead letters) is not made up.
    assert ("whatsapp_queue_dead_letters", ()) not in samples(metrics.render({"pending": 0}))
