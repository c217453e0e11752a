"""Answers that could not be sent yet: kept, retried with backoff, in order per recipient.

Why. The Graph client retries a failed send a few times within seconds (`retry.py`); a Graph API
outage of a minute outlasts that, and every answer written meanwhile would be lost (logged, but
lost). An answer whose send failed for a retryable reason (throttling codes 4, 80007, 130429,
131056, 5xx, timeouts, connection errors: the `retryable` classes of `errors.py`,
https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes) waits here instead
and is sent again with backoff (1 s doubling to 60 s, `Retry-After` honoured) for up to
`outbox_retry_seconds`. Permanent errors (131047 outside the 24-hour window, 131026, 100, 190...)
are not retried. An answer that expires, or meets a permanent error on a later attempt, is logged
with its recipient and handed to the status hook as a `failed` status.

Order per recipient: while a recipient has something waiting, `Outbound` puts their later answers
behind it instead of sending them (`holds`), so a later answer never overtakes an earlier one. The
bot's turn never waits for the outbox: putting an answer here returns at once.

- `MemoryOutbox` (`queue: memory`): bounded (`max_parcels`); on shutdown `drain` goes on sending
  within the drain timeout, and what is still waiting then is logged as lost and handed to the hook.
- `RedisOutbox` (`queue: redis`): in Redis, so it survives a restart or a crash, and any instance
  sends (one at a time per recipient, under a lease). Keys under `whatsapp:outbox:`: `list:<to>`
  (the waiting bodies, in order), `due` (a sorted set: recipient -> next attempt, ms), `count`.

Never past the 24-hour window: `outbox_retry_seconds` is at most 24 h (config.py), and a free-form
message outside the window is refused by Meta with 131047, which is permanent.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal, Protocol

from connectors.whatsapp.core.errors import GraphAPIError, WhatsAppError
from connectors.whatsapp.core.events import BusinessNumber, ErrorDetail, StatusUpdate
from connectors.whatsapp.core.importing import call_hook
from connectors.whatsapp.core.redis_client import LoopBoundRedis, run_script

logger = logging.getLogger(__name__)

Send = Callable[[str, str, Mapping[str, Any]], Awaitable[Any]]
"""Sends one body from a business number to a recipient (`Outbound.send_waiting`); None when it
was refused for good and the sender already logged and reported it (a 131047 without a
re-engagement template): the outbox then gives it up without telling the hook again."""
Gone = Callable[["Parcel", str], Any]
"""Told of an answer given up (expired, permanent error, shutdown), with the reason."""


@dataclass(frozen=True, slots=True)
class Parcel:
    """One answer waiting to be sent."""

    phone_number_id: str
    recipient: str
    body: Mapping[str, Any]
    queued_at: float
    """Wall-clock time (epoch s), shared by every instance."""
    deadline: float
    attempts: int = 0
    """Attempts made from the outbox (the first send before it is not counted)."""
    last_error: str = ""
    code: int | None = None
    id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def to_json(self) -> str:
        values = asdict(self)
        values["body"] = dict(self.body)
        # ASCII: a lone surrogate (valid JSON from Meta, echoed by a bot) is not valid UTF-8,
        # which redis-py would need to write it.
        return json.dumps(values, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> Parcel:
        values = json.loads(text)
        return cls(**values)


def gone_status(parcel: Parcel, reason: str) -> StatusUpdate:
    """The `failed` status the status hook is given for an answer that was never delivered."""
    return StatusUpdate(
        message_id="",
        status="failed",
        recipient_id=parcel.recipient,
        business=BusinessNumber(parcel.phone_number_id),
        timestamp=int(time.time()),
        errors=(
            ErrorDetail(
                code=parcel.code,
                title="answer not delivered",
                message=reason,
                details=parcel.last_error or None,
            ),
        ),
        raw={"outbox": True, "body": dict(parcel.body), "queued_at": parcel.queued_at},
    )


class Outbox(Protocol):
    """What `Outbound` needs of an outbox."""

    mode: str
    counters: dict[str, int]

    def bind(self, send: Send, gone: Gone | None = None) -> None: ...

    async def holds(self, recipient: str) -> bool:
        """Whether answers to `recipient` wait (a new one must then queue behind them)."""

    async def put(
        self, phone_number_id: str, recipient: str, body: Mapping[str, Any], error: Exception | None
    ) -> bool:
        """Keep an answer for later; False if it could not be kept (full, Redis down)."""

    async def waiting(self) -> int: ...

    async def drain(self, timeout: float) -> bool: ...

    async def close(self) -> None: ...


Outcome = Literal["sent", "retry", "gone"]


class _Retrying:
    """The attempt and backoff rules both outboxes share."""

    mode = "none"

    def __init__(
        self, *, retry_seconds: float, base_delay: float = 1.0, max_delay: float = 60.0
    ) -> None:
        self.retry_seconds = retry_seconds
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._send: Send | None = None
        self._gone: Gone | None = None
        self.counters: dict[str, int] = {
            "outbox_queued": 0,
            "outbox_sent": 0,
            "outbox_expired": 0,
            "outbox_refused": 0,
        }

    def bind(self, send: Send, gone: Gone | None = None) -> None:
        self._send = send
        self._gone = gone

    def _parcel(
        self, phone_number_id: str, recipient: str, body: Mapping[str, Any], error: Exception | None
    ) -> Parcel:
        now = time.time()
        return Parcel(
            phone_number_id=phone_number_id,
            recipient=recipient,
            body=body,
            queued_at=now,
            deadline=now + self.retry_seconds,
            last_error=str(error) if error is not None else "",
            code=error.code if isinstance(error, GraphAPIError) else None,
        )

    def first_delay(self, error: Exception | None) -> float:
        if error is None:
            return 0.0
        retry_after = getattr(error, "retry_after", None)
        return max(self.base_delay, retry_after or 0.0)

    async def _attempt(self, parcel: Parcel) -> tuple[Outcome, Parcel, float]:
        if self._send is None:
            raise RuntimeError("the outbox has no sender: call bind() first")
        if time.time() >= parcel.deadline:
            await self._give_up(parcel, f"not sent within {self.retry_seconds:g} s")
            return "gone", parcel, 0.0
        attempt = replace(parcel, attempts=parcel.attempts + 1)
        try:
            result = await self._send(parcel.phone_number_id, parcel.recipient, parcel.body)
        except WhatsAppError as error:
            attempt = replace(
                attempt,
                last_error=str(error),
                code=error.code if isinstance(error, GraphAPIError) else attempt.code,
            )
            if not error.retryable:
                await self._give_up(attempt, f"refused by the Graph API: {error}")
                return "gone", attempt, 0.0
            delay = min(self.base_delay * 2 ** min(attempt.attempts, 30), self.max_delay)
            delay = max(delay, getattr(error, "retry_after", None) or 0.0)
            if time.time() + delay > parcel.deadline:
                await self._give_up(
                    attempt,
                    f"still failing after {self.retry_seconds:g} s (outbox_retry_seconds): {error}",
                )
                return "gone", attempt, 0.0
            logger.info(
                "Outbox: answer to %s still not sent (attempt %d: %s); next try in %.1f s.",
                parcel.recipient,
                attempt.attempts,
                error,
                delay,
            )
            return "retry", attempt, delay
        if result is None:  # refused for good, and already logged and reported by the sender
            self.counters["outbox_expired"] += 1
            logger.info("Outbox: answer to %s given up (see above).", parcel.recipient)
            return "gone", attempt, 0.0
        self.counters["outbox_sent"] += 1
        logger.info(
            "Outbox: answer to %s sent after %.1f s.",
            parcel.recipient,
            time.time() - parcel.queued_at,
        )
        return "sent", attempt, 0.0

    async def _give_up(self, parcel: Parcel, reason: str) -> None:
        self.counters["outbox_expired"] += 1
        logger.error(
            "Answer to %s from %s lost: %s (a %s message queued at %s).",
            parcel.recipient,
            parcel.phone_number_id,
            reason,
            parcel.body.get("type"),
            time.strftime("%H:%M:%S", time.localtime(parcel.queued_at)),
        )
        if self._gone is None:
            return
        try:
            await call_hook(self._gone, parcel, reason)
        except Exception:
            logger.exception("The status hook failed on a lost answer.")


class MemoryOutbox(_Retrying):
    """Waiting answers in this process: bounded, drained on shutdown."""

    mode = "memory"

    def __init__(self, *, retry_seconds: float, max_parcels: int = 10_000, **delays: float) -> None:
        super().__init__(retry_seconds=retry_seconds, **delays)
        self.max_parcels = max_parcels
        self._parcels: dict[str, deque[Parcel]] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._first_delay: dict[str, float] = {}

    async def holds(self, recipient: str) -> bool:
        return bool(self._parcels.get(recipient))

    async def put(
        self, phone_number_id: str, recipient: str, body: Mapping[str, Any], error: Exception | None
    ) -> bool:
        if sum(len(q) for q in self._parcels.values()) >= self.max_parcels:
            self.counters["outbox_refused"] += 1
            return False
        self._parcels.setdefault(recipient, deque()).append(
            self._parcel(phone_number_id, recipient, body, error)
        )
        self.counters["outbox_queued"] += 1
        if recipient not in self._workers:
            self._workers[recipient] = asyncio.get_running_loop().create_task(
                self._work(recipient, self.first_delay(error)), name=f"whatsapp-outbox-{recipient}"
            )
        return True

    async def waiting(self) -> int:
        return sum(len(queue) for queue in self._parcels.values())

    async def _work(self, recipient: str, delay: float) -> None:
        queue = self._parcels[recipient]
        try:
            while queue:
                if delay:
                    await asyncio.sleep(delay)
                outcome, parcel, delay = await self._attempt(queue[0])
                if outcome == "retry":
                    queue[0] = parcel
                else:
                    queue.popleft()
        finally:
            self._workers.pop(recipient, None)
            if not queue:
                self._parcels.pop(recipient, None)

    async def drain(self, timeout: float) -> bool:
        """Go on sending for up to `timeout` s; what still waits is then given up."""
        if self._workers:
            logger.info("Stopping: %d answer(s) wait in the outbox.", await self.waiting())
            await asyncio.wait(set(self._workers.values()), timeout=max(timeout, 0.01))
        left = [parcel for queue in self._parcels.values() for parcel in queue]
        for task in list(self._workers.values()):
            task.cancel()
        self._parcels.clear()
        for parcel in left:
            await self._give_up(parcel, "still waiting in the outbox at shutdown")
        return not left

    async def close(self) -> None:
        await self.drain(0)


_PUT = """
if not redis.call('SET', KEYS[4], '1', 'NX', 'EX', 3600) then return 1 end
if tonumber(redis.call('GET', KEYS[3]) or '0') >= tonumber(ARGV[3]) then return 0 end
redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], 'NX', ARGV[2], ARGV[4])
redis.call('INCR', KEYS[3])
return 1
"""
"""KEYS: list, due, count, the parcel's id key (a retried call keeps it once). ARGV: parcel,
first due (ms), max parcels, recipient."""

_DONE = """
if redis.call('LINDEX', KEYS[1], 0) ~= ARGV[1] then return 0 end
redis.call('LPOP', KEYS[1])
redis.call('DECR', KEYS[3])
if redis.call('LLEN', KEYS[1]) == 0 then
  redis.call('ZREM', KEYS[2], ARGV[2])
else
  redis.call('ZADD', KEYS[2], ARGV[3], ARGV[2])
end
return 1
"""
"""KEYS: list, due, count. ARGV: the parcel sent (or given up), recipient, now (ms)."""

_RETRY = """
if redis.call('LINDEX', KEYS[1], 0) ~= ARGV[1] then return 0 end
redis.call('LSET', KEYS[1], 0, ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
return 1
"""
"""KEYS: list, due. ARGV: the parcel tried, the updated parcel, next due (ms), recipient."""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class RedisOutbox(_Retrying):
    """Waiting answers in Redis: they survive a restart, any instance sends them."""

    mode = "redis"

    def __init__(
        self,
        *,
        url: str,
        retry_seconds: float,
        max_parcels: int = 100_000,
        prefix: str = "whatsapp:outbox:",
        poll_seconds: float = 0.2,
        **delays: float,
    ) -> None:
        super().__init__(retry_seconds=retry_seconds, **delays)
        self.url = url
        self.max_parcels = max_parcels
        self.prefix = prefix
        self.poll_seconds = poll_seconds
        self.token = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._connection = LoopBoundRedis(url)
        self._poller: asyncio.Task[None] | None = None
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._stopping = False

    @property
    def redis(self) -> Any:
        """The running loop's Redis client."""
        return self._connection.client()

    def _list(self, recipient: str) -> str:
        return f"{self.prefix}list:{recipient}"

    @property
    def _due(self) -> str:
        return self.prefix + "due"

    @property
    def _count(self) -> str:
        return self.prefix + "count"

    async def start(self) -> None:
        """Start sending what waits (idempotent): every instance polls the due answers."""
        if self._poller is None and not self._stopping:
            self._poller = asyncio.get_running_loop().create_task(
                self._poll(), name="whatsapp-outbox"
            )

    async def holds(self, recipient: str) -> bool:
        await self.start()
        return bool(await self.redis.exists(self._list(recipient)))

    async def put(
        self, phone_number_id: str, recipient: str, body: Mapping[str, Any], error: Exception | None
    ) -> bool:
        await self.start()
        parcel = self._parcel(phone_number_id, recipient, body, error)
        due = int((time.time() + self.first_delay(error)) * 1000)
        try:
            kept = await run_script(
                self.redis,
                _PUT,
                [self._list(recipient), self._due, self._count, f"{self.prefix}parcel:{parcel.id}"],
                [parcel.to_json(), due, self.max_parcels, recipient],
            )
        except Exception as failure:
            logger.error("Outbox: Redis did not keep the answer to %s: %s", recipient, failure)
            kept = 0
        if not kept:
            self.counters["outbox_refused"] += 1
            return False
        self.counters["outbox_queued"] += 1
        return True

    async def waiting(self) -> int:
        return int(await self.redis.get(self._count) or 0)

    async def _poll(self) -> None:
        failures = 0
        while not self._stopping:
            try:
                now_ms = int(time.time() * 1000)
                due = await self.redis.zrangebyscore(self._due, "-inf", now_ms, start=0, num=50)
                for raw in due:
                    recipient = raw.decode() if isinstance(raw, bytes) else str(raw)
                    if recipient not in self._workers:
                        self._workers[recipient] = asyncio.get_running_loop().create_task(
                            self._work(recipient)
                        )
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as error:
                failures += 1
                if failures in (1, 10) or failures % 100 == 0:
                    logger.error("Outbox: Redis unreachable (%s); retrying.", error)
            await asyncio.sleep(self.poll_seconds)

    async def _work(self, recipient: str) -> None:
        lease = f"{self.prefix}lease:{recipient}"
        key = self._list(recipient)
        try:
            if not await self.redis.set(lease, self.token, nx=True, px=90_000):
                return  # another instance sends to this recipient right now
            try:
                while not self._stopping:
                    score = await self.redis.zscore(self._due, recipient)
                    if score is None or score > time.time() * 1000:
                        return
                    head = await self.redis.lindex(key, 0)
                    if head is None:
                        await self.redis.zrem(self._due, recipient)
                        return
                    outcome, parcel, delay = await self._attempt(Parcel.from_json(head))
                    now_ms = int(time.time() * 1000)
                    if outcome == "retry":
                        next_ms = now_ms + int(delay * 1000)
                        await run_script(
                            self.redis,
                            _RETRY,
                            [key, self._due],
                            [head, parcel.to_json(), next_ms, recipient],
                        )
                        return
                    await run_script(
                        self.redis,
                        _DONE,
                        [key, self._due, self._count],
                        [head, recipient, now_ms],
                    )
            finally:
                with contextlib.suppress(Exception):
                    await run_script(self.redis, _RELEASE, [lease], [self.token])
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("Outbox: sending to %s stopped on an error; retried later.", recipient)
        finally:
            self._workers.pop(recipient, None)

    async def drain(self, timeout: float) -> bool:
        """Stop polling; let the sends under way finish. What waits stays in Redis."""
        self._stopping = True
        if self._poller is not None:
            self._poller.cancel()
        if self._workers:
            await asyncio.wait(set(self._workers.values()), timeout=max(timeout, 0.01))
        return True

    async def close(self) -> None:
        await self.drain(0)
        for task in list(self._workers.values()):
            task.cancel()
        await self._connection.close()
