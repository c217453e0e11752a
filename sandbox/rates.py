"""Meta's two send-rate limits, enforced like the Cloud API does, at O(1) per send.

- Throughput: a business number sends at most `throughput_per_second` messages per second (80 by
  default, 1,000 after Meta's automatic upgrade); over it the send answers HTTP 400 with code
  130429 (https://developers.facebook.com/docs/whatsapp/cloud-api/overview#throughput).
- Pair rate limit: one recipient gets about 1 message every 6 seconds, with bursts of up to 45
  that borrow from the following minutes; over it the send answers HTTP 400 with code 131056
  (https://developers.facebook.com/docs/whatsapp/cloud-api/overview#pair-rate-limits).

Both are a GCRA ("generic cell rate algorithm", a token bucket kept as one timestamp): a send is
allowed when the theoretical arrival time is at most `burst - 1` intervals ahead of now, and only
an allowed send moves it. A refused send costs nothing, so a client that backs off recovers.

The limits count on a monotonic clock, not the wall clock the chat's timestamps use: a wall clock
stepped back (NTP, a VM resumed, a laptop woken) would otherwise put every recent send in the
future and refuse a correctly paced client until the step is made up.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .errors import GraphError


@dataclass(slots=True)
class Gcra:
    """A rate of one event per `interval` seconds, with bursts of `burst` events."""

    interval: float
    burst: int
    _tat: dict[str, float] = field(default_factory=dict)
    """Per key: the theoretical arrival time of the next event at the sustained rate."""

    def allows(self, key: str, now: float) -> bool:
        """Whether an event now fits (nothing is counted)."""
        if self.interval <= 0:
            return True
        tat = self._tat.get(key, now)
        return tat - now <= (self.burst - 1) * self.interval + 1e-9

    def take(self, key: str, now: float) -> None:
        """Count an event that `allows` let through."""
        if self.interval > 0:
            self._tat[key] = max(self._tat.get(key, now), now) + self.interval


class RateLimits:
    """The throughput limit of the business number and the pair limit of each recipient."""

    def __init__(
        self,
        throughput_per_second: float,
        pair_interval: float,
        pair_burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.clock = clock
        self.configure(throughput_per_second, pair_interval, pair_burst)

    def configure(
        self, throughput_per_second: float, pair_interval: float, pair_burst: int
    ) -> None:
        """Change the limits (0 turns one off); what was sent so far is forgotten."""
        if throughput_per_second < 0 or pair_interval < 0 or pair_burst < 1:
            raise ValueError("rates are >= 0 (0 is off) and the pair burst is >= 1")
        self.throughput_per_second = throughput_per_second
        self.pair_interval = pair_interval
        self.pair_burst = pair_burst
        interval = 1.0 / throughput_per_second if throughput_per_second > 0 else 0.0
        # One second's worth of messages may come at once: Meta counts messages per second.
        self._throughput = Gcra(interval, max(1, int(throughput_per_second)))
        self._pair = Gcra(pair_interval, pair_burst)

    def check(self, recipient: str) -> None:
        """Count a send to `recipient` now (on `clock`), or raise the `GraphError` Meta answers
        over a limit."""
        now = self.clock()
        if not self._throughput.allows("", now):
            raise GraphError(
                130429,
                "(#130429) Rate limit hit",
                details="Cloud API message throughput has been reached "
                f"({self.throughput_per_second:g} messages per second for this number).",
            )
        if not self._pair.allows(recipient, now):
            raise GraphError(
                131056,
                "(#131056) (Business Account, Consumer Account) pair rate limit hit",
                details="Too many messages sent from the sender phone number to the same "
                "recipient phone number in a short period of time.",
            )
        self._throughput.take("", now)
        self._pair.take(recipient, now)

    def to_json(self) -> dict[str, float]:
        return {
            "throughput_per_second": self.throughput_per_second,
            "pair_interval": self.pair_interval,
            "pair_burst": self.pair_burst,
        }
