"""`queue: redis` on a real redis-server: two intakes in one process stand for two instances.

Each `RedisStreamIntake` has its own consumer name, its own connections and its own tasks, so two
of them sharing one Redis behave as two instances behind a load balancer. A "killed" instance
stops renewing and never releases anything (`kill`), as after SIGKILL; the real SIGKILL of a real
`rasa run` is in tests/adapters/rasa/test_scale_out.py.
"""

import asyncio
import contextlib
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
import redis

from connectors.whatsapp.core.events import InboundMessage
from connectors.whatsapp.core.parsing import parse_webhook
from connectors.whatsapp.core.queue import QueueFull, QueueUnavailable, turn_attempt
from connectors.whatsapp.core.queue.records import decode_message, encode_message
from connectors.whatsapp.core.queue.redis_stream import DONE_PREFIX, RedisStreamIntake
from tests.support.processes import PROJECT_ROOT, child_env, free_port
from tests.support.redis_server import redis_server
from tests.support.waiting import within
from tests.support.webhooks import envelope, text_message, user_message


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with redis_server() as url:
        yield url


@pytest.fixture
def raw(redis_url: str) -> Iterator["redis.Redis[bytes]"]:
    client: redis.Redis[bytes] = redis.Redis.from_url(redis_url)
    client.flushall()
    yield client
    client.close()


def message(sender: str, text: str) -> InboundMessage:
    [parsed] = parse_webhook(text_message(sender, text)[0])
    assert isinstance(parsed, InboundMessage)
    return parsed


class Bot:
    """Records turns; `slow` texts take `delay` s; `failing` texts raise (`failing_once` the
    first time)."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.turns: list[tuple[str, str | None]] = []
        self.running: dict[str, int] = {}
        self.overlaps = 0
        self.max_concurrent = 0
        self.started = asyncio.Event()
        self.failing: set[str] = set()
        self.failing_once: set[str] = set()
        self.hang: set[str] = set()
        self.blocking: dict[str, float] = {}
        """Texts whose turn blocks the event loop (a long prediction) for so many seconds."""
        self.attempts: list[tuple[str | None, int, int]] = []
        """(text, turn_attempt() in the turn, turn_attempt() in a worker thread of the turn)."""

    def handler(self, name: str) -> Callable[[InboundMessage], Any]:
        async def turn(msg: InboundMessage) -> None:
            self.running[msg.sender] = self.running.get(msg.sender, 0) + 1
            if self.running[msg.sender] > 1:
                self.overlaps += 1
            self.max_concurrent = max(self.max_concurrent, sum(self.running.values()))
            in_thread = await asyncio.to_thread(turn_attempt)
            self.attempts.append((msg.text, turn_attempt(), in_thread))
            self.started.set()  # after the record: a test may kill the instance once it is set
            try:
                if msg.text in self.hang:
                    await asyncio.Event().wait()
                await asyncio.sleep(self.delay)
                if msg.text in self.blocking:
                    time.sleep(self.blocking[msg.text])  # noqa: ASYNC251 (blocks on purpose)
                if msg.text in self.failing:
                    raise RuntimeError(f"turn of {msg.text!r} exploded")
                if msg.text in self.failing_once:
                    self.failing_once.discard(msg.text)
                    raise RuntimeError(f"turn of {msg.text!r} exploded once")
                self.turns.append((name, msg.text))
            finally:
                self.running[msg.sender] -= 1

        return turn

    def texts(self) -> list[str | None]:
        return [text for _, text in self.turns]


@contextlib.asynccontextmanager
async def instance(
    redis_url: str, bot: Bot, name: str, **options: Any
) -> AsyncIterator[RedisStreamIntake]:
    options.setdefault("claim_idle_seconds", 0.6)
    options.setdefault("retry_delay", 0.05)
    intake = RedisStreamIntake(url=redis_url, consumer=name, **options)
    intake.bind(bot.handler(name))
    await intake.start()
    try:
        yield intake
    finally:
        await intake.close()


async def kill(intake: RedisStreamIntake) -> None:
    """As SIGKILL would: every task stops at once, nothing is released or acknowledged."""
    intake._closed = True
    intake._stopping = True
    tasks = [t for t in (intake._consumer_task, *intake._active.values()) if t is not None]
    for task in tasks:
        task.cancel()
    await asyncio.wait(tasks, timeout=2)
    await intake.redis.close()
    intake._redis = None


async def settle(*intakes: RedisStreamIntake, timeout: float = 15) -> None:
    await within(timeout, asyncio.gather(*(i.join() for i in intakes)), "join()")


def test_a_stored_message_reads_back_as_the_message_meta_sent() -> None:
    payload, _ = user_message(
        "5511911110000", "location", {"latitude": -23.5, "longitude": -46.6, "name": "Loja"}
    )
    [original] = parse_webhook(payload)
    assert isinstance(original, InboundMessage)
    assert decode_message(encode_message(original)) == original


async def test_the_webhook_is_stored_before_it_is_answered_and_repeats_are_dropped(
    redis_url: str, raw: "redis.Redis[bytes]"
) -> None:
    bot = Bot()
    intake = RedisStreamIntake(url=redis_url, consumer="a")
    intake.bind(bot.handler("a"))
    first, second = message("5511911110001", "um"), message("5511911110001", "dois")
    try:
        # Not started: nothing consumes, so what is stored can be looked at.
        intake._stopping = True
        assert await intake.submit([first, second]) == 2
        assert await intake.submit([first]) == 0  # Meta's redelivery of a stored message
        entries = raw.xrange("whatsapp:queue:stream")
        assert [decode_message(e[1][b"r"]).text for e in entries] == ["um", "dois"]
        assert raw.lrange("whatsapp:queue:order:5511911110001", 0, -1) == [e[0] for e in entries]
        assert 0 < raw.ttl("whatsapp:seen:message:" + first.id) <= 7 * 24 * 3600
    finally:
        await intake.close()


async def test_one_conversation_alternating_between_two_instances_runs_in_order_one_at_a_time(
    redis_url: str, raw: "redis.Redis[bytes]"
) -> None:
    bot = Bot(delay=0.05)
    sender = "5511911110002"
    texts = [f"m{i}" for i in range(12)]
    async with instance(redis_url, bot, "a") as a, instance(redis_url, bot, "b") as b:
        for index, text in enumerate(texts):
            await (a, b)[index % 2].submit([message(sender, text)])
        await settle(a, b)
    assert bot.texts() == texts
    assert bot.overlaps == 0
    assert {name for name, _ in bot.turns} <= {"a", "b"}
    # Finished entries are acknowledged and deleted: the stream holds only unfinished work.
    assert raw.xlen("whatsapp:queue:stream") == 0
    assert not raw.exists("whatsapp:queue:order:" + sender)


async def test_conversations_run_concurrently_across_instances(
    redis_url: str, raw: "redis.Redis[bytes]"
) -> None:
    bot = Bot(delay=0.3)
    async with instance(redis_url, bot, "a") as a, instance(redis_url, bot, "b") as b:
        for i in range(8):
            await a.submit([message(f"55119222200{i:02d}", "oi")])
        started = asyncio.get_running_loop().time()
        await settle(a, b)
        elapsed = asyncio.get_running_loop().time() - started
    assert len(bot.turns) == 8
    assert bot.max_concurrent >= 4
    assert elapsed < 8 * 0.3  # not one after the other


async def test_message_two_read_by_b_waits_for_message_one_in_flight_on_a(
    redis_url: str, raw: "redis.Redis[bytes]"
) -> None:
    bot = Bot(delay=0.4)
    sender = "5511911110003"
    async with instance(redis_url, bot, "a") as a:
        await a.submit([message(sender, "primeira")])
        await asyncio.wait_for(bot.started.wait(), 5)
        async with instance(redis_url, bot, "b") as b:
            await b.submit([message(sender, "segunda")])
            await settle(a, b)
    assert bot.texts() == ["primeira", "segunda"]
    assert bot.overlaps == 0


async def test_a_killed_instances_messages_are_answered_by_the_survivor_after_claim_idle(
    redis_url: str, raw: "redis.Redis[bytes]"
) -> None:
    bot = Bot(delay=0.05)
    bot.hang = {"pendurada"}  # the turn under way when the instance dies
    sender = "5511911110004"
    async with instance(redis_url, bot, "a") as a:
        await a.submit([message(sender, "pendurada")])
        await asyncio.wait_for(bot.started.wait(), 5)
        await a.submit([message(sender, "depois"), message("5511911110005", "outra")])
        await asyncio.sleep(0.1)  # a reads them too
        await kill(a)
    bot.hang = set()
    started = asyncio.get_running_loop().time()
    async with instance(redis_url, bot, "b") as b:
        await settle(b)
        elapsed = asyncio.get_running_loop().time() - started
        health = await b.stats()
    # Run again by b: the turn that never finished, then the rest, in order.
    assert [text for name, text in bot.turns if name == "b" and text != "outra"] == [
        "pendurada",
        "depois",
    ]
    assert "outra" in bot.texts()
    assert elapsed >= 0.3  # not before the dead instance's claim went idle
    assert health["queue_reclaimed"] >= 1
    assert health["pending"] == 0


async def test_a_turn_run_again_knows_it_is_a_re_run_and_nothing_else_does(
    redis_url: str, raw: "redis.Redis[bytes]"
) -> None:
    bot = Bot()
    bot.hang = {"pendurada"}
    sender = "5511911110017"
    async with instance(redis_url, bot, "a") as a:
        await a.submit([message(sender, "pendurada")])
        await asyncio.wait_for(bot.started.wait(), 5)
        await kill(a)
    bot.hang = set()
    bot.failing_once = {"falha uma vez"}
    async with instance(redis_url, bot, "b") as b:
        await b.submit([message(sender, "falha uma vez"), message(sender, "normal")])
        await settle(b)
    assert bot.attempts == [
        ("pendurada", 1, 1),
        ("pendurada", 2, 2),  # its instance died: run again by b
        ("falha uma vez", 1, 1),
        ("falha uma vez", 2, 2),  # it raised: retried
        ("normal", 1, 1),
    ]
    assert turn_attempt() == 1  # outside any turn


async def test_a_long_turn_keeps_its_claim(redis_url: str, raw: "redis.Redis[bytes]") -> None:
    bot = Bot(delay=2.0)  # over three times claim_idle_seconds
    sender = "5511911110006"
    async with instance(redis_url, bot, "a") as a, instance(redis_url, bot, "b") as b:
        await a.submit([message(sender, "lenta")])
        await settle(a, b)
    assert bot.texts() == ["lenta"]  # b never took it for abandoned
    assert bot.overlaps == 0


async def test_runs_ending_at_any_moment_leave_no_renewer_and_no_false_expiry(
    redis_url: str, raw: "redis.Redis[bytes]", caplog: pytest.LogCaptureFixture
) -> None:
    # Turns of random length end at every phase of the renewer's cycle (every 0.1 s here). A
    # renewal that met the run's own release logged "the lease ... expired during a turn"; a
    # renewer whose cancellation redis-py lost kept running, and logging, for good.
    import random

    class RandomBot(Bot):
        def handler(self, name: str) -> Callable[[InboundMessage], Any]:
            async def turn(msg: InboundMessage) -> None:
                await asyncio.sleep(random.uniform(0, 0.25))
                self.turns.append((name, msg.text))

            return turn

    bot = RandomBot()
    senders = [f"55119222{index:05d}" for index in range(8)]
    with caplog.at_level("WARNING", logger="connectors.whatsapp.core.queue.redis_stream"):
        async with instance(redis_url, bot, "a", claim_idle_seconds=0.3) as a:
            for round_ in range(25):
                await a.submit([message(sender, f"r{round_}") for sender in senders])
                await asyncio.sleep(random.uniform(0.2, 0.4))
            await settle(a)
            await asyncio.sleep(0.3)  # a leaked renewer would have woken by now
            renewers = [
                task
                for task in asyncio.all_tasks()
                if getattr(task.get_coro(), "__qualname__", "").endswith("._renew")
            ]
    assert len(bot.turns) == 25 * len(senders)
    assert renewers == []
    assert "expired during a turn" not in caplog.text


async def test_health_counts_the_entries_claimed_by_a_turn_under_way(
    redis_url: str, raw: "redis.Redis[bytes]"
) -> None:
    bot = Bot()
    bot.hang = {"em curso"}
    sender = "5511911110016"
    async with instance(redis_url, bot, "a", claim_idle_seconds=30) as a:
        await a.submit([message(sender, "em curso"), message(sender, "na fila")])
        await asyncio.wait_for(bot.started.wait(), 5)
        health = await a.stats()
        await kill(a)  # the hung turn never ends
    assert (health["running_here"], health["pending"]) == (1, 2)
    assert health["claimed"] >= 1  # read by this instance, not finished


async def test_a_finished_turn_is_not_run_again_and_its_done_mark_expires(
    redis_url: str, raw: "redis.Redis[bytes]"
) -> None:
    bot = Bot()
    first = message("5511911110007", "uma vez")
    async with instance(redis_url, bot, "a", done_ttl_seconds=120) as a:
        await a.submit([first])
        await settle(a)
        # Requeued by hand as if redelivered after a crash right after the turn ended.
        raw.delete("whatsapp:seen:message:" + first.id)
        await a.submit([first])
        await settle(a)
        stats = await a.stats()
    assert bot.texts() == ["uma vez"]
    assert stats["queue_already_done"] == 1
    assert 0 < raw.ttl(DONE_PREFIX + first.id) <= 120


async def test_a_turn_that_keeps_raising_becomes_a_dead_letter_and_the_conversation_goes_on(
    redis_url: str, raw: "redis.Redis[bytes]", caplog: pytest.LogCaptureFixture
) -> None:
    bot = Bot()
    bot.failing = {"quebra"}
    sender = "5511911110008"
    broken = message(sender, "quebra")
    async with instance(redis_url, bot, "a", max_attempts=3) as a:
        await a.submit([broken, message(sender, "depois")])
        await settle(a)
        stats = await a.stats()
        [letter] = await a.dead_letters()
    assert bot.texts() == ["depois"]
    assert stats["dead_letters"] == 1
    assert stats["queue_turn_failures"] == 3
    assert (letter.wamid, letter.conversation, letter.attempts) == (broken.id, sender, 3)
    assert "exploded" in letter.error
    assert broken.id in caplog.text and sender in caplog.text

    # Fixed, then put back with the command line: it runs once more.
    bot.failing = set()
    result = run_cli(redis_url, "requeue", "--all")
    assert result.returncode == 0, result.stderr
    async with instance(redis_url, bot, "a") as a:
        await settle(a)
    assert bot.texts() == ["depois", "quebra"]
    assert raw.xlen("whatsapp:queue:dead") == 0


def run_cli(redis_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "connectors.whatsapp.core.queue", *args],
        cwd=PROJECT_ROOT,
        env=child_env({"WHATSAPP_REDIS_URL": redis_url}),
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_the_command_line_lists_dead_letters(
    redis_url: str, raw: "redis.Redis[bytes]"
) -> None:
    bot = Bot()
    bot.failing = {"quebra"}
    broken = message("5511911110009", "quebra")
    async with instance(redis_url, bot, "a", max_attempts=1) as a:
        await a.submit([broken])
        await settle(a)
    listed = run_cli(redis_url, "dead-letters")
    assert listed.returncode == 0, listed.stderr
    assert broken.id in listed.stdout and "5511911110009" in listed.stdout
    assert "exploded" in listed.stdout
    unknown = run_cli(redis_url, "requeue", "0-1")
    assert unknown.returncode != 0
    assert "0-1" in unknown.stderr


async def test_beyond_max_pending_the_webhook_is_refused(
    redis_url: str, raw: "redis.Redis[bytes]"
) -> None:
    intake = RedisStreamIntake(url=redis_url, consumer="a", max_pending=2)
    intake._stopping = True  # nothing consumes
    try:
        await intake.submit([message("5511911110010", "1"), message("5511911110010", "2")])
        with pytest.raises(QueueFull):
            await intake.submit([message("5511911110010", "3")])
        stats = await intake.stats()
        assert (stats["pending"], stats["max_pending"], stats["refused_full"]) == (2, 2, 1)
    finally:
        await intake.close()


async def test_cancelling_join_always_ends_it(redis_url: str, raw: "redis.Redis[bytes]") -> None:
    """`asyncio.wait_for(join(), ...)` at its bound: redis-py loses a cancellation that lands in
    its pooled-connection check, and an unshielded poll then went on for ever (about 1 in 16
    cancellations, measured)."""
    intake = RedisStreamIntake(url=redis_url, consumer="a")
    intake._stopping = True  # nothing consumes: the stream never empties
    try:
        await intake.submit([message("5511911110018", "oi")])
        stuck = 0
        for attempt in range(200):  # bounds of 1 to 50 ms: a cancellation at every phase
            bound = 0.001 + 0.049 * ((attempt * 37) % 200) / 200
            bounded = asyncio.ensure_future(asyncio.wait_for(intake.join(), bound))
            done, _ = await asyncio.wait({bounded}, timeout=1)
            stuck += not done
            if done:
                assert isinstance(bounded.exception(), asyncio.TimeoutError)
        assert stuck == 0
    finally:
        await intake.close()


async def test_redis_unreachable_refuses_the_webhook() -> None:
    intake = RedisStreamIntake(url=f"redis://127.0.0.1:{free_port()}/0", consumer="a")
    try:
        with pytest.raises(QueueUnavailable):
            await intake.submit([message("5511911110011", "oi")])
        assert "queue_error" in await intake.stats()
    finally:
        await intake.close()


async def drain_after_the_first_turn(
    redis_url: str, bot: Bot, sender: str, count: int, **options: Any
) -> None:
    """Instance a gets `count` messages of one conversation and is drained during the first."""
    async with instance(redis_url, bot, "a", **options) as a:
        await a.submit([message(sender, f"m{i}") for i in range(count)])
        await asyncio.wait_for(bot.started.wait(), 5)
        assert await a.drain(timeout=5)
    assert bot.texts() == ["m0"]


async def the_next_instance_goes_on_at_once(redis_url: str, bot: Bot, count: int) -> None:
    """Instance b runs the rest at once (a wake-up entry), not after its claim_idle_seconds."""
    started = asyncio.get_running_loop().time()
    async with instance(redis_url, bot, "b", claim_idle_seconds=30) as b:
        await settle(b)
    assert bot.texts() == [f"m{i}" for i in range(count)]
    assert asyncio.get_running_loop().time() - started < 5


async def test_drain_finishes_the_turn_under_way_and_leaves_the_rest_for_the_others(
    redis_url: str, raw: "redis.Redis[bytes]"
) -> None:
    bot = Bot(delay=0.3)
    sender = "5511911110012"
    # a's consumer blocks in XREADGROUP for 1 s: the turn ends, and hands the rest over, while
    # that read still waits (it once took the hand-over's wake-up for itself, and b waited for
    # claim_idle_seconds).
    await drain_after_the_first_turn(redis_url, bot, sender, 4, claim_idle_seconds=3)
    assert raw.llen("whatsapp:queue:order:" + sender) == 3  # the rest waits in Redis
    await the_next_instance_goes_on_at_once(redis_url, bot, 4)


async def test_a_message_that_arrives_as_its_conversations_turn_ends_is_not_left_waiting(
    redis_url: str, raw: "redis.Redis[bytes]"
) -> None:
    """Each message comes in just as the turn before it ends: Redis runs the end-of-turn script
    (the list is empty: the lease is given back) and then the webhook's submit, and the
    consumer's read can hand the new entry over while the run is still ending. It used to be
    skipped as running, and waited for claim_idle_seconds (chains like these stalled within a
    few turns)."""
    senders = [f"55119111101{i:02d}" for i in range(8)]
    bot = Bot()
    count = 40
    record = bot.handler("a")
    submits: list[asyncio.Task[int]] = []
    all_done = asyncio.Event()
    intake = RedisStreamIntake(url=redis_url, consumer="a", claim_idle_seconds=30)

    async def turn(msg: InboundMessage) -> None:
        await record(msg)
        if len(bot.turns) == count * len(senders):
            all_done.set()
        following = int((msg.text or "m0")[1:]) + 1
        if following < count:  # the next webhook lands while this turn's end is written
            loop = asyncio.get_running_loop()
            submit = intake.submit([message(msg.sender, f"m{following}")])
            loop.call_soon(lambda: submits.append(loop.create_task(submit)))

    intake.bind(turn)
    await intake.start()
    try:
        await intake.submit([message(sender, "m0") for sender in senders])
        with contextlib.suppress(asyncio.TimeoutError):  # a stalled chain fails below
            await asyncio.wait_for(all_done.wait(), 10)
        await asyncio.gather(*submits)
    finally:
        await intake.close()
    assert len(bot.turns) == count * len(senders)
    assert bot.overlaps == 0


async def test_a_lease_that_expired_during_the_last_turn_is_still_handed_over_at_once(
    redis_url: str, raw: "redis.Redis[bytes]"
) -> None:
    """The loop blocked for longer than claim_idle_seconds (a model loading): the lease was gone
    when the draining instance ended its turn; the rest still goes to the next one at once."""
    bot = Bot(delay=0.2)
    bot.blocking = {"m0": 1.5}
    sender = "5511911110016"
    await drain_after_the_first_turn(redis_url, bot, sender, 3, claim_idle_seconds=0.9)
    assert not raw.exists("whatsapp:queue:lease:" + sender)  # expired, not given back
    await the_next_instance_goes_on_at_once(redis_url, bot, 3)


async def test_conversations_waiting_for_a_free_slot_at_the_drain_go_on_elsewhere_at_once(
    redis_url: str, raw: "redis.Redis[bytes]"
) -> None:
    """A reclaim takes up to 100 entries whatever the free slots: those not started wait in the
    backlog. Drained then, the instance used to keep them (their claim renewed by the reclaim),
    and the next instance waited claim_idle_seconds for them."""
    bot = Bot(delay=0.5)
    writer = RedisStreamIntake(url=redis_url, consumer="w")
    writer._stopping = True  # stores only
    stream = "whatsapp:queue:stream"
    raw.xgroup_create(stream, "whatsapp", id="0", mkstream=True)
    try:
        await writer.submit([message("5511911110019", "c1"), message("5511911110020", "c2")])
    finally:
        await writer.close()
    raw.xreadgroup("whatsapp", "dead", {stream: ">"})  # an instance that died holding both
    async with instance(redis_url, bot, "a", concurrency=1) as a:  # claim_idle 0.6 s
        await asyncio.wait_for(bot.started.wait(), 5)  # c1 reclaimed and running, c2 waits
        assert await a.drain(timeout=5)
    assert bot.texts() == ["c1"]
    started = asyncio.get_running_loop().time()
    async with instance(redis_url, bot, "b", claim_idle_seconds=30) as b:
        await settle(b)
    assert bot.texts() == ["c1", "c2"]
    assert asyncio.get_running_loop().time() - started < 5


async def test_a_turn_that_outlives_the_drain_timeout_runs_again_on_another_instance(
    redis_url: str, raw: "redis.Redis[bytes]"
) -> None:
    bot = Bot()
    bot.hang = {"eterna"}
    sender = "5511911110013"
    async with instance(redis_url, bot, "a") as a:
        await a.submit([message(sender, "eterna"), message(sender, "depois")])
        await asyncio.wait_for(bot.started.wait(), 5)
        assert not await a.drain(timeout=0.2)
    bot.hang = set()
    async with instance(redis_url, bot, "b", claim_idle_seconds=30) as b:
        await settle(b, timeout=5)  # at once, not after claim_idle_seconds
    assert bot.turns == [("b", "eterna"), ("b", "depois")]


async def test_statuses_and_webhooks_without_messages_store_nothing(
    redis_url: str, raw: "redis.Redis[bytes]"
) -> None:
    intake = RedisStreamIntake(url=redis_url, consumer="a")
    try:
        assert await intake.submit([]) == 0
        assert [e for e in parse_webhook(envelope(statuses=[]))] == []
        assert raw.xlen("whatsapp:queue:stream") == 0
    finally:
        await intake.close()
