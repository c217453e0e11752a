"""`queue: redis`: accepted messages stored in a Redis stream, processed by every instance.

Why. With `queue: memory` a message that got its 200 waits in process memory, and Meta does not
redeliver what got a 200: a crash, an OOM kill or a deploy that outlives the drain timeout loses it.
Here the 200 is given only once every message of the webhook is in Redis, and whichever instance is
alive runs it.

How (keys under `prefix`, `whatsapp:queue:` by default):

- `stream`: one entry per accepted message (`w` the wamid, `c` the conversation, `r` the record
  of `records.py`), read by every instance through the consumer group `whatsapp` (`XREADGROUP`).
- `order:<conversation>`: the conversation's entry ids, in arrival order. Intake is one Lua script
  per webhook: for each new message (no `whatsapp:seen:message:<wamid>` mark yet), `XADD`,
  `RPUSH` its id to the conversation's list, then the mark (`EX dedup_ttl_seconds`). Either the
  whole webhook is stored or the endpoint answers 503.
- `lease:<conversation>`: which instance runs the conversation's turns (`SET NX PX`,
  `claim_idle_seconds`). An instance that reads an entry takes the lease of its conversation, or
  leaves the entry to the holder when another instance has it. The holder runs the list from its
  head, one turn at a time, renewing the lease (and `XCLAIM ... JUSTID` of the entry, so it is not
  taken for abandoned) every third of `claim_idle_seconds`; it gives the lease back in the same
  script that finds the list empty. So when instance A has message 1 in flight and instance B reads
  message 2, B finds A's lease and leaves message 2 to A, which runs it after message 1: one turn at
  a time per conversation across every instance, in arrival order, conversations concurrently.
- When a turn ends, one script writes the done mark (`whatsapp:done:<wamid>`, `EX
  dedup_ttl_seconds`), removes the id from the list, `XACK`s and `XDEL`s the entry: the stream holds
  only unfinished messages, so it stays bounded and its length is the backlog.
- Crash recovery: a dead instance stops renewing, its leases expire after `claim_idle_seconds`, and
  its entries (pending in the group, idle that long) are claimed by a live instance with
  `XAUTOCLAIM`, which takes the lease and runs the list from its head again. A message whose turn
  had finished is not run again (its entry is gone, its done mark is set); one whose turn did not
  finish is, even if it was already seen. A turn whose instance died before its done mark is
  handed to the handler again with `turn_attempt()` 2 or more: the Rasa channel replays the
  answers Rasa had saved rather than running the bot twice (`adapters/rasa_replay.py`), and the
  answers already sent are not sent again (`Outbound.answered`); only a send in flight at the
  crash may reach the user twice.
- Attempts are counted per entry (`attempts` hash) when a turn starts, so a message that kills its
  instance each time counts too. After `max_attempts`, the entry goes to the `dead` stream
  (logged with its id and sender, counted on the health route) and the conversation goes on.
  `python -m connectors.whatsapp.core.queue dead-letters|requeue` lists and replays them.
- Backpressure: beyond `max_pending` unfinished entries, intake refuses the webhook (`QueueFull`).
- Draining (SIGTERM): no new entries are read, the turns under way finish (within the timeout),
  leases are given back; what is left stays in Redis, and a wake-up entry per conversation that
  still has messages lets another instance go on at once (a turn that did not finish in time is
  cancelled and runs again there).

Needs Redis 6.2 or later (`XAUTOCLAIM`). Redis Cluster is not supported (the scripts touch keys of
several conversations). Durability is Redis's: with `appendfsync everysec` about one second of
accepted messages can be lost if Redis itself crashes (README, "Scale-out").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis.exceptions import ResponseError

from connectors.whatsapp.core.dedup import MESSAGE_KEY, REDIS_PREFIX
from connectors.whatsapp.core.events import InboundMessage
from connectors.whatsapp.core.queue import (
    _ATTEMPT,
    Handler,
    QueueFull,
    QueueUnavailable,
    conversation_key,
)
from connectors.whatsapp.core.queue.records import UnreadableRecord, decode_message, encode_message
from connectors.whatsapp.core.redis_client import LoopBoundRedis, run_script

logger = logging.getLogger(__name__)

DEFAULT_PREFIX = "whatsapp:queue:"
GROUP = "whatsapp"
SEEN_PREFIX = REDIS_PREFIX + MESSAGE_KEY
"""The same key as `RedisDedupStore`'s for a message, so both modes agree on what was seen."""
DONE_PREFIX = "whatsapp:done:"
_SUBMIT = """
local depth = redis.call('XLEN', KEYS[1])
if depth >= tonumber(ARGV[1]) then return -1 end
local added = 0
for i = 5, #ARGV, 3 do
  local seen = ARGV[3] .. ARGV[i]
  if redis.call('EXISTS', seen) == 0 then
    local id = redis.call('XADD', KEYS[1], '*', 'w', ARGV[i], 'c', ARGV[i + 1], 'r', ARGV[i + 2])
    redis.call('RPUSH', ARGV[4] .. ARGV[i + 1], id)
    redis.call('SET', seen, '1', 'EX', ARGV[2])
    added = added + 1
  end
end
return added
"""
"""KEYS: stream. ARGV: max_pending, ttl, seen prefix, order prefix, then (wamid, conversation,
record) per message. Returns the messages added, or -1 when too many wait."""

_NEXT_ENTRY = """
while true do
  local id = redis.call('LINDEX', order, 0)
  if not id then
    redis.call('DEL', lease)
    return {1}
  end
  local entries = redis.call('XRANGE', stream, id, id)
  if #entries > 0 then
    redis.call('PEXPIRE', lease, lease_ms)
    local fields = entries[1][2]
    local wamid = ''
    for i = 1, #fields, 2 do
      if fields[i] == 'w' then wamid = fields[i + 1] end
    end
    if wamid ~= '' and redis.call('EXISTS', done_prefix .. wamid) == 1 then
      return {2, id, fields, 1, 0}
    end
    return {2, id, fields, 0, redis.call('HINCRBY', attempts, id, 1)}
  end
  redis.call('LPOP', order)
end
"""
"""The conversation's next entry for the lease holder: {1} when none is left (the lease is then
given back, atomically with finding the list empty), else {2, id, fields, done, attempt}: `done`
1 if the message's done mark is set, `attempt` counted here (so a turn that kills its instance
counts too)."""

_START = (
    """
local lease, order, stream, attempts = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local token, lease_ms, done_prefix = ARGV[1], ARGV[2], ARGV[3]
local holder = redis.call('GET', lease)
if holder and holder ~= token then return {0} end
redis.call('SET', lease, token, 'PX', lease_ms)
"""
    + _NEXT_ENTRY
)
"""KEYS: lease, order, stream, attempts. ARGV: token, lease ms, done prefix. Takes the lease (or
keeps ours) and the next entry; {0} when another instance holds the conversation."""

_FINISH_NEXT = (
    """
local lease, order, stream, attempts = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local token, lease_ms, done_prefix = ARGV[1], ARGV[2], ARGV[3]
local group, finished, ttl, done_key = ARGV[4], ARGV[5], ARGV[6], KEYS[5]
if ttl ~= '' then redis.call('SET', done_key, '1', 'EX', ttl) end
redis.call('LREM', order, 1, finished)
redis.call('XACK', stream, group, finished)
redis.call('XDEL', stream, finished)
redis.call('HDEL', attempts, finished)
if redis.call('GET', lease) ~= token then return {0} end
"""
    + _NEXT_ENTRY
)
"""KEYS: lease, order, stream, attempts, done mark. ARGV: token, lease ms, done prefix, group,
the finished entry id, done-mark ttl ('' for none). Ends a turn (done mark, acknowledged and
deleted) and takes the next entry in the same round trip."""

_RENEW = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
if ARGV[5] ~= '' then
  redis.call('XCLAIM', KEYS[2], ARGV[3], ARGV[4], 0, ARGV[5], 'JUSTID')
end
return 1
"""
"""KEYS: lease, stream. ARGV: token, lease ms, group, consumer, entry id (or '')."""

_HAND_OVER = """
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return 0 end
if holder then redis.call('DEL', KEYS[1]) end
if redis.call('LLEN', KEYS[2]) > 0 then
  redis.call('XADD', KEYS[3], '*', 'c', ARGV[2], 'wake', '1')
  return 2
end
return 1
"""
"""KEYS: lease, order, stream. ARGV: token, conversation. Gives the lease back; if messages still
wait (a draining instance), adds a wake-up entry so that another instance goes on at once rather
than after claim_idle_seconds. A lease that expired meanwhile (the loop was blocked) is handed
over the same way; one another instance took is left to it (0)."""

_FINISH = """
if ARGV[3] ~= '' then redis.call('SET', KEYS[5], '1', 'EX', ARGV[3]) end
redis.call('LREM', KEYS[2], 1, ARGV[2])
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
redis.call('HDEL', KEYS[4], ARGV[2])
return 1
"""
"""KEYS: stream, order, lease, attempts, done mark. ARGV: group, id, ttl ('' for no mark)."""

_DEAD = """
redis.call('XADD', KEYS[3], '*', 'id', ARGV[2], 'w', ARGV[3], 'c', ARGV[4], 'r', ARGV[5],
  'attempts', ARGV[6], 'error', ARGV[7], 'at', ARGV[8])
redis.call('LREM', KEYS[2], 1, ARGV[2])
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
redis.call('HDEL', KEYS[4], ARGV[2])
return 1
"""
"""KEYS: stream, order, dead, attempts. ARGV: group, id, wamid, conversation, record, attempts,
error, time."""

_REQUEUE = """
local entries = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1])
if #entries == 0 then return false end
local raw = entries[1][2]
local f = {}
for i = 1, #raw, 2 do f[raw[i]] = raw[i + 1] end
local id = redis.call('XADD', KEYS[2], '*', 'w', f['w'], 'c', f['c'], 'r', f['r'])
redis.call('RPUSH', ARGV[2] .. f['c'], id)
redis.call('XDEL', KEYS[1], ARGV[1])
return id
"""
"""KEYS: dead, stream. ARGV: dead-letter id, order prefix. The new entry's id, or nil."""


@dataclass(frozen=True, slots=True)
class Keys:
    """Every key of one queue, from its prefix."""

    prefix: str = DEFAULT_PREFIX

    @property
    def stream(self) -> str:
        return self.prefix + "stream"

    @property
    def dead(self) -> str:
        return self.prefix + "dead"

    @property
    def attempts(self) -> str:
        return self.prefix + "attempts"

    @property
    def order_prefix(self) -> str:
        return self.prefix + "order:"

    def order(self, conversation: str) -> str:
        return self.order_prefix + conversation

    def lease(self, conversation: str) -> str:
        return self.prefix + "lease:" + conversation


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message set aside after `max_attempts` failed turns."""

    id: str
    entry_id: str
    wamid: str
    conversation: str
    attempts: int
    error: str
    at: float
    record: str


def _pending_count(summary: Any) -> int:
    """The count in XPENDING's summary: redis-py parses it into a dict ({"pending": n, ...});
    a raw reply (no response callback) is a list whose first item is the count."""
    if isinstance(summary, dict):
        return int(summary.get("pending") or 0)
    if isinstance(summary, list | tuple) and summary:
        return int(summary[0] or 0)
    return 0


@dataclass(slots=True)
class _Run:
    """One run of a conversation's turns by this instance, as its lease renewer sees it."""

    ending: bool = False
    """A turn's end is being written: that script may give the lease back."""
    over: bool = False
    """The run has ended: the renewer stops, cancelled or not."""


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _fields(raw: Any) -> dict[str, str]:
    if isinstance(raw, dict):
        return {_text(k): _text(v) for k, v in raw.items()}
    items = list(raw)
    return {_text(items[i]): _text(items[i + 1]) for i in range(0, len(items) - 1, 2)}


class RedisStreamIntake:
    """The durable, shared queue. Build one per process; call it on one event loop."""

    mode = "redis"

    def __init__(
        self,
        *,
        url: str,
        claim_idle_seconds: float = 30.0,
        max_attempts: int = 5,
        max_pending: int = 10_000,
        done_ttl_seconds: int = 7 * 24 * 3600,
        prefix: str = DEFAULT_PREFIX,
        concurrency: int = 64,
        retry_delay: float = 1.0,
        consumer: str | None = None,
        read_batch: int = 4,
    ) -> None:
        """`concurrency`: conversations this instance runs at once; `retry_delay`: the first
        wait before a turn that raised is tried again (doubling, at most 30 s); `read_batch`:
        entries read at a time. A small batch spreads a burst over the instances: a busy
        instance (its loop held by a turn's CPU work) that reads late must not take every
        conversation that arrived meanwhile."""
        if max_attempts < 1 or max_pending < 1 or concurrency < 1:
            raise ValueError("max_attempts, max_pending and concurrency must be at least 1")
        self.url = url
        self.claim_idle_seconds = claim_idle_seconds
        self.max_attempts = max_attempts
        self.max_pending = max_pending
        self.done_ttl_seconds = done_ttl_seconds
        self.keys = Keys(prefix)
        self.concurrency = concurrency
        self.read_batch = max(read_batch, 1)
        self.retry_delay = retry_delay
        self.consumer = consumer or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._lease_ms = max(int(claim_idle_seconds * 1000), 100)
        self._handler: Handler | None = None
        self._connection = LoopBoundRedis(url)
        self._consumer_task: asyncio.Task[None] | None = None
        self._active: dict[str, asyncio.Task[None]] = {}
        self._backlog: deque[str] = deque()
        self._read_while_running: dict[str, set[str]] = {}
        """Per conversation running here, the entries read meanwhile that its run has not taken
        yet: if any is left when the run ends, the conversation runs again."""
        self._current: dict[str, str] = {}
        self._stopping = False
        self._closed = False
        self._group_ready = False
        self._wakeup: asyncio.Event | None = None
        self.counters: dict[str, int] = {
            "queue_turns": 0,
            "queue_turn_failures": 0,
            "queue_reclaimed": 0,
            "queue_already_done": 0,
            "queue_dead_lettered": 0,
            "refused_full": 0,
            "refused_unavailable": 0,
        }

    # -- the endpoint's side ---------------------------------------------------------------------

    def bind(self, handler: Handler) -> None:
        self._handler = handler

    @property
    def redis(self) -> Any:
        """The running loop's Redis client."""
        return self._connection.client()

    async def start(self) -> None:
        """Start consuming on the running loop (every instance takes work, webhooks or not)."""
        if self._consumer_task is None and not self._stopping and not self._closed:
            self._wakeup = asyncio.Event()
            self._consumer_task = asyncio.get_running_loop().create_task(
                self._consume(), name="whatsapp-queue-consumer"
            )

    async def submit(self, messages: Sequence[InboundMessage]) -> int:
        await self.start()
        if not messages:
            return 0
        args: list[Any] = [self.max_pending, self.done_ttl_seconds, SEEN_PREFIX]
        args.append(self.keys.order_prefix)
        for message in messages:
            args += [message.id, conversation_key(message), encode_message(message)]
        try:
            added = int(await self._script(_SUBMIT, [self.keys.stream], args))
        except Exception as error:  # redis raises many types; none may become a 200
            self.counters["refused_unavailable"] += 1
            raise QueueUnavailable(f"Redis did not store the messages: {error}") from error
        if added < 0:
            self.counters["refused_full"] += 1
            raise QueueFull(f"{self.max_pending} or more messages wait (max_pending)")
        if added and self._wakeup is not None:
            self._wakeup.set()
        return added

    async def drain(self, timeout: float) -> bool:
        """Read nothing new; let the turns under way finish; give the leases back."""
        self._stopping = True
        if self._wakeup is not None:
            self._wakeup.set()
        if self._consumer_task is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(self._consumer_task), 3)
        if self._backlog:  # read (a reclaim takes up to 100), never started: pass them on
            waiting = list(dict.fromkeys(self._backlog))
            self._backlog.clear()
            with contextlib.suppress(Exception):
                await self._pass_on(waiting, [])
        running = set(self._active.values())
        if not running:
            return True
        logger.info("Stopping: %d turn(s) under way; the rest stays in Redis.", len(running))
        _, late = await asyncio.wait(running, timeout=timeout)
        if late:
            logger.error(
                "Shutdown: %d turn(s) did not finish in %g s: cancelled, another instance runs "
                "them again.",
                len(late),
                timeout,
            )
            for task in late:
                task.cancel()
            await asyncio.wait(late, timeout=2)
        return not late

    async def join(self) -> None:
        """Wait until the stream is empty (every instance's work) and nothing runs here.

        Each poll is shielded, so that cancelling `join` (`asyncio.wait_for` at its bound) always
        ends it: redis-py 4.6 on Python 3.10 loses a cancellation that lands while it checks a
        pooled connection under `async_timeout(0)`
        (https://github.com/aio-libs-abandoned/async-timeout/issues/229), and the join went on
        polling for ever (measured: 186 of 3,000 `wait_for(join(), ...)` never returned). The
        shielded poll itself ends on its own within the socket timeout.
        """
        while True:
            try:
                depth = int(await asyncio.shield(self.redis.xlen(self.keys.stream)))
            except Exception:
                depth = -1
            if depth == 0 and not self._active and not self._backlog:
                return
            await asyncio.sleep(0.02)

    async def stats(self) -> dict[str, Any]:
        await self.start()
        stats: dict[str, Any] = {"max_pending": self.max_pending, "running_here": len(self._active)}
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.xlen(self.keys.stream)
                pipe.xlen(self.keys.dead)
                pipe.execute_command("XPENDING", self.keys.stream, GROUP)
                depth, dead, pending = await pipe.execute(raise_on_error=False)
        except Exception as error:
            stats["queue_error"] = f"Redis unreachable: {error}"
            return stats
        stats["pending"] = depth if isinstance(depth, int) else None
        stats["dead_letters"] = dead if isinstance(dead, int) else None
        stats["claimed"] = _pending_count(pending)
        return {**stats, **self.counters}

    async def close(self) -> None:
        if self._closed:
            return
        self._stopping = True
        self._closed = True
        tasks = [t for t in (self._consumer_task, *self._active.values()) if t is not None]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=2)
        if self._connection.current is not None:
            with contextlib.suppress(Exception):
                await self._forget_consumer_if_idle()
            await self._connection.close()

    # -- dead letters (the CLI) ------------------------------------------------------------------

    async def dead_letters(self, count: int = 1000) -> list[DeadLetter]:
        letters = []
        for entry_id, raw in await self.redis.xrange(self.keys.dead, count=count):
            fields = _fields(raw)
            letters.append(
                DeadLetter(
                    id=_text(entry_id),
                    entry_id=fields.get("id", ""),
                    wamid=fields.get("w", ""),
                    conversation=fields.get("c", ""),
                    attempts=int(fields.get("attempts", "0") or 0),
                    error=fields.get("error", ""),
                    at=float(fields.get("at", "0") or 0),
                    record=fields.get("r", ""),
                )
            )
        return letters

    async def requeue(self, dead_letter_id: str) -> str | None:
        """Put a dead letter back at the end of its conversation. The new entry id, or None."""
        new_id = await self._script(
            _REQUEUE, [self.keys.dead, self.keys.stream], [dead_letter_id, self.keys.order_prefix]
        )
        return None if new_id is None else _text(new_id)

    # -- the consumer ----------------------------------------------------------------------------

    async def _ensure_group(self) -> None:
        if self._group_ready:
            return
        try:
            await self.redis.xgroup_create(self.keys.stream, GROUP, id="0", mkstream=True)
        except ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise
        self._group_ready = True

    async def _consume(self) -> None:
        claim_every = max(min(self.claim_idle_seconds / 2, 15.0), 0.05)
        next_claim = 0.0
        failures = 0
        while not self._stopping:
            try:
                await self._ensure_group()
                self._start_from_backlog()
                if time.monotonic() >= next_claim:
                    await self._reclaim()
                    next_claim = time.monotonic() + claim_every
                room = self.concurrency - len(self._active) - len(self._backlog)
                if room <= 0:
                    await self._wait(0.05)
                    continue
                block_ms = int(min(claim_every, 1.0) * 1000)
                answer = await self.redis.xreadgroup(
                    GROUP,
                    self.consumer,
                    {self.keys.stream: ">"},
                    count=min(room, self.read_batch),
                    block=block_ms,
                )
                for _, entries in answer or []:
                    await self._dispatch(entries)
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as error:
                failures += 1
                if failures in (1, 10) or failures % 100 == 0:
                    logger.error("Queue: Redis unreachable (%s); retrying.", error)
                self._group_ready = self._group_ready and "NOGROUP" not in str(error)
                await asyncio.sleep(min(0.2 * failures, 2.0))

    async def _wait(self, seconds: float) -> None:
        assert self._wakeup is not None
        self._wakeup.clear()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._wakeup.wait(), seconds)

    async def _reclaim(self) -> None:
        """Take over the entries of instances that went silent for `claim_idle_seconds`."""
        start = "0-0"
        for _ in range(10):
            answer = await self.redis.xautoclaim(
                self.keys.stream,
                GROUP,
                self.consumer,
                min_idle_time=self._lease_ms,
                start_id=start,
                count=100,
            )
            start = _text(answer[0])
            entries = [entry for entry in answer[1] if entry and entry[1] is not None]
            if entries:
                self.counters["queue_reclaimed"] += len(entries)
                logger.info(
                    "Queue: %d idle message(s) claimed (their instance stopped, or they wait "
                    "behind a long turn of their conversation).",
                    len(entries),
                )
                await self._dispatch(entries)
            if start == "0-0":
                return

    async def _dispatch(self, entries: Sequence[Any]) -> None:
        wakeups = []
        read: dict[str, list[str]] = {}
        for entry_id, raw in entries:
            fields = _fields(raw)
            conversation = fields.get("c")
            if "wake" in fields:
                wakeups.append(entry_id)
            if conversation:
                read.setdefault(conversation, []).append(_text(entry_id))
        if self._stopping:
            await self._pass_on(list(read), wakeups)
            return
        for conversation, ids in read.items():
            if conversation in self._active:
                # Its run may have found the list empty already and be ending: unless it takes
                # these entries, it runs again when it ends (see `_work`), or they waited
                # claim_idle_seconds.
                self._read_while_running.setdefault(conversation, set()).update(ids)
            elif conversation not in self._backlog:
                self._backlog.append(conversation)
        self._start_from_backlog()
        if wakeups:  # a wake-up only says "this conversation has work": drop it once read
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.xack(self.keys.stream, GROUP, *wakeups)
                pipe.xdel(self.keys.stream, *wakeups)
                await pipe.execute()

    async def _pass_on(self, conversations: Sequence[str], wakeups: Sequence[str]) -> None:
        """What a draining instance read anyway (its last `XREADGROUP` was already waiting
        when the drain began) goes to the other instances at once: a new wake-up entry per
        conversation. Dropped, a wake-up (often the one this instance's own hand-over had just
        written) left the conversation waiting for `claim_idle_seconds`; a message entry read
        here stays pending under this consumer, and whoever runs its conversation ends it.

        A conversation still running here gets one too: its hand-over writes another, and an
        instance that reads a wake-up for a conversation whose lease is held just leaves it."""
        if not conversations and not wakeups:
            return
        async with self.redis.pipeline(transaction=True) as pipe:
            for conversation in conversations:
                pipe.xadd(self.keys.stream, {"c": conversation, "wake": "1"})
            if wakeups:
                pipe.xack(self.keys.stream, GROUP, *wakeups)
                pipe.xdel(self.keys.stream, *wakeups)
            await pipe.execute()

    def _start_from_backlog(self) -> None:
        while self._backlog and len(self._active) < self.concurrency and not self._stopping:
            conversation = self._backlog.popleft()
            if conversation in self._active:
                continue
            self._active[conversation] = asyncio.get_running_loop().create_task(
                self._work(conversation), name=f"whatsapp-conversation-{conversation}"
            )

    async def _script(self, lua: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        return await run_script(self.redis, lua, keys, args)

    async def _work(self, conversation: str) -> None:
        """Run the conversation's turns while this instance holds its lease."""
        keys = self.keys
        lease = keys.lease(conversation)
        head = [lease, keys.order(conversation), keys.stream, keys.attempts]
        common = [self.consumer, self._lease_ms, DONE_PREFIX]
        renewer: asyncio.Task[None] | None = None
        run = _Run()
        holding = False
        try:
            taken = await self._script(_START, head, common)
            if int(taken[0]) == 0:
                return  # another instance runs this conversation; it will reach our entry
            holding = True
            renewer = asyncio.get_running_loop().create_task(self._renew(conversation, run))
            while True:
                if int(taken[0]) != 2:
                    holding = False  # {1}: nothing left, lease given back; {0}: lost
                    if int(taken[0]) == 0:
                        logger.warning("Queue: lost the lease of %s meanwhile.", conversation)
                    return
                entry_id, fields = _text(taken[1]), _fields(taken[2])
                self._current[conversation] = entry_id
                self._read_while_running.get(conversation, set()).discard(entry_id)
                ttl = await self._turn(
                    conversation, entry_id, fields, done=bool(int(taken[3])), attempt=int(taken[4])
                )
                if ttl is None:  # to be tried again, or set aside: nothing to end
                    if self._stopping:
                        return
                    taken = await self._script(_START, head, common)
                    continue
                ending = [*head, DONE_PREFIX + fields.get("w", "")]
                ending_args = [*common, GROUP, entry_id, ttl]
                run.ending = True  # the next script may give the lease back: not an expiry
                if self._stopping:  # end this turn, take nothing more
                    finish_keys = [keys.stream, head[1], lease, keys.attempts, ending[4]]
                    await self._surely(_FINISH, finish_keys, [GROUP, entry_id, ttl], fields)
                    return
                taken = await self._surely(_FINISH_NEXT, ending, ending_args, fields)
                run.ending = False
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("Queue: the conversation %s stopped on a Redis error.", conversation)
        finally:
            run.over = True
            if renewer is not None:
                renewer.cancel()  # may be lost in redis-py: the renewer also stops on `over`
            self._current.pop(conversation, None)
            try:
                if holding and not self._closed:
                    with contextlib.suppress(Exception):
                        await self._script(
                            _HAND_OVER,
                            [lease, keys.order(conversation), keys.stream],
                            [self.consumer, conversation],
                        )
            finally:  # also when cancelled during the hand-over (the drain's timeout, close)
                self._active.pop(conversation, None)
                again = bool(self._read_while_running.pop(conversation, None))
                if self._wakeup is not None:
                    self._wakeup.set()
            if again:
                await self._again(conversation)

    async def _again(self, conversation: str) -> None:
        """A run that ended after an entry of its conversation was read meanwhile: that entry
        may have come after the run found the list empty (the end-of-turn script and the
        webhook's submit met in Redis, the read's answer arrived first), so the conversation
        runs again here, or is passed on when draining. An entry the run took itself (a user's
        second message, mostly) needs nothing more; a wake-up read meanwhile always counts."""
        if self._closed:
            return
        if self._stopping:
            with contextlib.suppress(Exception):
                await self._pass_on([conversation], [])
            return
        self._backlog.append(conversation)
        self._start_from_backlog()

    async def _surely(
        self, lua: str, keys: Sequence[str], args: Sequence[Any], fields: dict[str, str]
    ) -> Any:
        """End a turn, retrying through a Redis outage (the turn itself is over)."""
        delay = 0.1
        while True:
            try:
                return await self._script(lua, keys, args)
            except Exception as error:
                if self._closed:
                    raise
                logger.error(
                    "Queue: could not mark %s done (%s); retrying in %g s.",
                    fields.get("w", ""),
                    error,
                    delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    async def _renew(self, conversation: str, run: _Run) -> None:
        """Keep the lease (and the current entry) ours while a long turn runs.

        Stops when `run.over`, not only when cancelled: redis-py 4.6 can lose a cancellation
        that meets one of its own timeouts (a lost one turned into a `TimeoutError`, caught
        below, kept a renewer looping for the life of the process, logging a false expiry every
        `claim_idle_seconds / 3`; https://github.com/aio-libs-abandoned/async-timeout/issues/229).
        A renewal that finds the lease gone while the turn's end is being written is that end
        giving it back, not an expiry.
        """
        every = self.claim_idle_seconds / 3
        while True:
            await asyncio.sleep(every)
            if run.over:
                return
            try:
                kept = await self._script(
                    _RENEW,
                    [self.keys.lease(conversation), self.keys.stream],
                    [
                        self.consumer,
                        self._lease_ms,
                        GROUP,
                        self.consumer,
                        self._current.get(conversation, ""),
                    ],
                )
            except Exception as error:
                if run.over:
                    return
                logger.warning("Queue: could not renew the lease of %s: %s", conversation, error)
                continue
            if not kept and not (run.over or run.ending):
                logger.error(
                    "Queue: the lease of %s expired during a turn (the loop was blocked for over "
                    "claim_idle_seconds?); another instance may run its next message meanwhile.",
                    conversation,
                )

    async def _turn(
        self, conversation: str, entry_id: str, fields: dict[str, str], *, done: bool, attempt: int
    ) -> str | None:
        """Run one entry's turn. Returns the done mark's TTL to end it with ('' for no mark), or
        None when there is nothing to end (it will be tried again, or was set aside)."""
        wamid = fields.get("w", "")
        if done:
            self.counters["queue_already_done"] += 1
            logger.info("Queue: %s from %s was processed already.", wamid, conversation)
            return ""
        if attempt > self.max_attempts:
            await self._dead_letter(
                conversation,
                entry_id,
                fields,
                attempt - 1,
                "its instance stopped during every attempt (killed, or crashed)",
            )
            return None
        try:
            message = decode_message(fields.get("r", ""))
        except UnreadableRecord as error:
            await self._dead_letter(conversation, entry_id, fields, attempt, f"unreadable: {error}")
            return None
        if self._handler is None:
            raise RuntimeError("RedisStreamIntake has no handler: call bind() first")
        running_as = _ATTEMPT.set(attempt)
        try:
            await self._handler(message)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            self.counters["queue_turn_failures"] += 1
            if attempt >= self.max_attempts:
                logger.exception("Queue: the turn of %s from %s failed.", wamid, conversation)
                await self._dead_letter(conversation, entry_id, fields, attempt, repr(error))
                return None
            delay = min(self.retry_delay * 2 ** (attempt - 1), 30.0)
            logger.warning(
                "Queue: the turn of %s from %s failed (attempt %d of %d), retrying in %g s: %r",
                wamid,
                conversation,
                attempt,
                self.max_attempts,
                delay,
                error,
            )
            await asyncio.sleep(delay)
            return None
        finally:
            _ATTEMPT.reset(running_as)
        self.counters["queue_turns"] += 1
        return str(self.done_ttl_seconds) if wamid else ""

    async def _dead_letter(
        self,
        conversation: str,
        entry_id: str,
        fields: dict[str, str],
        attempts: int,
        error: str,
    ) -> None:
        keys = self.keys
        await self._script(
            _DEAD,
            [keys.stream, keys.order(conversation), keys.dead, keys.attempts],
            [
                GROUP,
                entry_id,
                fields.get("w", ""),
                conversation,
                fields.get("r", ""),
                attempts,
                error[:2000],
                f"{time.time():.3f}",
            ],
        )
        self.counters["queue_dead_lettered"] += 1
        logger.error(
            "Queue: message %s from %s set aside as a dead letter after %d attempt(s): %s "
            "(python -m connectors.whatsapp.core.queue requeue --all puts it back).",
            fields.get("w", ""),
            conversation,
            attempts,
            error,
        )

    async def _forget_consumer_if_idle(self) -> None:
        """Leave the group on a clean stop, unless entries still wait under our name."""
        redis_client = self._connection.current
        if redis_client is None:
            return
        mine = await redis_client.xpending_range(
            self.keys.stream, GROUP, min="-", max="+", count=1, consumername=self.consumer
        )
        if not mine:
            await redis_client.xgroup_delconsumer(self.keys.stream, GROUP, self.consumer)
