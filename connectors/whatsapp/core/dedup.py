"""Remembering which message ids were already processed, so a redelivery never runs twice.

Meta redelivers a webhook it thinks was not acknowledged, and delivers to every app subscribed to
the account (https://developers.facebook.com/docs/whatsapp/cloud-api/webhooks/overview), so the
same `wamid` can arrive several times, even at the same moment. Rasa does not de-duplicate. A store
answers one question atomically: "is this the first time this key is seen?".

- `InMemoryDedupStore`: one process; bounded in entries, entries expire.
- `RedisDedupStore`: shared by every instance behind a load balancer, with `SET key 1 NX EX ttl`.
"""

import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol

logger = logging.getLogger(__name__)

REDIS_PREFIX = "whatsapp:seen:"
"""Where `RedisDedupStore` keeps its marks by default."""
MESSAGE_KEY = "message:"
"""The key of an inbound message is this and its wamid (statuses have keys of their own); the
durable queue checks the same mark in Redis (`queue/redis_stream.py`)."""


class DedupStore(Protocol):
    """Answers, atomically, whether a key is seen for the first time (and remembers it)."""

    async def first_seen(self, key: str) -> bool: ...

    async def close(self) -> None: ...


class InMemoryDedupStore:
    """A bounded, expiring set of keys, for a single process.

    When full, the oldest keys are forgotten first. Checks and inserts are O(1), and asyncio runs
    them without interleaving (no await between the check and the insert), so two concurrent
    deliveries of one key cannot both be first.
    """

    def __init__(
        self,
        *,
        ttl_seconds: float,
        max_entries: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._ttl = ttl_seconds
        self._max_entries = max_entries
        self._clock = clock
        self._expiries: OrderedDict[str, float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._expiries)

    def seen_now(self, key: str) -> bool:
        """The synchronous form of `first_seen`: True the first time `key` is seen."""
        now = self._clock()
        self._forget_expired(now)
        expiry = self._expiries.get(key)
        if expiry is not None and expiry > now:
            return False
        self._expiries[key] = now + self._ttl
        self._expiries.move_to_end(key)
        while len(self._expiries) > self._max_entries:
            self._expiries.popitem(last=False)
        return True

    async def first_seen(self, key: str) -> bool:
        return self.seen_now(key)

    async def close(self) -> None:
        self._expiries.clear()

    def _forget_expired(self, now: float) -> None:
        # Entries are kept in insertion order and share one TTL, so expired ones are at the front.
        while self._expiries:
            oldest_key, oldest_expiry = next(iter(self._expiries.items()))
            if oldest_expiry > now:
                break
            del self._expiries[oldest_key]


class RedisDedupStore:
    """Keys in Redis, set with `SET NX EX`: atomic across processes and machines.

    If Redis cannot be reached, the message is still processed (a lost message is worse than a rare
    double) and an in-process store catches redeliveries to this instance meanwhile; the error is
    logged.
    """

    def __init__(
        self,
        *,
        url: str,
        ttl_seconds: int,
        prefix: str = REDIS_PREFIX,
        fallback_max_entries: int = 100_000,
    ) -> None:
        import redis.asyncio

        self._redis = redis.asyncio.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self._ttl = ttl_seconds
        self._prefix = prefix
        self._fallback = InMemoryDedupStore(
            ttl_seconds=ttl_seconds, max_entries=fallback_max_entries
        )

    async def first_seen(self, key: str) -> bool:
        try:
            was_set = await self._redis.set(self._prefix + key, b"1", nx=True, ex=self._ttl)
        except Exception as error:  # redis raises many types; none may lose the message
            logger.error(
                "De-duplication store unreachable (%s); using this process's memory.", error
            )
            return self._fallback.seen_now(key)
        # Remember locally as well, so an outage right after this does not let a redelivery through.
        self._fallback.seen_now(key)
        return bool(was_set)

    async def close(self) -> None:
        await self._redis.close()
