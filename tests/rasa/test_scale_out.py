"""Two Rasa servers behind a load balancer share one Redis: a redelivery reaches the bot once."""

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from tests.rasa.conftest import running_rasa
from tests.support.graph_server import GraphServer
from tests.support.redis_server import redis_server
from tests.support.webhooks import encode, text_message

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with redis_server() as url:
        yield url


async def test_a_webhook_delivered_to_two_instances_reaches_the_bot_once(
    graph: GraphServer, rasa_agent: Any, redis_url: str
) -> None:
    sender = "5511966660000"
    body = encode(text_message(sender, "oi")[0])
    async with (
        running_rasa(graph, rasa_agent, dedup="redis", redis_url=redis_url) as first,
        running_rasa(graph, rasa_agent, dedup="redis", redis_url=redis_url) as second,
    ):
        # Meta redelivers to whichever instance the load balancer picks, even at the same moment.
        results = await asyncio.gather(
            *(server.post(body) for server in (first, second) for _ in range(3))
        )
        assert [status for status, _ in results] == [200] * 6
        await first.settle()
        await second.settle()
        accepted = first.channel.pipeline.counters["delivered"]  # type: ignore[union-attr]
        accepted += second.channel.pipeline.counters["delivered"]  # type: ignore[union-attr]
    assert accepted == 1
    assert len(await first.user_turns(sender)) == 1
