"""A `redis.asyncio` client bound to the event loop that uses it, for the queue and the outbox.

A redis.asyncio connection belongs to the loop it was opened on. The Rasa channel has one loop
for its life, but the sync bridge makes a new one after a fork, and tests and the CLI run
several `asyncio.run` in turn: each loop gets a client of its own, made on first use.
"""

import asyncio
import contextlib
import hashlib
from collections.abc import Sequence
from typing import Any

import redis.asyncio
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError
from redis.exceptions import TimeoutError as RedisTimeoutError

RECONNECT: dict[str, Any] = {
    "retry": Retry(NoBackoff(), 1),
    "retry_on_error": [RedisConnectionError],
}
"""One retry on a dropped connection (Redis restarted: the pool's sockets are dead). The queue's
intake and the end of a turn check before they write, so running them twice changes nothing; at
worst an attempt is counted twice."""

STALLED = (RedisConnectionError, RedisTimeoutError)
"""A dropped connection or a timeout: what a command safe to run twice is tried again after."""
RETRY_STALLED: dict[str, Any] = {"retry": Retry(NoBackoff(), 1), "retry_on_error": list(STALLED)}
"""One retry after either, for clients whose commands may all run twice (GET, MGET, SET EX: the
identity store). redis-py applies it to single commands, not to pipelines."""


class LoopBoundRedis:
    """The client of the running loop: `client()` makes it on first use, `close()` drops it."""

    def __init__(
        self, url: str, *, socket_timeout: float = 5.0, socket_connect_timeout: float = 2.0
    ) -> None:
        self.url = url
        self._options: dict[str, Any] = {
            "socket_timeout": socket_timeout,
            "socket_connect_timeout": socket_connect_timeout,
            **RECONNECT,
        }
        self._client: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def current(self) -> Any:
        """The client made so far (None before first use or after `close`), without making one."""
        return self._client

    def client(self) -> Any:
        """The running loop's client (made now if this loop has none)."""
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            self._client = redis.asyncio.Redis.from_url(self.url, **self._options)
            self._loop = loop
        return self._client

    async def close(self) -> None:
        """Close the client's connections (errors ignored: it is going away anyway)."""
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                await client.close()


_SHAS: dict[str, str] = {}
"""SHA-1 of each Lua script run so far: Redis's script cache key, for EVALSHA."""


async def run_script(client: Any, lua: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
    """Run `lua` by its hash (EVALSHA), sending the script itself only when Redis does not know it
    yet (first use, or after a restart or SCRIPT FLUSH): the queue's and the outbox's scripts are
    then not sent whole with every call."""
    digest = _SHAS.get(lua)
    if digest is None:
        digest = _SHAS[lua] = hashlib.sha1(lua.encode()).hexdigest()
    try:
        return await client.evalsha(digest, len(keys), *keys, *args)
    except NoScriptError:
        return await client.eval(lua, len(keys), *keys, *args)
