"""`queue: redis` through the sync service, as the Flask server and the DRF view use it."""

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from connectors.whatsapp.core.webhook import WebhookRequest
from connectors.whatsapp.sync.service import WebhookService
from tests.support.graph_server import GraphServer
from tests.support.processes import PROJECT_ROOT, free_port
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
        assert service.join(10)  # the last turn ends (acknowledged in Redis) after its answer
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


class FailingBackend:
    """Raises on texts starting with "falha" while `failing` is set; answers the rest."""

    def __init__(self) -> None:
        self.failing = True
        self.calls: list[str] = []

    def __call__(self, bot_input: Any) -> list[dict[str, Any]]:
        self.calls.append(bot_input.text)
        if self.failing and bot_input.text.startswith("falha"):
            raise RuntimeError("backend down")
        return [{"text": f"eco: {bot_input.text}"}]


def queue_cli(redis_url: str, *args: str) -> str:
    """`python -m connectors.whatsapp.core.queue ...` as an operator runs it; its stdout."""
    command = [sys.executable, "-m", "connectors.whatsapp.core.queue", "--redis-url", redis_url]
    done = subprocess.run(
        [*command, *args], capture_output=True, text=True, timeout=60, check=True, cwd=PROJECT_ROOT
    )
    return done.stdout


def test_a_backend_that_keeps_raising_makes_a_dead_letter_that_requeue_replays(
    graph: GraphServer, redis_url: str
) -> None:
    # With queue: redis the Flask/DRF service must not swallow a backend's exception: the queue
    # retries the turn, sets it aside after max_attempts, and the CLI puts it back.
    redis.Redis.from_url(redis_url).flushall()
    backend = FailingBackend()
    sender = "5511955550003"
    service = make_service(
        graph, backend, queue="redis", dedup="redis", redis_url=redis_url, max_attempts=2
    )
    try:
        assert service.receive(text_post(sender, "falha 1")).status == 200
        assert service.receive(text_post(sender, "depois")).status == 200
        sent = wait_for_messages(graph, sender, 1, timeout=20)
        assert [m["text"]["body"] for m in sent] == ["eco: depois"]  # the conversation went on
        assert backend.calls.count("falha 1") == 2
        assert service.health().body["dead_letters"] == 1
        assert "falha" not in "".join(backend.calls[2:])  # set aside: not tried again
        listed = queue_cli(redis_url, "dead-letters")
        assert f"from {sender}" in listed and "after 2 attempt(s)" in listed
        backend.failing = False
        assert "requeued as" in queue_cli(redis_url, "requeue", "--all")
        sent = wait_for_messages(graph, sender, 2, timeout=20)
        health = service.health().body
    finally:
        service.close()
    assert [m["text"]["body"] for m in sent] == ["eco: depois", "eco: falha 1"]
    assert (health["pending"], health["dead_letters"]) == (0, 0)
