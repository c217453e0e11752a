"""AtomicRedisLockStore on a real redis-server: order, expiry, release, settings, loading."""

import asyncio
import logging
import random
import time
from pathlib import Path

import pytest
import redis
from rasa.core.lock_store import LockError, LockStore
from rasa.core.utils import number_of_sanic_workers
from rasa.utils.endpoints import EndpointConfig, read_endpoint_config

from connectors.lock_store import AtomicRedisLockStore
from tests.support.processes import free_port
from tests.support.redis_server import redis_server

CLASS_PATH = "connectors.lock_store.AtomicRedisLockStore"


def tickets(store: AtomicRedisLockStore, conversation_id: str = "c1") -> int:
    lock = store.get_lock(conversation_id)
    return 0 if lock is None else len(lock.tickets)


async def wait_until(condition: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.005)


async def test_turns_run_one_at_a_time_in_the_order_tickets_were_issued(
    store: AtomicRedisLockStore,
) -> None:
    entered: list[int] = []
    inside = 0
    most_inside = 0
    go = asyncio.Event()

    async def turn(index: int) -> None:
        nonlocal inside, most_inside
        async with store.lock("c1"):
            await go.wait()
            inside += 1
            most_inside = max(most_inside, inside)
            entered.append(index)
            await asyncio.sleep(0.01)
            inside -= 1

    tasks = []
    for index in range(8):
        tasks.append(asyncio.create_task(turn(index)))
        # the next turn asks for its ticket only once this one has one
        await wait_until(lambda n=index: tickets(store) == n + 1)
    go.set()
    await asyncio.gather(*tasks)

    assert entered == list(range(8))
    assert most_inside == 1
    assert store.get_lock("c1") is None


async def test_a_waiter_is_woken_when_the_holder_releases_not_at_its_next_poll(
    store: AtomicRedisLockStore,
) -> None:
    release = asyncio.Event()

    async def holder() -> None:
        async with store.lock("c1"):
            await release.wait()

    async def waiter() -> float:
        async with store.lock("c1", wait_time_in_seconds=5):
            return time.monotonic()

    held = asyncio.create_task(holder())
    await wait_until(lambda: tickets(store) == 1)
    waiting = asyncio.create_task(waiter())
    await wait_until(lambda: tickets(store) == 2)
    released_at = time.monotonic()
    release.set()
    acquired_at = await asyncio.wait_for(waiting, 3)
    await held
    # Polling every 5 s would take up to 5 s; the pub/sub wake-up takes a round trip or two.
    assert acquired_at - released_at < 1.0


async def test_a_dead_holders_ticket_expires_after_its_lifetime(
    store: AtomicRedisLockStore,
) -> None:
    # A ticket issued and never renewed nor released: what a process SIGKILLed leaves behind
    # (test_processes.py kills a real one).
    store.issue_ticket("c1", lock_lifetime=0.6)
    started = time.monotonic()
    async with store.lock("c1", wait_time_in_seconds=0.05):
        waited = time.monotonic() - started
    assert 0.4 < waited < 2.0


async def test_a_live_turn_longer_than_the_lifetime_keeps_the_lock(
    store: AtomicRedisLockStore,
) -> None:
    # Rasa's RedisLockStore lets the next turn in once the lifetime has passed, even though the
    # first turn is still running; here the holder renews its ticket.
    events: list[str] = []

    async def long_turn() -> None:
        async with store.lock("c1", lock_lifetime=0.6):
            events.append("long in")
            await asyncio.sleep(1.5)
            events.append("long out")

    async def next_turn() -> None:
        async with store.lock("c1", lock_lifetime=0.6, wait_time_in_seconds=0.05):
            events.append("next in")

    first = asyncio.create_task(long_turn())
    await wait_until(lambda: events == ["long in"])
    await asyncio.gather(first, next_turn())
    assert events == ["long in", "long out", "next in"]


async def test_the_ticket_is_released_when_the_turn_raises(store: AtomicRedisLockStore) -> None:
    with pytest.raises(RuntimeError):
        async with store.lock("c1"):
            raise RuntimeError("the turn failed")
    assert store.get_lock("c1") is None
    async with store.lock("c1"):
        pass


async def test_a_waiter_cancelled_while_waiting_gives_its_ticket_back(
    store: AtomicRedisLockStore,
) -> None:
    release = asyncio.Event()

    async def holder() -> None:
        async with store.lock("c1"):
            await release.wait()

    async def waiter() -> None:
        async with store.lock("c1"):
            raise AssertionError("must not get the lock")

    held = asyncio.create_task(holder())
    await wait_until(lambda: tickets(store) == 1)
    waiting = asyncio.create_task(waiter())
    await wait_until(lambda: tickets(store) == 2)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert tickets(store) == 1
    release.set()
    await held
    assert store.get_lock("c1") is None


async def test_keys_expire_with_their_last_ticket_and_numbers_are_never_reused(
    store: AtomicRedisLockStore, raw: "redis.Redis[bytes]"
) -> None:
    first = store.issue_ticket("c1", lock_lifetime=0.3)
    ttl_ms = raw.pttl("lock:c1:tickets")
    assert 0 < ttl_ms <= 1300
    await asyncio.sleep(1.5)
    assert raw.exists("lock:c1:tickets") == 0
    assert store.issue_ticket("c1", lock_lifetime=5) > first


async def test_conversations_do_not_wait_for_each_other(store: AtomicRedisLockStore) -> None:
    async def other_conversation() -> None:
        async with store.lock("c2"):
            pass

    async with store.lock("c1"):
        await asyncio.wait_for(other_conversation(), 2)


async def test_close_ends_a_subscription_that_keeps_reconnecting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # On Python 3.10 a cancel that meets one of redis-py's timeouts can be lost: taking a
    # connection from the pool reads under `async_timeout(0)`, whose own cancel absorbs ours
    # (https://github.com/aio-libs-abandoned/async-timeout/issues/229). A close() that cancelled
    # the listener once, then waited for it, hung for good. A listener refused by a password it
    # lacks and retrying at once takes connections all the time, so most closes meet that window.
    monkeypatch.setattr("connectors.lock_store.LISTENER_RETRY_SECONDS", 0.0)
    with redis_server() as url:
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        admin: redis.Redis[bytes] = redis.Redis(host="127.0.0.1", port=port)
        admin.config_set("requirepass", "s3cret")
        admin.close()
        logging.getLogger("connectors.lock_store").disabled = True
        try:
            for attempt in range(40):
                without = AtomicRedisLockStore(host="127.0.0.1", port=port)
                with pytest.raises(LockError):
                    async with without.lock("c1"):
                        pass
                await asyncio.sleep(0.0005 * attempt)
                # asyncio.wait, not wait_for: cancelling a close() that hangs could hang as well
                _, late = await asyncio.wait({asyncio.ensure_future(without.close())}, timeout=5)
                assert not late, f"close() #{attempt} did not return: its listener outlived it"
        finally:
            logging.getLogger("connectors.lock_store").disabled = False


async def test_turns_ending_at_any_moment_leave_no_keep_alive_and_no_false_expiry(
    store: AtomicRedisLockStore, caplog: pytest.LogCaptureFixture
) -> None:
    # Turns of random length end at every phase of the holder's renewal (every 0.1 s here). A
    # renewal whose cancellation redis-py lost (the listener's bug, above) reached Redis after the
    # release and logged "the held ticket ... expired" for a turn that had simply ended.
    turns: list[str] = []

    async def turn(conversation_id: str) -> None:
        async with store.lock(conversation_id, lock_lifetime=0.3, wait_time_in_seconds=0.05):
            await asyncio.sleep(random.uniform(0, 0.25))
            turns.append(conversation_id)

    conversations = [f"c{index}" for index in range(8)]
    with caplog.at_level("WARNING", logger="connectors.lock_store"):
        for _ in range(30):
            await asyncio.gather(*(turn(conversation) for conversation in conversations))
        await asyncio.sleep(0.15)  # a keep-alive that outlived its turn would have woken by now
        keep_alives = [
            task
            for task in asyncio.all_tasks()
            if getattr(task.get_coro(), "__qualname__", "").endswith("._keep_alive")
        ]
    assert len(turns) == 30 * len(conversations)
    assert keep_alives == []
    assert "expired" not in caplog.text


def test_the_synchronous_api_is_atomic_per_call_and_matches_rasas_semantics(
    store: AtomicRedisLockStore,
) -> None:
    assert store.get_lock("c1") is None
    assert not store.is_someone_waiting("c1")
    first = store.issue_ticket("c1", 10)
    second = store.issue_ticket("c1", 10)
    lock = store.get_lock("c1")
    assert [ticket.number for ticket in lock.tickets] == [first, second]
    assert lock.now_serving == first
    assert not lock.is_locked(first) and lock.is_locked(second)
    assert store.is_someone_waiting("c1")

    store.finish_serving("c1", first)
    assert store.get_lock("c1").now_serving == second
    store.cleanup("c1", second)
    assert store.get_lock("c1") is None

    # save_lock replaces the tickets (expired ones dropped) and keeps the counter ahead of them
    lock = store.create_lock("c2")
    lock.issue_ticket(10)
    lock.tickets[0].number = 10_000
    store.save_lock(lock)
    assert [ticket.number for ticket in store.get_lock("c2").tickets] == [10_000]
    assert store.issue_ticket("c2", 10) > 10_000
    store.delete_lock("c2")
    assert store.get_lock("c2") is None


async def test_key_prefix_and_db_are_where_the_tickets_live(
    redis_port: int, raw: "redis.Redis[bytes]"
) -> None:
    other_db: redis.Redis[bytes] = redis.Redis(host="127.0.0.1", port=redis_port, db=4)
    lock_store = AtomicRedisLockStore(host="127.0.0.1", port=redis_port, db=4, key_prefix="mybot")
    try:
        async with lock_store.lock("+5511987654321"):
            assert other_db.zcard("mybot:lock:+5511987654321:tickets") == 1
            assert raw.keys("*") == []  # nothing in db 1
        assert other_db.exists("mybot:lock:+5511987654321:tickets") == 0
    finally:
        await lock_store.close()
        other_db.flushdb()
        other_db.close()


def test_a_non_alphanumeric_prefix_is_ignored_as_rasa_does(
    redis_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="connectors.lock_store"):
        lock_store = AtomicRedisLockStore(host="127.0.0.1", port=redis_port, key_prefix="my-bot")
    assert lock_store.key_prefix == "lock:"
    assert "my-bot" in caplog.text


async def test_password() -> None:
    with redis_server() as url:
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        admin: redis.Redis[bytes] = redis.Redis(host="127.0.0.1", port=port)
        admin.config_set("requirepass", "s3cret")
        admin.close()

        without = AtomicRedisLockStore(host="127.0.0.1", port=port)
        with pytest.raises(LockError):
            async with without.lock("c1"):
                pass
        await without.close()

        with_password = LockStore.create(
            EndpointConfig(url="127.0.0.1", type=CLASS_PATH, port=port, password="s3cret")
        )
        async with with_password.lock("c1"):
            assert with_password.is_someone_waiting("c1")
        await with_password.close()


async def test_redis_unreachable_is_a_lock_error() -> None:
    lock_store = AtomicRedisLockStore(host="127.0.0.1", port=free_port(), socket_timeout=1)
    with pytest.raises(LockError):
        async with lock_store.lock("c1"):
            pass
    await lock_store.close()


async def test_loaded_from_endpoints_yml_by_class_path_as_rasa_loads_it(
    tmp_path: Path, redis_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_HOST", "127.0.0.1")
    endpoints = tmp_path / "endpoints.yml"
    endpoints.write_text(
        "lock_store:\n"
        f"  type: {CLASS_PATH}\n"
        "  url: ${REDIS_HOST}\n"
        f"  port: {redis_port}\n"
        "  db: 6\n"
        "  key_prefix: lojaexemplo\n"
    )
    config = read_endpoint_config(str(endpoints), "lock_store")
    lock_store = LockStore.create(config)
    assert isinstance(lock_store, AtomicRedisLockStore)
    assert lock_store.key_prefix == "lojaexemplo:lock:"
    check: redis.Redis[bytes] = redis.Redis(host="127.0.0.1", port=redis_port, db=6)
    try:
        async with lock_store.lock("c1"):
            assert check.exists("lojaexemplo:lock:c1:tickets") == 1
    finally:
        await lock_store.close()
        check.close()

    # and Rasa accepts it for several Sanic workers, as it does its own RedisLockStore
    monkeypatch.setenv("SANIC_WORKERS", "3")
    assert number_of_sanic_workers(config) == 3


def test_an_unknown_option_is_reported_by_name() -> None:
    config = EndpointConfig(url="127.0.0.1", type=CLASS_PATH, port=6379, passwrod="x")
    with pytest.raises(ValueError, match="passwrod"):
        AtomicRedisLockStore(endpoint_config=config)


async def test_a_redis_url_works_as_the_url(redis_url: str, raw: "redis.Redis[bytes]") -> None:
    lock_store = LockStore.create(
        EndpointConfig(url=redis_url.rsplit("/", 1)[0] + "/1", type=CLASS_PATH)
    )
    try:
        async with lock_store.lock("c1"):
            assert raw.exists("lock:c1:tickets") == 1
    finally:
        await lock_store.close()
