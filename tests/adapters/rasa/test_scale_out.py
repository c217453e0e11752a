"""Two Rasa servers behind a load balancer, as in production: one Redis, one PostgreSQL.

Each instance has its own agent (like two `rasa run` processes) and shares only the de-duplication
and lock stores (Redis) and the tracker store (PostgreSQL). A redelivered webhook reaches the bot
once, and a conversation goes on whichever instance gets each message.

With `queue: redis` (the second half, real `rasa run` processes): one conversation alternating
between instances is answered once per message, in order; an instance SIGKILLed mid-turn leaves
every accepted message to the survivor; Redis stopped means 503, and nothing accepted is lost; a
Graph API outage loses no answer.
"""

import asyncio
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest

from tests.adapters.rasa.conftest import RasaWhatsApp, running_rasa
from tests.conftest import ACCESS_TOKEN, APP_SECRET, PHONE_NUMBER_ID, VERIFY_TOKEN
from tests.support.graph_server import GraphServer, RecordedRequest, meta_error, slow
from tests.support.http import client_session
from tests.support.postgres_server import PostgresServer, postgres_server
from tests.support.processes import PROJECT_ROOT, RASA, child_env, free_port, stop, wait_http
from tests.support.programs import need_program
from tests.support.redis_server import redis_server
from tests.support.webhooks import encode, post_webhook, text_message, user_message

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


# -- queue: redis, with two real `rasa run` processes ---------------------------------------------
#
# Two `rasa run` subprocesses with the trained sample bot, `queue: redis`, one Redis (persistent,
# stopped and restarted by a test), one PostgreSQL tracker store, the atomic lock store, and the
# Graph API at a scripted test server on 127.0.0.1 that can be made slow (turns stay in flight) or
# down. claim_idle_seconds is 2 s and the lock store's ticket lifetime 5 s, so that a killed
# instance's work is taken over within seconds; the "Graph API down" outage lasts 10 s, not a
# minute, to keep the suite fast (the outbox retries for 15 minutes).

CLAIM_IDLE_SECONDS = 2
OUTAGE_SECONDS = 10


class PersistentRedis:
    """A redis-server with an append-only file fsynced on every write, restartable on its port."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = need_program("redis-server")
        args = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        args += ["--appendonly", "yes", "--appendfsync", "always", "--dir", str(self.directory)]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


class GraphState:
    """What the Graph API test server does with sends and read receipts right now."""

    def __init__(self) -> None:
        self.mode = "up"  # "up", "slow" (each answer after SLOW_SECONDS) or "down" (503)
        self.failed: set[int] = set()

    def down(self, request: RecordedRequest) -> bool:
        if self.mode == "down" and request.path.endswith("/messages"):
            self.failed.add(id(request))
            return True
        return False

    def slow(self, request: RecordedRequest) -> bool:
        return self.mode == "slow" and request.path.endswith("/messages")


SLOW_SECONDS = 3.0


@dataclass
class RasaProcess:
    name: str
    port: int
    args: list[str]
    log: Path
    process: subprocess.Popen[bytes] = field(init=False)

    def __post_init__(self) -> None:
        self.launch()

    def launch(self) -> None:
        """Start `rasa run` (again, on the same port, appending to the same log)."""
        self.process = subprocess.Popen(
            self.args,
            cwd=PROJECT_ROOT,
            env=child_env({"TICKET_LOCK_LIFETIME": "5"}),
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self) -> None:
        try:
            wait_http(self.base + "/", 240, self.process)
        except (RuntimeError, TimeoutError) as error:
            output = self.log.read_text(errors="replace")[-4000:]
            raise RuntimeError(f"rasa run {self.name}: {error}\n{output}") from None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}/webhooks/whatsapp"

    def kill(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    @property
    def alive(self) -> bool:
        return self.process.poll() is None


@dataclass
class Cluster:
    graph: GraphServer
    state: GraphState
    redis: PersistentRedis
    postgres: PostgresServer
    instances: list[RasaProcess]
    http: aiohttp.ClientSession

    async def post(self, instance: RasaProcess, payload: dict[str, Any]) -> int:
        status, _ = await post_webhook(self.http, instance.base + "/webhook", encode(payload))
        return status

    async def health(self, instance: RasaProcess) -> tuple[int, dict[str, Any]]:
        async with self.http.get(instance.base + "/") as response:
            return response.status, await response.json()

    async def settle(self, timeout: float = 90) -> dict[str, Any]:
        """Wait until no message waits in Redis and nothing runs on a live instance."""
        deadline = time.monotonic() + timeout
        while True:
            reports = [await self.health(i) for i in self.instances if i.alive]
            bodies = [body for _, body in reports]
            if all(
                b.get("pending") == 0 and b.get("running_here") == 0 and not b.get("outbox_waiting")
                for b in bodies
            ):
                return bodies[0]
            if time.monotonic() > deadline:
                raise AssertionError(f"not settled in {timeout} s: {bodies}")
            await asyncio.sleep(0.2)

    def events(self, sender: str) -> list[tuple[str, dict[str, Any]]]:
        """The conversation's events as stored in PostgreSQL, in order."""
        import sqlalchemy

        engine = sqlalchemy.create_engine(
            f"postgresql://{self.postgres.username}:{self.postgres.password}@"
            f"{self.postgres.host}:{self.postgres.port}/{self.postgres.database}"
        )
        try:
            with engine.connect() as connection:
                rows = connection.execute(
                    sqlalchemy.text(
                        "SELECT type_name, data FROM events WHERE sender_id = :s ORDER BY id"
                    ),
                    {"s": sender},
                ).fetchall()
        finally:
            engine.dispose()
        return [(row[0], json.loads(row[1])) for row in rows]

    def user_message_ids(self, sender: str) -> list[str]:
        return [data.get("message_id") for kind, data in self.events(sender) if kind == "user"]

    def bot_texts(self, sender: str) -> list[str | None]:
        return [data.get("text") for kind, data in self.events(sender) if kind == "bot"]

    def delivered_to(self, sender: str) -> list[dict[str, Any]]:
        """Bodies sent to `sender` that the Graph API accepted (not answered 503)."""
        return [
            r.json
            for r in list(self.graph.requests)
            if isinstance(r.json, dict)
            and r.json.get("to") == sender
            and r.json.get("status") != "read"
            and id(r) not in self.state.failed
        ]


def body_text(body: dict[str, Any]) -> str | None:
    if body.get("type") == "text":
        return str(body["text"]["body"])
    if body.get("type") == "interactive":
        return str(body["interactive"]["body"]["text"])
    return None


def start_rasa(
    name: str, model: Path, directory: Path, credentials: Path, endpoints: Path
) -> RasaProcess:
    port = free_port()
    args = [RASA, "run", "-m", str(model), "--credentials", str(credentials)]
    args += ["--endpoints", str(endpoints), "--port", str(port), "-i", "127.0.0.1"]
    return RasaProcess(name, port, args, directory / f"rasa-{name}.log")


@pytest.fixture(scope="module")
def cluster_parts(
    trained_model: Path,
    action_server_url: str,
    postgres: PostgresServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[GraphServer, GraphState, PersistentRedis, list[RasaProcess]]]:
    directory = tmp_path_factory.mktemp("cluster")
    redis = PersistentRedis(directory)
    redis.start()
    state = GraphState()
    with GraphServer(access_token=ACCESS_TOKEN) as graph:
        graph.script(state.down, [meta_error(2, 503)] * 100_000)
        graph.script(state.slow, [slow(SLOW_SECONDS)] * 100_000)
        credentials = directory / "credentials.yml"
        credentials.write_text(
            "connectors.whatsapp.WhatsAppInput:\n"
            + "".join(
                f"  {key}: {value}\n"
                for key, value in {
                    "access_token": ACCESS_TOKEN,
                    "phone_number_id": PHONE_NUMBER_ID,
                    "verify_token": VERIFY_TOKEN,
                    "app_secret": APP_SECRET,
                    "api_base_url": graph.base_url,
                    "queue": "redis",
                    "redis_url": redis.url,
                    "claim_idle_seconds": CLAIM_IDLE_SECONDS,
                    "drain_timeout_seconds": 5,
                }.items()
            )
        )
        endpoints = directory / "endpoints.yml"
        endpoints.write_text(
            f"action_endpoint:\n  url: {action_server_url}\n"
            "tracker_store:\n  type: SQL\n  dialect: postgresql\n"
            f"  url: {postgres.host}\n  port: {postgres.port}\n  db: {postgres.database}\n"
            f"  username: {postgres.username}\n  password: {postgres.password}\n"
            "lock_store:\n  type: connectors.lock_store.AtomicRedisLockStore\n"
            f"  url: 127.0.0.1\n  port: {redis.port}\n  db: 1\n"
        )
        instances = [
            start_rasa(name, trained_model, directory, credentials, endpoints)
            for name in ("a", "b")
        ]
        try:
            for instance in instances:
                instance.wait_ready()
            yield graph, state, redis, instances
        finally:
            for instance in instances:
                stop(instance.process)
            redis.stop()


@pytest.fixture
async def cluster(
    cluster_parts: tuple[GraphServer, GraphState, PersistentRedis, list[RasaProcess]],
    postgres: PostgresServer,
) -> AsyncIterator[Cluster]:
    graph, state, redis, instances = cluster_parts
    state.mode = "up"
    async with client_session() as http:
        yield Cluster(graph, state, redis, postgres, instances, http)


async def test_one_conversation_alternating_between_two_rasa_runs_is_answered_once_each_in_order(
    cluster: Cluster,
) -> None:
    sender = "5511988880001"
    a, b = cluster.instances
    cluster.state.mode = "slow"  # turns overlap: message 2 arrives while message 1 is in flight
    wamids = []
    for index, text in enumerate(["oi", "menu", "oi", "menu"]):
        payload, wamid = text_message(sender, text)
        wamids.append(wamid)
        assert await cluster.post((a, b)[index % 2], payload) == 200
        await asyncio.sleep(0.3)
    await asyncio.sleep(SLOW_SECONDS)
    cluster.state.mode = "up"
    health = await cluster.settle()
    assert cluster.user_message_ids(sender) == wamids  # once each, in arrival order
    bot = cluster.bot_texts(sender)
    delivered = [body_text(body) for body in cluster.delivered_to(sender)]
    assert delivered == bot  # every answer sent once, in the order the bot wrote them
    assert health["queue"] == "redis" and health["dead_letters"] == 0


async def test_the_graph_api_down_for_a_while_loses_no_answer_and_keeps_their_order(
    cluster: Cluster,
) -> None:
    sender = "5511988880002"
    a, b = cluster.instances
    cluster.state.mode = "down"
    started = time.monotonic()
    wamids = []
    for index, text in enumerate(["oi", "menu", "oi"]):
        payload, wamid = text_message(sender, text)
        wamids.append(wamid)
        assert await cluster.post((a, b)[index % 2], payload) == 200
    # The turns end although nothing can be sent: their answers wait in the Redis outbox.
    deadline = time.monotonic() + 60
    while cluster.user_message_ids(sender) != wamids:
        assert time.monotonic() < deadline, "the turns did not end during the outage"
        await asyncio.sleep(0.3)
    _, health = await cluster.health(a)
    assert health["outbox_waiting"] > 0
    await asyncio.sleep(max(OUTAGE_SECONDS - (time.monotonic() - started), 0))
    cluster.state.mode = "up"
    await cluster.settle(timeout=120)
    bot = cluster.bot_texts(sender)
    delivered = [body_text(body) for body in cluster.delivered_to(sender)]
    assert len(bot) >= 3
    assert delivered == bot  # every answer arrived after the outage, once, in order


async def test_redis_stopped_means_503_and_once_it_is_back_nothing_accepted_is_lost(
    cluster: Cluster,
) -> None:
    sender = "5511988880003"
    a, b = cluster.instances
    first, first_id = text_message(sender, "oi")
    assert await cluster.post(a, first) == 200
    await cluster.settle()
    cluster.state.mode = "slow"  # the next ones are accepted and still waiting when Redis stops
    waiting = [text_message(sender, text) for text in ("menu", "oi")]
    for payload, _ in waiting:
        assert await cluster.post(b, payload) == 200
    cluster.redis.stop()
    refused, refused_id = text_message(sender, "menu")
    assert await cluster.post(a, refused) == 503
    assert await cluster.post(b, refused) == 503
    status, health = await cluster.health(a)
    assert status == 503 and "queue_error" in health
    await asyncio.sleep(1)
    cluster.redis.start()
    cluster.state.mode = "up"
    assert await cluster.post(a, refused) == 200  # Meta's redelivery
    await cluster.settle(timeout=120)
    expected = [first_id, *(wamid for _, wamid in waiting), refused_id]
    seen = cluster.user_message_ids(sender)
    # Nothing lost, in order. A turn that was under way when Redis went away may run again
    # (its end could not be recorded): at least once, never out of order.
    assert list(dict.fromkeys(seen)) == expected


async def test_an_instance_killed_after_rasa_saved_its_turn_leaves_it_answered_not_run_twice(
    cluster: Cluster,
) -> None:
    """Killed in the window between Rasa's save and the end of the turn's answers: the turn runs
    again elsewhere, finds itself in the tracker, and only sends its answers again."""
    sender = "5511988880004"
    payload, wamid = text_message(sender, "menu")  # no custom action: Rasa saves at once
    cluster.state.mode = "slow"  # the answer is still in flight when the tracker is saved
    assert await cluster.post(cluster.instances[0], payload) == 200
    deadline = time.monotonic() + 30
    while not (cluster.user_message_ids(sender) and cluster.delivered_to(sender)):
        assert time.monotonic() < deadline, "the turn was never saved and sent"
        await asyncio.sleep(0.05)
    # Whichever instance read the entry first runs the turn: that one dies.
    running = [(await cluster.health(i))[1]["running_here"] for i in cluster.instances]
    assert sorted(running) == [0, 1], running
    a, b = cluster.instances if running[0] else cluster.instances[::-1]
    a.kill()  # saved, its answer sent to Meta, not answered yet: the turn had not ended
    cluster.state.mode = "up"
    try:
        health = await cluster.settle(timeout=120)
        assert cluster.user_message_ids(sender) == [wamid]  # the message once, not run again
        [menu] = cluster.bot_texts(sender)
        # Sent again by b (its first sending had no answer from Meta): the same answer.
        assert {body_text(body) for body in cluster.delivered_to(sender)} == {menu}
        assert health["queue_reclaimed"] >= 1
        assert "not running the bot twice" in b.log.read_text(errors="replace")
    finally:
        a.launch()
        a.wait_ready()


async def test_an_instance_killed_mid_turn_leaves_every_accepted_message_to_the_survivor(
    cluster: Cluster,
) -> None:
    a, b = cluster.instances
    senders = [f"55119888801{i:02d}" for i in range(4)]
    cluster.state.mode = "slow"
    wamids: dict[str, list[str]] = {sender: [] for sender in senders}
    for round_ in range(3):
        for index, sender in enumerate(senders):
            payload, wamid = text_message(sender, ["oi", "menu", "oi"][round_])
            wamids[sender].append(wamid)
            assert await cluster.post((a, b)[(index + round_) % 2], payload) == 200
    deadline = time.monotonic() + 30
    while (await cluster.health(a))[1].get("running_here", 0) < 1:
        assert time.monotonic() < deadline, "instance a never took a turn"
        await asyncio.sleep(0.1)
    await asyncio.sleep(0.5)  # a's turn is waiting for the (slow) Graph API: in flight
    a.kill()
    killed_at = time.monotonic()
    cluster.state.mode = "up"
    health = await cluster.settle(timeout=120)
    taken_over_after = time.monotonic() - killed_at
    for sender in senders:
        # Every accepted message reached the bot, once, in order: the killed turn had not been
        # saved (Rasa saves the tracker at the end of a turn) and ran again on b.
        assert cluster.user_message_ids(sender) == wamids[sender], sender
        assert cluster.delivered_to(sender), sender
    assert health["queue_reclaimed"] >= 1
    assert taken_over_after >= CLAIM_IDLE_SECONDS / 2
