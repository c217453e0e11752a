"""`queue: redis` through the sync service, as the Flask server and the DRF view use it."""

from collections.abc import Iterator

import pytest
import redis

from connectors.whatsapp.core.webhook import WebhookRequest
from connectors.whatsapp.sync.service import WebhookService
from tests.support.graph_server import GraphServer
from tests.support.processes import free_port
from tests.support.redis_server import redis_server
from tests.support.sync_service import (
    Recorder,
    make_service,
    signature_headers,
    wait_for_messages,
)
from tests.support.webhooks import encode, text_message


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with redis_server() as url:
        yield url


def text_post(sender: str, text: str) -> WebhookRequest:
    body = encode(text_message(sender, text)[0])
    return WebhookRequest("POST", body, signature_headers(body))


def test_the_sync_service_stores_messages_in_redis_and_answers_them_in_order(
    graph: GraphServer, redis_url: str
) -> None:
    redis.Redis.from_url(redis_url).flushall()
    recorder = Recorder()
    service: WebhookService = make_service(
        graph, recorder, queue="redis", dedup="redis", redis_url=redis_url
    )
    try:
        for text in ("um", "dois", "três"):
            assert service.receive(text_post("5511955550001", text)).status == 200
        sent = wait_for_messages(graph, "5511955550001", 3)
        health = service.health().body
    finally:
        service.close()
    assert [m["text"]["body"] for m in sent] == ["eco: um", "eco: dois", "eco: três"]
    assert (health["queue"], health["pending"], health["dead_letters"]) == ("redis", 0, 0)


def test_the_sync_service_answers_503_when_redis_is_unreachable(graph: GraphServer) -> None:
    service = make_service(
        graph,
        Recorder(),
        queue="redis",
        dedup="redis",
        redis_url=f"redis://127.0.0.1:{free_port()}/0",
    )
    try:
        answer = service.receive(text_post("5511955550002", "oi"))
        health = service.health()
    finally:
        service.close()
    assert answer.status == 503
    assert answer.headers["Retry-After"]
    assert health.status_code == 503
