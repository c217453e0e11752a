import asyncio
from collections.abc import Iterator

import pytest

from connectors.whatsapp.core.dedup import InMemoryDedupStore, RedisDedupStore
from tests.support.processes import free_port
from tests.support.redis_server import redis_server


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_memory_store_answers_first_time_only() -> None:
    store = InMemoryDedupStore(ttl_seconds=60, max_entries=10)
    assert await store.first_seen("a")
    assert not await store.first_seen("a")
    assert await store.first_seen("b")


async def test_memory_store_entries_expire() -> None:
    clock = FakeClock()
    store = InMemoryDedupStore(ttl_seconds=60, max_entries=10, clock=clock)
    assert await store.first_seen("a")
    clock.now += 59
    assert not await store.first_seen("a")
    clock.now += 2
    assert await store.first_seen("a")
    assert len(store) == 1


async def test_memory_store_is_bounded_and_forgets_the_oldest_first() -> None:
    store = InMemoryDedupStore(ttl_seconds=3600, max_entries=3)
    for key in "abcd":
        assert await store.first_seen(key)
    assert len(store) == 3
    assert await store.first_seen("a")  # forgotten, so seen again
    assert not await store.first_seen("d")


async def test_memory_store_concurrent_checks_of_one_key_let_one_through() -> None:
    store = InMemoryDedupStore(ttl_seconds=60, max_entries=100)
    results = await asyncio.gather(*(store.first_seen("same") for _ in range(50)))
    assert results.count(True) == 1


def test_memory_store_rejects_a_zero_bound() -> None:
    with pytest.raises(ValueError):
        InMemoryDedupStore(ttl_seconds=1, max_entries=0)


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with redis_server() as url:
        yield url


async def test_redis_store_is_shared_between_instances(redis_url: str) -> None:
    first = RedisDedupStore(url=redis_url, ttl_seconds=60, prefix="test:shared:")
    second = RedisDedupStore(url=redis_url, ttl_seconds=60, prefix="test:shared:")
    try:
        results = await asyncio.gather(
            *(store.first_seen("wamid.1") for store in (first, second) for _ in range(10))
        )
        assert results.count(True) == 1
        assert await second.first_seen("wamid.2")
        assert not await first.first_seen("wamid.2")
    finally:
        await first.close()
        await second.close()


async def test_redis_store_sets_the_ttl(redis_url: str) -> None:
    import redis.asyncio

    store = RedisDedupStore(url=redis_url, ttl_seconds=123, prefix="test:ttl:")
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        await store.first_seen("k")
        ttl = await client.ttl("test:ttl:k")
        assert 0 < ttl <= 123
    finally:
        await store.close()
        await client.close()


async def test_redis_store_unreachable_still_processes_once_per_process(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = RedisDedupStore(url=f"redis://127.0.0.1:{free_port()}/0", ttl_seconds=60)
    try:
        assert await store.first_seen("m")
        assert not await store.first_seen("m")
    finally:
        await store.close()
    assert "unreachable" in caplog.text
