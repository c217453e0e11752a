"""Answers survive a Graph API outage: the outbox, against a real HTTP Graph API on 127.0.0.1."""

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import redis

from connectors.whatsapp.core.client import GraphClient
from connectors.whatsapp.core.outbound import Outbound
from connectors.whatsapp.core.outbox import MemoryOutbox, Outbox, Parcel, RedisOutbox, gone_status
from connectors.whatsapp.core.retry import RetryPolicy
from tests.conftest import ACCESS_TOKEN, PHONE_NUMBER_ID
from tests.support.graph_server import GraphServer, RecordedRequest, drop, meta_error
from tests.support.redis_server import redis_server

FAST = RetryPolicy(max_attempts=2, base_delay=0.01, max_delay=0.02, max_total_seconds=1)
DELAYS = {"base_delay": 0.05, "max_delay": 0.2}


class Outage:
    """The Graph API's /messages down (an answer per `failure`) while `down` is set."""

    def __init__(self, graph: GraphServer, failure: Any) -> None:
        self.down = True
        graph.script(self.matches, [failure] * 10_000)

    def matches(self, request: RecordedRequest) -> bool:
        return self.down and request.path.endswith("/messages")


class Lost:
    def __init__(self) -> None:
        self.parcels: list[tuple[Parcel, str]] = []

    def __call__(self, parcel: Parcel, reason: str) -> None:
        self.parcels.append((parcel, reason))


@pytest.fixture
async def graph() -> AsyncIterator[GraphServer]:
    async with GraphServer(access_token=ACCESS_TOKEN) as server:
        yield server


@pytest.fixture
async def client(graph: GraphServer) -> AsyncIterator[GraphClient]:
    graph_client = GraphClient(access_token=ACCESS_TOKEN, base_url=graph.base_url, retry=FAST)
    yield graph_client
    await graph_client.close()


def wire(client: GraphClient, outbox: Outbox, lost: Lost | None = None) -> Outbound:
    outbound = Outbound(client, default_phone_number_id=PHONE_NUMBER_ID)

    async def send(phone_number_id: str, recipient: str, body: Any) -> Any:
        return await client.send_message(phone_number_id, body)

    outbox.bind(send, lost)
    outbound.outbox = outbox
    return outbound


def texts_to(graph: GraphServer, recipient: str) -> list[str]:
    return [m["text"]["body"] for m in graph.sent_messages if m.get("to") == recipient]


async def until(condition: Any, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


@pytest.mark.parametrize("failure", [meta_error(2, 503), meta_error(130429), drop()])
async def test_answers_written_during_an_outage_arrive_after_it_in_order(
    graph: GraphServer, client: GraphClient, failure: Any
) -> None:
    outage = Outage(graph, failure)
    outbox = MemoryOutbox(retry_seconds=60, **DELAYS)
    outbound = wire(client, outbox)
    recipient = "5511944440001"
    sent_at = []
    for i in range(5):
        started = time.monotonic()
        assert await outbound.send(recipient, {"text": f"resposta {i}"}) == [None]
        sent_at.append(time.monotonic() - started)
    assert await outbox.waiting() == 5
    assert max(sent_at) < 1.5  # the turn is not held by the outbox (only the client's retries)
    await asyncio.sleep(0.3)
    outage.down = False
    await until(lambda: outbox.counters["outbox_sent"] == 5)
    # The last five requests are the ones answered 200 (the outage is over), in order.
    assert texts_to(graph, recipient)[-5:] == [f"resposta {i}" for i in range(5)]
    assert await outbox.waiting() == 0
    await outbox.close()


async def test_a_later_answer_to_the_same_person_waits_behind_but_others_are_not_held(
    graph: GraphServer, client: GraphClient
) -> None:
    outbox = MemoryOutbox(retry_seconds=60, base_delay=0.3, max_delay=0.3)
    outbound = wire(client, outbox)
    graph.script("/messages", [meta_error(2, 503), meta_error(2, 503)])  # both client attempts
    await outbound.send("5511944440002", {"text": "primeira"})
    await outbound.send("5511944440002", {"text": "segunda"})
    [result] = await outbound.send("5511944440003", {"text": "outra pessoa"})
    assert result is not None  # sent at once
    assert texts_to(graph, "5511944440002") == ["primeira", "primeira"]  # "segunda" not sent yet
    await until(lambda: outbox.counters["outbox_sent"] == 2)
    assert texts_to(graph, "5511944440002")[-2:] == ["primeira", "segunda"]
    assert outbound.counters["answers_queued"] == 2
    await outbox.close()


async def test_permanent_errors_are_not_retried(graph: GraphServer, client: GraphClient) -> None:
    outbox = MemoryOutbox(retry_seconds=60, **DELAYS)
    outbound = wire(client, outbox)
    graph.script("/messages", [meta_error(131026)])
    assert await outbound.send("5511944440004", {"text": "oi"}) == [None]
    await asyncio.sleep(0.2)
    assert len(texts_to(graph, "5511944440004")) == 1
    assert await outbox.waiting() == 0
    assert outbound.counters["send_failures"] == 1
    await outbox.close()


async def test_an_answer_that_expires_is_logged_with_its_recipient_and_given_to_the_hook(
    graph: GraphServer, client: GraphClient, caplog: pytest.LogCaptureFixture
) -> None:
    Outage(graph, meta_error(2, 503))
    lost = Lost()
    outbox = MemoryOutbox(retry_seconds=0.5, **DELAYS)
    outbound = wire(client, outbox, lost)
    await outbound.send("5511944440005", {"text": "nunca"})
    await until(lambda: lost.parcels, timeout=5)
    [(parcel, reason)] = lost.parcels
    assert parcel.recipient == "5511944440005"
    assert "0.5 s" in reason
    assert "5511944440005" in caplog.text and "lost" in caplog.text
    status = gone_status(parcel, reason)
    assert (status.status, status.recipient_id, status.errors[0].code) == (
        "failed",
        "5511944440005",
        2,
    )
    await outbox.close()


async def test_on_shutdown_the_memory_outbox_goes_on_sending_then_gives_up(
    graph: GraphServer, client: GraphClient
) -> None:
    outage = Outage(graph, meta_error(2, 503))
    lost = Lost()
    outbox = MemoryOutbox(retry_seconds=60, **DELAYS)
    outbound = wire(client, outbox, lost)
    await outbound.send("5511944440006", {"text": "a tempo"})
    asyncio.get_running_loop().call_later(0.3, setattr, outage, "down", False)
    assert await outbox.drain(5)  # sent within the drain time
    outage.down = True
    await outbound.send("5511944440007", {"text": "tarde demais"})
    assert not await outbox.drain(0.2)
    assert [p.recipient for p, _ in lost.parcels] == ["5511944440007"]


async def test_a_full_memory_outbox_refuses_and_the_failure_is_logged(
    graph: GraphServer, client: GraphClient
) -> None:
    Outage(graph, meta_error(2, 503))
    outbox = MemoryOutbox(retry_seconds=60, max_parcels=1, **DELAYS)
    outbound = wire(client, outbox)
    await outbound.send("5511944440008", {"text": "um"})
    await outbound.send("5511944440009", {"text": "dois"})
    assert await outbox.waiting() == 1
    assert outbound.counters["send_failures"] == 1
    await outbox.close()


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with redis_server() as url:
        yield url


async def test_the_redis_outbox_survives_a_crash_and_another_instance_sends(
    graph: GraphServer, client: GraphClient, redis_url: str
) -> None:
    redis.Redis.from_url(redis_url).flushall()
    outage = Outage(graph, meta_error(2, 503))
    first = RedisOutbox(url=redis_url, retry_seconds=60, poll_seconds=0.05, **DELAYS)
    outbound = wire(client, first)
    recipient = "5511944440010"
    for i in range(3):
        await outbound.send(recipient, {"text": f"r{i}"})
    assert await first.waiting() == 3
    # The instance dies: its tasks stop, nothing is cleaned up.
    first._stopping = True
    if first._poller is not None:
        first._poller.cancel()
    for task in list(first._workers.values()):
        task.cancel()
    await asyncio.sleep(0.1)
    outage.down = False
    second = RedisOutbox(url=redis_url, retry_seconds=60, poll_seconds=0.05, **DELAYS)
    wire(client, second)
    assert await second.holds(recipient)  # a new answer to them would queue behind
    await until(lambda: second.counters["outbox_sent"] == 3)
    assert texts_to(graph, recipient)[-3:] == ["r0", "r1", "r2"]
    assert await second.waiting() == 0
    assert not await second.holds(recipient)
    await second.close()
    await first.close()


async def test_through_the_endpoint_a_lost_answer_reaches_the_status_hook(
    graph: GraphServer,
) -> None:
    from connectors.whatsapp.core.config import WhatsAppConfig
    from connectors.whatsapp.core.endpoint import WebhookEndpoint
    from connectors.whatsapp.core.events import StatusUpdate
    from tests.conftest import APP_SECRET, VERIFY_TOKEN

    Outage(graph, meta_error(2, 503))
    statuses: list[StatusUpdate] = []
    config = WhatsAppConfig.from_mapping(
        {
            "access_token": ACCESS_TOKEN,
            "phone_number_id": PHONE_NUMBER_ID,
            "verify_token": VERIFY_TOKEN,
            "app_secret": APP_SECRET,
            "api_base_url": graph.base_url,
            "outbox_retry_seconds": 1,
        }
    )
    fast_client = GraphClient(access_token=ACCESS_TOKEN, base_url=graph.base_url, retry=FAST)
    endpoint = WebhookEndpoint(config, client=fast_client, status_hook=statuses.append)
    try:
        assert await endpoint.outbound.send("5511944440011", {"text": "perdida"}) == [None]
        health = await endpoint.health()
        assert health.body["outbox_waiting"] == 1
        await until(lambda: statuses, timeout=10)
    finally:
        await endpoint.close()
    [status] = statuses
    assert (status.status, status.recipient_id) == ("failed", "5511944440011")
    assert status.errors[0].code == 2


def test_a_waiting_answer_with_a_lone_surrogate_is_stored_and_read_back_unchanged() -> None:
    # Meta's JSON may carry "\udc00"; a bot that echoes it puts it in its answer. Redis needs
    # bytes, and a lone surrogate has no UTF-8 encoding: the stored form must not need one.
    body = {"type": "text", "to": "5511999990000", "text": {"body": "eco: a\udc00b"}}
    parcel = Parcel(PHONE_NUMBER_ID, "5511999990000", body, queued_at=1.0, deadline=2.0)
    stored = parcel.to_json().encode("utf-8")
    assert Parcel.from_json(stored).body == body
