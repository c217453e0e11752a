from collections.abc import AsyncIterator, Iterator
from urllib.parse import urlsplit

import pytest
import redis

from connectors.lock_store import AtomicRedisLockStore
from tests.support.redis_server import redis_server


@pytest.fixture(scope="package")
def redis_url() -> Iterator[str]:
    """One throwaway redis-server on 127.0.0.1 for the package."""
    with redis_server() as url:
        yield url


@pytest.fixture
def redis_port(redis_url: str) -> int:
    return int(urlsplit(redis_url).port or 0)


@pytest.fixture
def raw(redis_port: int) -> Iterator["redis.Redis[bytes]"]:
    """A plain client on the lock store's db (1), emptied before each test."""
    client: redis.Redis[bytes] = redis.Redis(host="127.0.0.1", port=redis_port, db=1)
    client.flushall()
    yield client
    client.close()


@pytest.fixture
async def store(raw: "redis.Redis[bytes]", redis_port: int) -> AsyncIterator[AtomicRedisLockStore]:
    lock_store = AtomicRedisLockStore(host="127.0.0.1", port=redis_port, db=1)
    yield lock_store
    await lock_store.close()
