"""Two Rasa servers behind a load balancer, as in production: one Redis, one PostgreSQL.

Each instance has its own agent (like two `rasa run` processes) and shares only the de-duplication
and lock stores (Redis) and the tracker store (PostgreSQL). A redelivered webhook reaches the bot
once, and a conversation goes on whichever instance gets each message.
"""

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.adapters.rasa.conftest import RasaWhatsApp, running_rasa
from tests.support.graph_server import GraphServer
from tests.support.postgres_server import PostgresServer, postgres_server
from tests.support.redis_server import redis_server
from tests.support.webhooks import encode, text_message, user_message

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
        accepted = delivered(first) + delivered(second)
    assert accepted == 1
    assert len(await first.user_turns(sender)) == 1


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    with postgres_server() as server:
        yield server


def sql_tracker_store(postgres: PostgresServer, domain: Any = None) -> Any:
    """Rasa's tracker store on the shared PostgreSQL, configured as in endpoints.yml."""
    from rasa.core.tracker_store import SQLTrackerStore

    return SQLTrackerStore(
        domain,
        dialect="postgresql",
        host=postgres.host,
        port=postgres.port,
        db=postgres.database,
        username=postgres.username,
        password=postgres.password,
    )


@pytest.fixture
def instance_agents(
    trained_model: Path, action_server_url: str, postgres: PostgresServer, redis_url: str
) -> Iterator[tuple[Any, Any]]:
    """Two agents from the same model, like two `rasa run` processes with endpoints.yml's stores.

    They share nothing but PostgreSQL (tracker store) and Redis (lock store).
    """
    from rasa.core.agent import Agent
    from rasa.core.lock_store import RedisLockStore
    from rasa.utils.endpoints import EndpointConfig

    redis = urlsplit(redis_url)
    stores = [sql_tracker_store(postgres) for _ in range(2)]
    agents = [
        Agent.load(
            trained_model,
            tracker_store=store,
            lock_store=RedisLockStore(host=redis.hostname or "127.0.0.1", port=redis.port or 6379),
            action_endpoint=EndpointConfig(url=action_server_url),
        )
        for store in stores
    ]
    assert all(agent.is_ready() for agent in agents)
    yield agents[0], agents[1]
    for store in stores:
        store.engine.dispose()


@dataclass
class Conversation:
    """One WhatsApp user talking to a bot served by two instances behind a load balancer."""

    sender: str
    instances: tuple[RasaWhatsApp, RasaWhatsApp]
    graph: GraphServer
    tracker_store: Any
    """A third SQLTrackerStore: what is in PostgreSQL, not what an instance holds in memory."""
    wamids: list[str] = field(default_factory=list)

    async def tracker(self) -> Any:
        tracker = await self.tracker_store.retrieve_full_tracker(self.sender)
        assert tracker is not None, "no tracker in PostgreSQL"
        return tracker

    async def turn(
        self, payload: tuple[dict[str, Any], str], to: RasaWhatsApp, *, racing: bool
    ) -> list[dict[str, Any]]:
        """Deliver one user message to `to` and Meta's redeliveries of it to both instances.

        `racing`: the redeliveries arrive at the same moment as the delivery (Meta retries when
        a 200 comes late). Otherwise they come after the bot answered, while the user reads the
        answer (which is what keeps the order of messages handled by different instances).
        Returns what the bot sent to WhatsApp for this message.
        """
        webhook, wamid = payload
        body = encode(webhook)
        self.wamids.append(wamid)
        before = await self.tracker() if self.wamids[:-1] else None
        bot_before = len(bot_turns(before)) if before else 0
        replies_before = len(self.replies())
        delivered_before = [delivered(server) for server in self.instances]

        deliveries = [to.post(body)] + ([s.post(body) for s in self.instances] if racing else [])
        statuses = [status for status, _ in await asyncio.gather(*deliveries)]
        if not racing:
            await to.settle()
            assert delivered(to) == delivered_before[self.instances.index(to)] + 1
            redeliveries = await asyncio.gather(*(s.post(body) for s in self.instances))
            statuses += [status for status, _ in redeliveries]
        for server in self.instances:
            await server.settle()
        assert statuses == [200] * len(statuses)

        handled = [delivered(s) - n for s, n in zip(self.instances, delivered_before, strict=True)]
        assert sum(handled) == 1, f"message handled {handled} times by the two instances"
        tracker = await self.tracker()
        assert [turn.message_id for turn in user_turns(tracker)] == self.wamids
        receipts = [r for r in self.graph.requests if r.json and r.json.get("message_id") == wamid]
        assert len(receipts) == 1, "the message was marked as read more than once"
        replies = self.replies()[replies_before:]
        assert replies, "the bot answered nothing"
        assert len(replies) == len(bot_turns(tracker)) - bot_before
        return replies

    def replies(self) -> list[dict[str, Any]]:
        return [body for body in self.graph.sent_messages if body.get("to") == self.sender]


def delivered(server: RasaWhatsApp) -> int:
    assert server.channel.pipeline is not None
    return server.channel.pipeline.counters["delivered"]


def user_turns(tracker: Any) -> list[Any]:
    from rasa.shared.core.events import UserUttered

    return [event for event in tracker.events if isinstance(event, UserUttered)]


def bot_turns(tracker: Any) -> list[Any]:
    from rasa.shared.core.events import BotUttered

    return [event for event in tracker.events if isinstance(event, BotUttered)]


def list_rows(reply: dict[str, Any]) -> list[dict[str, Any]]:
    assert reply["type"] == "interactive"
    assert reply["interactive"]["type"] == "list"
    return [row for s in reply["interactive"]["action"]["sections"] for row in s["rows"]]


def entities(row: dict[str, Any]) -> Any:
    """The entities in a row id such as `/escolher_categoria{"categoria":"moda"}`."""
    return json.loads(row["id"][row["id"].index("{") :])


def list_choice(sender: str, row: dict[str, Any]) -> tuple[dict[str, Any], str]:
    choice = {"type": "list_reply", "list_reply": {"id": row["id"], "title": row["title"]}}
    return user_message(sender, "interactive", choice)


async def test_a_conversation_continues_across_instances_sharing_redis_and_postgres(
    graph: GraphServer, instance_agents: tuple[Any, Any], postgres: PostgresServer, redis_url: str
) -> None:
    sender = "5511977770001"
    first_agent, second_agent = instance_agents
    async with (
        running_rasa(graph, first_agent, dedup="redis", redis_url=redis_url) as a,
        running_rasa(graph, second_agent, dedup="redis", redis_url=redis_url) as b,
    ):
        reader = sql_tracker_store(postgres, first_agent.domain)
        chat = Conversation(sender, (a, b), graph, reader)
        try:
            # "menu" on A; the tap on its buttons on B, which must see A's turn in PostgreSQL.
            [menu] = await chat.turn(text_message(sender, "menu"), a, racing=False)
            assert menu["interactive"]["type"] == "button"
            button = next(
                button["reply"]
                for button in menu["interactive"]["action"]["buttons"]
                if button["reply"]["id"] == "/ver_categorias"
            )
            tap = {"type": "button_reply", "button_reply": button}
            [categories] = await chat.turn(
                user_message(sender, "interactive", tap), b, racing=False
            )
            # Then the list rows, each delivered with redeliveries racing it on both instances.
            category = list_rows(categories)[1]
            [products] = await chat.turn(list_choice(sender, category), a, racing=True)
            product = list_rows(products)[0]
            picture, buy = await chat.turn(list_choice(sender, product), b, racing=True)
            assert picture["type"] == "image"
            assert buy["interactive"]["type"] == "cta_url"

            tracker = await chat.tracker()
            assert [turn.intent["name"] for turn in user_turns(tracker)] == [
                "menu",
                "ver_categorias",
                "escolher_categoria",
                "escolher_produto",
            ]
            assert len(bot_turns(tracker)) == len(chat.replies()) == 5
            # Slots set on one instance and on the other, all in the one conversation.
            assert tracker.get_slot("categoria") == entities(category)["categoria"]
            assert tracker.get_slot("produto") == entities(product)["produto"]
            assert delivered(a) + delivered(b) == 4
        finally:
            reader.engine.dispose()
