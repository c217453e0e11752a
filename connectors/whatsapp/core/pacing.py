"""Pacing of sends: never faster than Meta lets one business number send, or one recipient receive.

Meta's two send-rate limits:

- Throughput (https://developers.facebook.com/documentation/business-messaging/whatsapp/throughput):
  a business number sends at most 80 messages per second by default (1,000 after Meta's
  automatic upgrade; 20 for a number shared with the WhatsApp Business app); over it a send fails
  with 130429. Setting: `max_messages_per_second`.
- Pair rate limit (https://developers.facebook.com/docs/whatsapp/overview/about-the-platform,
  "Rate limits"): one recipient gets about 1 message every 6 seconds (10 a minute), with bursts of
  up to 45 in 6 seconds that borrow from the following minutes (a burst of 20 means about 2 minutes
  of waiting); over it a send fails with 131056. Settings:
  `pair_interval_seconds` (6, Meta's) and `pair_burst` (40: Meta's 45 less a margin); 0 s turns
  the pair pacing off.

Retrying after a 130429 or a 131056 works, but it wastes the attempt and Meta asks for a lower rate
instead ("Retrying 131056 and 130429 aggressively makes things worse"). So `Outbound` waits here
right before each send: a broadcast of thousands of proactive messages goes out at the number's
rate, and a long multi-part answer to one user is spaced once it passes the burst.

Both limits are a GCRA ("generic cell rate algorithm": a token bucket kept as one timestamp per
key, the theoretical arrival time `tat`) used as a reservation: a send asks when it may go, which
reserves that slot, then sleeps until then. The recipient's slot comes first; only once it is
reached is the number's slot reserved (a slot reserved far ahead would hold the number's budget
for everyone else meanwhile). Senders are served in the order they asked, nothing
polls, and a process with many coroutines keeps one bucket per business number: the endpoint's
`Outbound` is the one every sender of the process goes through (the Rasa channel's answers and
its proactive output channel, the sync service's answers, the outbox's retries). With several
instances (`queue: redis`, or `dedup: redis`) the buckets live in Redis (`RedisPacer`: one Lua
script, Redis's own clock), so the rate holds for the sum of the instances. Redis's clock (`TIME`)
is its host's wall clock: stepped back, it holds a busy number's sends back by up to the step;
stepped forward, it frees one more burst, which the margin below absorbs. NTP slews a running
server's clock rather than stepping it.

Both buckets keep a margin under Meta's own, for the jitter between our clock and Meta's (a
request that takes longer than the next one, such as the first on a new connection, makes two
sends arrive closer than they were sent): the number's burst is a quarter of a second of sends
(Meta counts per second), and the recipient's burst 40 where Meta allows 45. With the same burst
as Meta's, pacing exactly at the limit would cross it now and then. Three quarters of a second is
a wide margin on purpose: sends that wake late (below) may use a quarter of it, and the rest
absorbs requests that reach Meta bunched (one slow request, then fast ones); it only costs a
broadcast a quarter of a second at its start.

A send that wakes more than a quarter of a second after its slot (the event loop was blocked:
Rasa predicts in it, a model loads in it) takes a new slot instead of leaving (up to three
times): every send due meanwhile woke at the same moment, and together they would cross Meta's
count for that second. Such a send goes behind the ones that asked after it: order across
recipients is not kept then (one recipient's bodies are sent one after another anyway).
"""

import asyncio
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

logger = logging.getLogger(__name__)

DEFAULT_MAX_MESSAGES_PER_SECOND = 80.0
DEFAULT_PAIR_INTERVAL_SECONDS = 6.0
DEFAULT_PAIR_BURST = 40
_PRUNE_ABOVE = 10_000
"""Per-recipient timestamps kept before the ones already in the past are dropped."""

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[object]]


LATE_SECONDS = 0.25
"""A send woken this much later than its slot takes a new one (see the module docstring)."""
RETAKES = 3
"""New slots a send takes at most, each time it was woken late (a loop blocked again and again
by predictions); then it goes, rather than wait for ever."""


def throughput_burst(rate: float) -> int:
    """Sends a number may make at once: a quarter of a second's worth (see the module
    docstring)."""
    return max(1, int(rate / 4))


async def sleep_until_slot(
    delay: float, retake: Callable[[], Awaitable[float]], sleep: Sleep, clock: Clock
) -> float:
    """Sleep `delay` seconds; each time woken more than `LATE_SECONDS` late (at most `RETAKES`
    times), again for the new slot `retake` reserves. The seconds waited for slots."""
    waited = 0.0
    for retaken in range(RETAKES + 1):
        if delay <= 0:
            break
        due = clock() + delay
        await sleep(delay)
        waited += delay
        if retaken == RETAKES or clock() - due <= LATE_SECONDS:  # no slot reserved to go unused
            break
        delay = await retake()
    return waited


class Pacer(Protocol):
    """Waits until one more message may be sent; returns the seconds it waited."""

    async def wait(self, phone_number_id: str, recipient: str) -> float: ...

    async def close(self) -> None: ...


class Gcra:
    """One rate per key: `1 / interval` events per second, bursts of `burst` events."""

    def __init__(self, interval: float, burst: int) -> None:
        if interval < 0 or burst < 1:
            raise ValueError("interval must be >= 0 and burst >= 1")
        self.interval = interval
        self.burst = burst
        self._offset = (burst - 1) * interval
        self._tat: dict[str, float] = {}

    def reserve(self, key: str, earliest: float) -> float:
        """Reserve the first slot at or after `earliest` and return its time."""
        if self.interval <= 0:
            return earliest
        tat = max(self._tat.get(key, earliest), earliest)
        self._tat[key] = tat + self.interval
        if len(self._tat) > _PRUNE_ABOVE:
            self._prune(earliest)
        return max(earliest, tat - self._offset)

    def _prune(self, now: float) -> None:
        # A key whose tat is in the past behaves exactly like a key never seen.
        for key in [key for key, tat in self._tat.items() if tat <= now]:
            del self._tat[key]


class LocalPacer:
    """Buckets in this process, for every sender given this pacer."""

    def __init__(
        self,
        max_messages_per_second: float = DEFAULT_MAX_MESSAGES_PER_SECOND,
        *,
        pair_interval: float = DEFAULT_PAIR_INTERVAL_SECONDS,
        pair_burst: int = DEFAULT_PAIR_BURST,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if max_messages_per_second <= 0:
            raise ValueError("max_messages_per_second must be more than 0")
        self.rate = max_messages_per_second
        self._number = Gcra(
            1.0 / max_messages_per_second, throughput_burst(max_messages_per_second)
        )
        self._pair = Gcra(pair_interval, pair_burst)
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()  # the Flask adapter's loop and a caller's may both send

    def reserve_pair(self, phone_number_id: str, recipient: str) -> float:
        """Reserve the recipient's next slot; the seconds until it."""
        with self._lock:
            now = self._clock()
            return self._pair.reserve(f"{phone_number_id}\0{recipient}", now) - now

    def reserve_number(self, phone_number_id: str) -> float:
        """Reserve the business number's next slot; the seconds until it."""
        with self._lock:
            now = self._clock()
            return self._number.reserve(phone_number_id, now) - now

    async def wait(self, phone_number_id: str, recipient: str) -> float:
        waited = self.reserve_pair(phone_number_id, recipient)
        if waited > 0:  # only then ask for the number's slot (see the module docstring)
            await self._sleep(waited)

        async def retake() -> float:
            return self.reserve_number(phone_number_id)

        delay = await sleep_until_slot(await retake(), retake, self._sleep, self._clock)
        return max(waited, 0.0) + delay

    async def close(self) -> None:
        """Nothing to release: the buckets outlive any one sender."""


_GCRA_SCRIPT = """
local function reserve(key, interval, offset, now)
  local tat = tonumber(redis.call('GET', key) or '0')
  if tat < now then tat = now end
  local new_tat = tat + interval
  local ttl = math.ceil((new_tat - now) / 1000) + 1000
  redis.call('SET', key, string.format('%d', new_tat), 'PX', ttl)
  local at = tat - offset
  if at < now then at = now end
  return math.floor(at - now)
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
if KEYS[2] then
  local wait = reserve(KEYS[2], tonumber(ARGV[3]), tonumber(ARGV[4]), now)
  if wait > 0 then return -wait end
end
return reserve(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), now)
"""
"""One round trip, on Redis's clock (microseconds), so every instance shares one time base: the
recipient's slot, then (if it is now) the number's slot. A negative answer is the wait for the
recipient's slot; the number's slot is then asked for once it is reached."""


class RedisPacer:
    """The buckets in Redis, shared by every instance; this process's `LocalPacer` if Redis fails.

    Keys: `{prefix}{<phone_number_id>}` and `{prefix}{<phone_number_id>}:<recipient>`, in one hash
    slot (Redis Cluster), expiring as soon as they hold no reservation.
    """

    def __init__(
        self,
        *,
        url: str,
        max_messages_per_second: float = DEFAULT_MAX_MESSAGES_PER_SECOND,
        pair_interval: float = DEFAULT_PAIR_INTERVAL_SECONDS,
        pair_burst: int = DEFAULT_PAIR_BURST,
        prefix: str = "whatsapp:pace:",
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        import redis.asyncio

        if max_messages_per_second <= 0:
            raise ValueError("max_messages_per_second must be more than 0")
        self._redis: Any = redis.asyncio.Redis.from_url(
            url, socket_timeout=2, socket_connect_timeout=2
        )
        self._script: Any = self._redis.register_script(_GCRA_SCRIPT)
        interval = 1_000_000 / max_messages_per_second
        burst = throughput_burst(max_messages_per_second)
        pair_us = pair_interval * 1_000_000
        self._args = (interval, (burst - 1) * interval, pair_us, (pair_burst - 1) * pair_us)
        self._pair = pair_interval > 0
        self._prefix = prefix
        self._sleep = sleep
        self._fallback = LocalPacer(
            max_messages_per_second, pair_interval=pair_interval, pair_burst=pair_burst
        )
        self._failing = False

    async def wait(self, phone_number_id: str, recipient: str) -> float:
        number_key = f"{self._prefix}{{{phone_number_id}}}"
        keys = [number_key, f"{number_key}:{recipient}"] if self._pair else [number_key]
        waited = 0.0
        try:
            micros = int(await self._script(keys=keys, args=self._args))
            if micros < 0:  # the recipient's slot is later: wait for it, then the number's
                waited = -micros / 1_000_000
                await self._sleep(waited)
                micros = int(await self._script(keys=[number_key], args=self._args))
        except Exception as error:  # redis raises many types; pacing must not stop a send
            if not self._failing:
                logger.error("Pacing store unreachable (%s); pacing this process alone.", error)
                self._failing = True
            return waited + await self._fallback.wait(phone_number_id, recipient)
        self._failing = False

        async def retake() -> float:
            try:
                return int(await self._script(keys=[number_key], args=self._args)) / 1_000_000
            except Exception:  # as for the first slot: this process's bucket
                return self._fallback.reserve_number(phone_number_id)

        return waited + await sleep_until_slot(
            micros / 1_000_000, retake, self._sleep, time.monotonic
        )

    async def close(self) -> None:
        await self._redis.close()
