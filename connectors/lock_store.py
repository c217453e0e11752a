"""An atomic Redis lock store for Rasa: one turn at a time per conversation, across processes.

Why. Rasa serialises the turns of one conversation with a ticket lock
(`rasa.core.lock_store.LockStore.lock`, awaited by `Agent.handle_message`, reminders and the HTTP
API's `trigger_intent`, `execute`, `messages`, ...). Rasa Open Source's `RedisLockStore` keeps a
conversation's whole ticket list as one JSON string and changes it by read-modify-write
(`GET`, edit in Python, `SET`): two processes that issue a ticket at the same moment both read the
same list and the second `SET` erases the first one's ticket, so both believe it is their turn and
their turns run concurrently on one tracker (https://github.com/RasaHQ/rasa/issues/9213; a fix was
merged and reverted in 2022 and now lives only in Rasa Pro). It also uses a synchronous Redis
client from `async def lock()`, so every check blocks the event loop, and it judges expiry by each
machine's own clock.

How. A drop-in subclass of Rasa's `LockStore`, loaded from endpoints.yml like Rasa's own::

    lock_store:
      type: connectors.lock_store.AtomicRedisLockStore
      url: localhost          # a host name, or a redis:// / rediss:// URL
      port: 6379
      db: 1
      password: ${REDIS_PASSWORD}
      key_prefix: mybot       # letters and digits only, as for Rasa's RedisLockStore

- Each conversation is one sorted set, `<prefix>lock:<conversation id>:tickets`: members are ticket
  numbers, scores the time (Redis's own clock, `TIME`, in ms) at which the ticket expires. Numbers
  come from one `INCR` counter per prefix (`<prefix>lock::ticket-counter`), so a number is never
  reused, not even after every ticket of a conversation expired. The set itself expires with its
  last ticket, so an abandoned conversation leaves no key behind.
- Issuing a ticket, checking whose turn it is (the smallest live number) and removing a ticket are
  each one Lua script, run atomically by Redis; expired tickets are dropped in the same script.
  There is no read-modify-write and no `KEYS` scan.
- Tickets expire after `lock_lifetime` (Rasa's `TICKET_LOCK_LIFETIME`, 60 s by default), counted
  from the last sign of life of their owner: a waiting owner renews its ticket on every check, the
  holder renews it every third of the lifetime from a background task. A process that dies (or is
  SIGKILLed) therefore blocks the conversation for at most one lifetime, while a live turn that
  takes longer than the lifetime keeps the lock (Rasa's store lets the next turn in after 60 s even
  though the first is still running). The price: a turn hung forever in a live process holds the
  conversation until that process ends.
- Waiting costs no busy polling: releasing a ticket publishes the conversation id on a pub/sub
  channel (`<prefix>lock::released:db<db>`); each process keeps one subscription per event loop and
  wakes its waiters for that conversation, which then check their turn in one round trip. A check
  every `wait_time_in_seconds` (Rasa passes 1 s; at most a third of the lifetime) is the fallback
  for a missed message and for a dead holder's ticket that simply expired.
- Everything `lock()` does goes through `redis.asyncio`: no call blocks the event loop. Rasa's base
  class also declares synchronous methods (`issue_ticket`, `get_lock`, `save_lock`, `delete_lock`,
  `finish_serving`, `cleanup`, `is_someone_waiting`, `update_lock`); Rasa 3.6 itself calls none of
  them outside `lock()`, which this class replaces. They are kept for code that calls them directly,
  each one atomic script on a synchronous client, so a call blocks for exactly one Redis round trip.
  `save_lock` replaces a conversation's tickets with the given lock's, atomically; it exists for
  compatibility only (editing a `TicketLock` and saving it is the very read-modify-write this class
  avoids).
- Redis clients are created lazily, one per event loop (an asyncio connection belongs to the loop
  that opened it), so the store can be created before Sanic forks its workers or starts its loop.

Needs Redis 5 or later (writes after `TIME` in a script). Redis Cluster is not supported (one
key per conversation and a shared counter), as for Rasa's own store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections import deque
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import redis
import redis.asyncio
from rasa.core.lock import Ticket, TicketLock
from rasa.core.lock_store import (
    DEFAULT_REDIS_LOCK_STORE_KEY_PREFIX,
    DEFAULT_SOCKET_TIMEOUT_IN_SECONDS,
    LOCK_LIFETIME,
    LockError,
    LockStore,
)
from rasa.utils.endpoints import EndpointConfig
from redis.commands.core import AsyncScript, Script

logger = logging.getLogger(__name__)

__all__ = ["AtomicRedisLockStore"]

# The options endpoints.yml may give (besides `type` and `url`), as for Rasa's RedisLockStore.
OPTIONS = (
    "port",
    "db",
    "username",
    "password",
    "use_ssl",
    "ssl_certfile",
    "ssl_keyfile",
    "ssl_ca_certs",
    "key_prefix",
    "socket_timeout",
)
SUBSCRIBE_WAIT_SECONDS = 1.0
LISTENER_READ_SECONDS = 1.0
# After a lost subscription, the listener retries after this, doubling up to the maximum.
LISTENER_RETRY_SECONDS = 0.1
LISTENER_RETRY_MAX_SECONDS = 5.0

_LUA_COMMON = """
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function int(x)
  return string.format('%d', x)
end
local function purge(key, now)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', '(' .. int(now))
end
local function expire_with_last_ticket(key)
  local last = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
  if last[2] then
    redis.call('PEXPIREAT', key, int(tonumber(last[2]) + 1000))
  end
end
"""

# KEYS: tickets, counter. ARGV: lifetime in ms. Returns the new ticket's number.
ISSUE = (
    _LUA_COMMON
    + """
local now = now_ms()
purge(KEYS[1], now)
local number = redis.call('INCR', KEYS[2])
redis.call('ZADD', KEYS[1], int(now + tonumber(ARGV[1])), int(number))
expire_with_last_ticket(KEYS[1])
return number
"""
)

# KEYS: tickets. ARGV: ticket, lifetime in ms. Renews the ticket and returns how many live tickets
# are ahead of it: 0 means it is this ticket's turn, -1 that the ticket no longer exists.
TURN = (
    _LUA_COMMON
    + """
local now = now_ms()
purge(KEYS[1], now)
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  return -1
end
redis.call('ZADD', KEYS[1], 'XX', int(now + tonumber(ARGV[2])), ARGV[1])
expire_with_last_ticket(KEYS[1])
local mine = tonumber(ARGV[1])
local ahead = 0
for _, member in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if tonumber(member) < mine then
    ahead = ahead + 1
  end
end
return ahead
"""
)

# KEYS: tickets. ARGV: ticket, channel, conversation id. Removes the ticket, tells the waiters.
RELEASE = (
    _LUA_COMMON
    + """
local removed = redis.call('ZREM', KEYS[1], ARGV[1])
purge(KEYS[1], now_ms())
if redis.call('EXISTS', KEYS[1]) == 1 then
  expire_with_last_ticket(KEYS[1])
  redis.call('PUBLISH', ARGV[2], ARGV[3])
end
return removed
"""
)

# KEYS: tickets. Drops expired tickets; returns Redis's time, then ticket, expiry, ticket, ...
SNAPSHOT = (
    _LUA_COMMON
    + """
local now = now_ms()
purge(KEYS[1], now)
local out = {int(now)}
for _, value in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')) do
  out[#out + 1] = value
end
return out
"""
)

# KEYS: tickets, counter. ARGV: ticket, remaining ms, ticket, remaining ms, ...
# Replaces the conversation's tickets; keeps the counter above every number it was given.
REPLACE = (
    _LUA_COMMON
    + """
local now = now_ms()
redis.call('DEL', KEYS[1])
local highest = 0
for i = 1, #ARGV, 2 do
  local number = tonumber(ARGV[i])
  local remaining = tonumber(ARGV[i + 1])
  if remaining > 0 then
    redis.call('ZADD', KEYS[1], int(now + remaining), int(number))
  end
  if number > highest then
    highest = number
  end
end
if tonumber(redis.call('GET', KEYS[2]) or '0') < highest then
  redis.call('SET', KEYS[2], int(highest))
end
expire_with_last_ticket(KEYS[1])
return redis.call('ZCARD', KEYS[1])
"""
)


@dataclass
class _LoopState:
    """What one event loop owns: its client, its scripts, its subscription and its waiters."""

    client: Any  # redis.asyncio.Redis; Any, since its stub is generic over the reply type
    issue: AsyncScript
    turn: AsyncScript
    release: AsyncScript
    waiters: dict[str, set[asyncio.Event]] = field(default_factory=dict)
    listening: asyncio.Event = field(default_factory=asyncio.Event)
    settled: asyncio.Event = field(default_factory=asyncio.Event)  # subscribed once, or failed
    listener: asyncio.Task[None] | None = None
    closing: bool = False


@dataclass(slots=True)
class _Hold:
    """One held ticket, as its keep-alive sees it."""

    released: bool = False
    """The turn is over: the keep-alive stops, cancelled or not (see `_stop`)."""


@dataclass
class _SyncState:
    client: Any  # redis.Redis
    issue: Script
    release: Script
    snapshot: Script
    replace: Script


def _as_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


async def _stop(task: asyncio.Task[None]) -> None:
    """Cancel `task` until it has ended: one cancellation can be lost on Python 3.10.

    redis-py runs parts of its calls under async-timeout (`async_timeout(0)` when it takes a
    pooled connection, the read timeout of `get_message`); when that timeout fires in the same
    loop iteration as our `cancel()`, the cancellation comes back as a timeout, which redis-py
    turns into an error or "no message", and the task goes on
    (https://github.com/aio-libs-abandoned/async-timeout/issues/229; seen here as a `close()`
    that never returned). The listener also checks `closing` on every pass, so a lost
    cancellation costs at most one more cancel.
    """
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=0.1)
    if not task.cancelled() and task.exception() is not None:
        logger.warning("Lock store: the subscription ended on %r.", task.exception())


class AtomicRedisLockStore(LockStore):  # type: ignore[misc]  # Rasa is untyped: LockStore is Any
    """Rasa's ticket lock on Redis with atomic scripts, expiring tickets and asyncio waiting.

    See the module docstring for the design and https://github.com/RasaHQ/rasa/issues/9213 for
    why Rasa's `RedisLockStore` cannot be used by several processes.
    """

    def __init__(
        self,
        endpoint_config: EndpointConfig | None = None,
        *,
        host: str | None = None,
        port: int | str = 6379,
        db: int | str = 1,
        username: str | None = None,
        password: str | None = None,
        use_ssl: bool | str = False,
        ssl_certfile: str | None = None,
        ssl_keyfile: str | None = None,
        ssl_ca_certs: str | None = None,
        key_prefix: str | None = None,
        socket_timeout: float | str = DEFAULT_SOCKET_TIMEOUT_IN_SECONDS,
    ) -> None:
        """Keyword arguments as for Rasa's `RedisLockStore`, or an `EndpointConfig`.

        `LockStore.create` passes `endpoint_config=` for a `type:` given as a class path; its `url`
        is the host (or a `redis://`/`rediss://` URL, whose parts win over `port`, `db`, ...) and
        its other keys are the keyword arguments. An unknown key is an error, so that a typo such
        as `passwrod:` does not silently connect without a password.
        """
        options: dict[str, Any] = {
            "port": port,
            "db": db,
            "username": username,
            "password": password,
            "use_ssl": use_ssl,
            "ssl_certfile": ssl_certfile,
            "ssl_keyfile": ssl_keyfile,
            "ssl_ca_certs": ssl_ca_certs,
            "key_prefix": key_prefix,
            "socket_timeout": socket_timeout,
        }
        if endpoint_config is not None:
            given: Mapping[str, Any] = endpoint_config.kwargs or {}
            unknown = sorted(set(given) - set(OPTIONS))
            if unknown:
                raise ValueError(
                    f"Unknown lock_store option(s) for {type(self).__name__}: "
                    f"{', '.join(unknown)}. Known: url, {', '.join(OPTIONS)}."
                )
            options.update({name: value for name, value in given.items() if value is not None})
            host = host or endpoint_config.url
        self._url = str(host or "localhost")
        self._db = int(options["db"])
        self._connection: dict[str, Any] = {
            "port": int(options["port"]),
            "db": self._db,
            "username": options["username"] or None,
            "password": options["password"] or None,
            "socket_timeout": float(options["socket_timeout"]),
            "socket_connect_timeout": float(options["socket_timeout"]),
        }
        if _as_bool(options["use_ssl"]):
            self._connection.update(
                ssl=True,
                ssl_certfile=options["ssl_certfile"],
                ssl_keyfile=options["ssl_keyfile"],
                ssl_ca_certs=options["ssl_ca_certs"],
            )

        self.key_prefix = DEFAULT_REDIS_LOCK_STORE_KEY_PREFIX
        prefix = options["key_prefix"]
        if prefix:
            prefix = str(prefix)
            if prefix.isalnum():
                self.key_prefix = f"{prefix}:{DEFAULT_REDIS_LOCK_STORE_KEY_PREFIX}"
            else:
                logger.warning(
                    "Omitting the non-alphanumeric lock store key prefix %r (as Rasa does); "
                    "using %r.",
                    prefix,
                    self.key_prefix,
                )
        self._counter_key = f"{self.key_prefix}:ticket-counter"
        self.channel = f"{self.key_prefix}:released:db{self._db}"
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopState] = (
            weakref.WeakKeyDictionary()
        )
        self._sync_state: _SyncState | None = None
        super().__init__()

    # Keys and clients

    def tickets_key(self, conversation_id: str) -> str:
        """The sorted set holding `conversation_id`'s tickets."""
        return f"{self.key_prefix}{conversation_id}:tickets"

    def _client_options(self) -> dict[str, Any]:
        options = dict(self._connection)
        if "://" not in self._url:
            options["host"] = self._url
        return options

    def _loop_state(self) -> _LoopState:
        loop = asyncio.get_running_loop()
        state = self._loops.get(loop)
        if state is None:
            options = self._client_options()
            if "://" in self._url:
                client: Any = redis.asyncio.Redis.from_url(self._url, **options)
            else:
                client = redis.asyncio.Redis(**options)
            state = _LoopState(
                client=client,
                issue=client.register_script(ISSUE),
                turn=client.register_script(TURN),
                release=client.register_script(RELEASE),
            )
            self._loops[loop] = state
        if state.listener is None or state.listener.done():
            state.listener = loop.create_task(self._listen(state))
        return state

    def _sync(self) -> _SyncState:
        if self._sync_state is None:
            options = self._client_options()
            if "://" in self._url:
                client: Any = redis.Redis.from_url(self._url, **options)
            else:
                client = redis.Redis(**options)
            self._sync_state = _SyncState(
                client=client,
                issue=client.register_script(ISSUE),
                release=client.register_script(RELEASE),
                snapshot=client.register_script(SNAPSHOT),
                replace=client.register_script(REPLACE),
            )
        return self._sync_state

    async def close(self) -> None:
        """Close this event loop's connections (and the synchronous client's)."""
        state = self._loops.pop(asyncio.get_running_loop(), None)
        if state is not None:
            state.closing = True
            if state.listener is not None:
                await _stop(state.listener)
            await state.client.close(close_connection_pool=True)
        if self._sync_state is not None:
            self._sync_state.client.close()
            self._sync_state = None

    # Waking waiters

    async def _listen(self, state: _LoopState) -> None:
        """Wake this loop's waiters when a ticket of their conversation is released."""
        backoff = LISTENER_RETRY_SECONDS
        while not state.closing:
            pubsub = state.client.pubsub()
            try:
                await pubsub.subscribe(self.channel)
                while not state.closing:
                    message = await pubsub.get_message(timeout=LISTENER_READ_SECONDS)
                    if message is None:
                        continue
                    if message["type"] == "subscribe":
                        state.listening.set()
                        state.settled.set()
                        backoff = LISTENER_RETRY_SECONDS
                    elif message["type"] == "message":
                        conversation_id = message["data"].decode("utf-8", "replace")
                        for event in state.waiters.get(conversation_id, ()):
                            event.set()
            except (redis.RedisError, OSError) as error:
                state.listening.clear()
                state.settled.set()
                logger.warning(
                    "Lock store: lost the subscription to %s (%s); waiters check every "
                    "wait_time_in_seconds meanwhile. Retrying in %.1f s.",
                    self.channel,
                    error,
                    backoff,
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, LISTENER_RETRY_MAX_SECONDS)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.reset()

    async def _until_listening(self, state: _LoopState) -> None:
        """On a loop's first lock, wait (briefly) for the subscription, so no wake-up is missed.

        Only once per loop: later, a lost subscription just means waiters poll meanwhile.
        """
        if state.settled.is_set():
            return
        try:
            await asyncio.wait_for(state.settled.wait(), SUBSCRIBE_WAIT_SECONDS)
        except asyncio.TimeoutError:
            state.settled.set()

    # The lock, as Rasa awaits it

    @contextlib.asynccontextmanager
    async def lock(
        self,
        conversation_id: str,
        lock_lifetime: float = LOCK_LIFETIME,
        wait_time_in_seconds: float = 1,
    ) -> AsyncIterator[TicketLock]:
        """Hold `conversation_id`'s lock: wait for the turn, renew the ticket, release it.

        Raises `LockError` when Redis cannot be reached to issue or check the ticket. The ticket
        is removed on exit, also when the body raised or the task was cancelled while waiting.
        """
        state = self._loop_state()
        ticket = await self._acquire(state, conversation_id, lock_lifetime, wait_time_in_seconds)
        hold = _Hold()
        keep_alive = asyncio.get_running_loop().create_task(
            self._keep_alive(state, conversation_id, ticket, lock_lifetime, hold)
        )
        try:
            yield TicketLock(conversation_id, deque([Ticket(ticket, time.time() + lock_lifetime)]))
        finally:
            hold.released = True
            keep_alive.cancel()
            await self._release_quietly(state, conversation_id, ticket)

    async def _acquire_lock(
        self, conversation_id: str, ticket: int, wait_time_in_seconds: float
    ) -> TicketLock:
        """Wait for `ticket`'s turn (the base class's hook, for callers that issued a ticket)."""
        state = self._loop_state()
        number = await self._wait_for_turn(
            state, conversation_id, ticket, LOCK_LIFETIME, wait_time_in_seconds
        )
        return TicketLock(conversation_id, deque([Ticket(number, time.time() + LOCK_LIFETIME)]))

    async def _script(self, script: AsyncScript, keys: list[str], args: list[Any]) -> Any:
        try:
            return await script(keys=keys, args=args)
        except (redis.RedisError, OSError) as error:
            raise LockError(
                f"Lock store: Redis failed ({type(error).__name__}: {error})."
            ) from error

    async def _issue(self, state: _LoopState, conversation_id: str, lifetime: float) -> int:
        keys = [self.tickets_key(conversation_id), self._counter_key]
        return int(await self._script(state.issue, keys, [_ms(lifetime)]))

    async def _acquire(
        self, state: _LoopState, conversation_id: str, lifetime: float, wait_time: float
    ) -> int:
        await self._until_listening(state)
        ticket = await self._issue(state, conversation_id, lifetime)
        return await self._wait_for_turn(state, conversation_id, ticket, lifetime, wait_time)

    async def _wait_for_turn(
        self,
        state: _LoopState,
        conversation_id: str,
        ticket: int,
        lifetime: float,
        wait_time: float,
    ) -> int:
        """Return the ticket held once it is its turn; on any failure, give the ticket back."""
        interval = max(0.001, min(wait_time, lifetime / 3))
        woken = asyncio.Event()
        waiters = state.waiters.setdefault(conversation_id, set())
        waiters.add(woken)
        key = self.tickets_key(conversation_id)
        try:
            while True:
                woken.clear()
                ahead = int(await self._script(state.turn, [key], [ticket, _ms(lifetime)]))
                if ahead == 0:
                    logger.debug("Acquired lock for conversation '%s'.", conversation_id)
                    return ticket
                if ahead < 0:
                    # Only if this process could not check for a whole lifetime (a blocked event
                    # loop, Redis unreachable or flushed): go to the back of the queue.
                    logger.warning(
                        "Lock store: ticket %s of conversation '%s' expired while waiting; "
                        "taking a new one.",
                        ticket,
                        conversation_id,
                    )
                    ticket = await self._issue(state, conversation_id, lifetime)
                    continue
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(woken.wait(), interval)
        except BaseException:
            await self._release_quietly(state, conversation_id, ticket)
            raise
        finally:
            waiters.discard(woken)
            if not waiters and state.waiters.get(conversation_id) is waiters:
                del state.waiters[conversation_id]

    async def _keep_alive(
        self, state: _LoopState, conversation_id: str, ticket: int, lifetime: float, hold: _Hold
    ) -> None:
        """Renew the held ticket every third of its lifetime, so a live long turn keeps it.

        Stops once `hold.released`, not only when cancelled: a cancellation that redis-py lost
        (see `_stop`) let a renewal reach Redis after the release, which then looked like an
        expired ticket and was logged as one.
        """
        key = self.tickets_key(conversation_id)
        while True:
            await asyncio.sleep(lifetime / 3)
            if hold.released:
                return
            try:
                ahead = int(await self._script(state.turn, [key], [ticket, _ms(lifetime)]))
            except LockError as error:
                if hold.released:
                    return
                logger.warning("Lock store: could not renew ticket %s (%s).", ticket, error)
                continue
            if hold.released:
                return
            if ahead != 0:
                logger.error(
                    "Lock store: the held ticket %s of conversation '%s' expired (the event loop "
                    "or Redis stalled for over %s s); another turn may now run concurrently.",
                    ticket,
                    conversation_id,
                    lifetime,
                )
                return

    async def _release_quietly(self, state: _LoopState, conversation_id: str, ticket: int) -> None:
        """Remove the ticket; if Redis fails, log it: the ticket expires by itself."""
        args: list[Any] = [ticket, self.channel, conversation_id]
        try:
            await state.release(keys=[self.tickets_key(conversation_id)], args=args)
        except (redis.RedisError, OSError) as error:
            logger.warning(
                "Lock store: could not release ticket %s of conversation '%s' (%s); it expires "
                "by itself.",
                ticket,
                conversation_id,
                error,
            )

    # Rasa's synchronous API: one atomic script each, one round trip (see the module docstring)

    def issue_ticket(self, conversation_id: str, lock_lifetime: float = LOCK_LIFETIME) -> int:
        """Issue a ticket (atomically); the caller must renew or release it."""
        sync = self._sync()
        try:
            keys = [self.tickets_key(conversation_id), self._counter_key]
            return int(sync.issue(keys=keys, args=[_ms(lock_lifetime)]))
        except (redis.RedisError, OSError) as error:
            raise LockError(f"Error while acquiring lock. Error:\n{error}") from error

    def get_lock(self, conversation_id: str) -> TicketLock | None:
        """A snapshot of the live tickets, in turn order; None if there are none."""
        reply = self._sync().snapshot(keys=[self.tickets_key(conversation_id)])
        now_ms = int(reply[0])
        local_now = time.time()
        tickets = sorted(
            (
                Ticket(int(number), local_now + (float(expiry) - now_ms) / 1000)
                for number, expiry in zip(reply[1::2], reply[2::2], strict=True)
            ),
            key=lambda ticket: ticket.number,
        )
        if not tickets:
            return None
        return TicketLock(conversation_id, deque(tickets))

    def update_lock(self, conversation_id: str) -> None:
        """Drop expired tickets (the scripts also do it whenever they touch a conversation)."""
        self._sync().snapshot(keys=[self.tickets_key(conversation_id)])

    def is_someone_waiting(self, conversation_id: str) -> bool:
        """Whether the conversation has a live ticket."""
        return self.get_lock(conversation_id) is not None

    def finish_serving(self, conversation_id: str, ticket_number: int) -> None:
        """Remove the ticket (atomically) and wake the conversation's waiters."""
        args = [ticket_number, self.channel, conversation_id]
        self._sync().release(keys=[self.tickets_key(conversation_id)], args=args)

    def cleanup(self, conversation_id: str, ticket_number: int) -> None:
        """Remove the ticket; the conversation's key disappears with its last ticket."""
        self.finish_serving(conversation_id, ticket_number)

    def delete_lock(self, conversation_id: str) -> None:
        """Delete every ticket of the conversation."""
        deleted = self._sync().client.delete(self.tickets_key(conversation_id))
        self._log_deletion(conversation_id, bool(deleted))

    def save_lock(self, lock: TicketLock) -> None:
        """Replace the conversation's tickets with `lock`'s, atomically (compatibility only)."""
        now = time.time()
        args: list[Any] = []
        for ticket in lock.tickets:
            args += [int(ticket.number), round((ticket.expires - now) * 1000)]
        keys = [self.tickets_key(lock.conversation_id), self._counter_key]
        self._sync().replace(keys=keys, args=args)
