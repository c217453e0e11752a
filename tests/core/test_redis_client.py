"""Lua scripts run by their hash, against a real redis-server."""

from collections.abc import Iterator

import pytest
import redis.asyncio

from connectors.whatsapp.core.redis_client import LoopBoundRedis, run_script
from tests.support.redis_server import redis_server

SCRIPT = "return redis.call('INCRBY', KEYS[1], ARGV[1])"


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with redis_server() as url:
        yield url


async def test_a_script_is_sent_whole_only_when_redis_does_not_know_it(redis_url: str) -> None:
    connection = LoopBoundRedis(redis_url)
    client = connection.client()
    observer = redis.asyncio.Redis.from_url(redis_url)
    try:
        await observer.script_flush()
        await observer.config_resetstat()
        results = [await run_script(client, SCRIPT, ["test:script"], [2]) for _ in range(3)]
        await observer.script_flush()  # as after a restart of Redis: its script cache is empty
        results.append(await run_script(client, SCRIPT, ["test:script"], [2]))
        stats = await observer.info("commandstats")
        assert results == [2, 4, 6, 8]
        # Each call by hash first; the script itself only on the first call and after the flush.
        assert stats["cmdstat_evalsha"]["calls"] == 4
        assert stats["cmdstat_eval"]["calls"] == 2
    finally:
        await observer.close()
        await connection.close()
