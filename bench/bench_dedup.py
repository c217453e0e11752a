"""What "was this wamid already processed?" costs per message, next to the simplest answer.

Every inbound message asks the de-duplication store once (`processing.py`), in the background
after the 200. `InMemoryDedupStore` adds expiry (Meta redelivers for days, not forever) and a
bound on entries (memory) to a plain set; its baseline is `key in seen` + `seen.add(key)`.
`RedisDedupStore` (shared by every instance) adds a local fallback copy and error handling to
one `SET key 1 NX EX ttl`; its baseline is that bare command on the same redis-server, a
throwaway one on 127.0.0.1. Without redis-server installed, those rows are skipped with a note.
"""

import asyncio
import itertools
import shutil

import redis.asyncio
from _harness import Row, compare, compare_async, print_table

from connectors.whatsapp.core.config import DEFAULT_DEDUP_MAX_ENTRIES, DEFAULT_DEDUP_TTL_SECONDS
from connectors.whatsapp.core.dedup import InMemoryDedupStore, RedisDedupStore
from tests.support.redis_server import redis_server

KEYS = 100_000
SMALL_STORE = 10_000
REDIS_KEYS = 500
TTL = DEFAULT_DEDUP_TTL_SECONDS


def message_keys(count: int, run: int = 0) -> list[str]:
    """Keys as `processing.py` makes them, from wamid-like ids; `run` keeps runs apart."""
    return [f"message:wamid.HBgNNTUxMTk4NzY1NDMyMRUCABIY{run:03d}{i:08d}" for i in range(count)]


def set_first_seen(seen: set[str], keys: list[str]) -> int:
    """The baseline: a set's membership test and add, per key; returns how many were new."""
    new = 0
    for key in keys:
        if key not in seen:
            seen.add(key)
            new += 1
    return new


def memory_rows() -> list[Row]:
    keys = message_keys(KEYS)

    async def awaited_new() -> None:
        store = InMemoryDedupStore(ttl_seconds=TTL, max_entries=DEFAULT_DEDUP_MAX_ENTRIES)
        for key in keys:
            await store.first_seen(key)

    async def set_new_in_coroutine() -> None:
        set_first_seen(set(), keys)

    def sync_new() -> None:
        store = InMemoryDedupStore(ttl_seconds=TTL, max_entries=DEFAULT_DEDUP_MAX_ENTRIES)
        for key in keys:
            store.seen_now(key)

    full = InMemoryDedupStore(ttl_seconds=TTL, max_entries=DEFAULT_DEDUP_MAX_ENTRIES)
    full_set: set[str] = set()
    for key in keys:
        full.seen_now(key)
        full_set.add(key)

    def sync_duplicates() -> None:
        for key in keys:
            if full.seen_now(key):
                raise AssertionError("a duplicate was reported as new")

    def evicting() -> None:
        store = InMemoryDedupStore(ttl_seconds=TTL, max_entries=SMALL_STORE)
        for key in keys:
            store.seen_now(key)
        if len(store) != SMALL_STORE:
            raise AssertionError(f"the store holds {len(store)} keys, not {SMALL_STORE}")

    def set_new() -> None:
        set_first_seen(set(), keys)

    def set_duplicates() -> None:
        if set_first_seen(full_set, keys):
            raise AssertionError("a duplicate was reported as new")

    awaited = asyncio.run(compare_async(awaited_new, set_new_in_coroutine, repeats=5, warmup=1))
    return [
        Row.timed(
            f"first_seen (awaited), {KEYS:,} new keys, per key", _per_key(awaited, KEYS), "us"
        ),
        Row.timed(
            f"seen_now (sync), {KEYS:,} new keys, per key",
            _per_key(compare(sync_new, set_new, repeats=5, warmup=1), KEYS),
            "us",
        ),
        Row.timed(
            f"seen_now (sync), {KEYS:,} duplicates, per key",
            _per_key(compare(sync_duplicates, set_duplicates, repeats=5, warmup=1), KEYS),
            "us",
        ),
        Row.timed(
            f"seen_now (sync), {KEYS:,} new keys into a {SMALL_STORE:,}-key store (evicting), "
            "per key",
            _per_key(compare(evicting, set_new, repeats=5, warmup=1), KEYS),
            "us",
        ),
    ]


def _per_key(seconds: tuple[float, float], keys: int) -> tuple[float, float]:
    return seconds[0] / keys, seconds[1] / keys


async def redis_rows(url: str) -> list[Row]:
    store = RedisDedupStore(url=url, ttl_seconds=TTL)
    bare = redis.asyncio.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    runs = itertools.count()
    try:

        async def ours() -> None:
            for key in message_keys(REDIS_KEYS, next(runs)):
                if not await store.first_seen(key):
                    raise AssertionError("a new key was reported as seen")

        async def baseline() -> None:
            for key in message_keys(REDIS_KEYS, next(runs)):
                if not await bare.set("whatsapp:seen:" + key, b"1", nx=True, ex=TTL):
                    raise AssertionError("a new key was reported as seen")

        seconds = await compare_async(ours, baseline, repeats=5, warmup=1)
    finally:
        await store.close()
        await bare.close()
    return [
        Row.timed(
            f"RedisDedupStore.first_seen vs bare SET NX EX, {REDIS_KEYS:,} new keys, per key",
            _per_key(seconds, REDIS_KEYS),
            "us",
        )
    ]


def main() -> None:
    rows = memory_rows()
    note = ""
    if shutil.which("redis-server") is None:
        note = " Redis rows skipped: redis-server is not installed (apt-get install redis-server)."
    else:
        with redis_server() as url:
            rows += asyncio.run(redis_rows(url))
    first = rows[0]
    redis_part = (
        f"; RedisDedupStore costs {rows[-1].ours / rows[-1].baseline:.2f}x a bare SET NX EX "
        f"round trip ({rows[-1].ours:.0f} us per message)"
        if len(rows) > 4
        else ""
    )
    print_table(
        "De-duplication cost per message (medians of 5 alternated runs after a warm-up)",
        rows,
        ratio="ours/baseline",
        conclusion=(
            f"Conclusion: the in-memory store costs {first.ours:.1f} us per message "
            f"({first.ours / first.baseline:.1f}x a bare set, for expiry and a memory bound)"
            f"{redis_part}: negligible next to a bot turn.{note}"
        ),
    )


if __name__ == "__main__":
    main()
