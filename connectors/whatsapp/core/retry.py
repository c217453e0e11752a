"""When to try a failed Graph API request again, and after how long: a pure policy.

Meta's error-code page says which errors are worth retrying (throttling, temporary unavailability)
and asks for backoff: https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes
The policy is pure: `delay_for` returns a number of seconds (or None to give up) and never sleeps,
so the client does the waiting and tests can check every decision without a clock.

Choices, and why:

- Exponential backoff, `base_delay * 2 ** (attempt - 1)`, capped at `max_delay`.
- "Equal" jitter by default: half the backoff is fixed and half random. Full jitter spreads load
  best but can retry almost at once, which is just what a throttled API does not want.
- `Retry-After` is honoured: the wait is never shorter than the server asked for. If that wait
  would end past the time budget, the policy gives up at once rather than retry too early.
- Code 131056 (pair rate limit: about one message every six seconds to the same user) waits at
  least `pair_rate_limit_min_delay`.
- Bounded twice: at most `max_attempts` attempts in all, and no wait that ends after
  `max_total_seconds` from the first attempt. The last attempt itself may run up to one request
  timeout past the budget.
"""

from __future__ import annotations

import email.utils
import math
import random as _random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Literal

from connectors.whatsapp.core.errors import PairRateLimitError, WhatsAppError

Jitter = Literal["equal", "full", "none"]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Bounded exponential backoff with jitter. `RetryPolicy(max_attempts=1)` never retries."""

    max_attempts: int = 4
    """Attempts in all, the first one included."""
    base_delay: float = 0.5
    """The backoff before the first retry (before jitter)."""
    max_delay: float = 8.0
    """The largest backoff (before jitter); `Retry-After` and the pair minimum may exceed it."""
    max_total_seconds: float = 20.0
    """No wait may end later than this many seconds after the first attempt started."""
    jitter: Jitter = "equal"
    """"equal": backoff/2 + random * backoff/2; "full": random * backoff; "none": backoff."""
    pair_rate_limit_min_delay: float = 6.0
    """The shortest wait after code 131056 (Meta allows ~1 message per 6 s to one user)."""
    random: Callable[[], float] = field(default=_random.random, repr=False, compare=False)
    """A source of floats in [0, 1); inject a fixed one in tests."""

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        for name in ("base_delay", "max_delay", "max_total_seconds", "pair_rate_limit_min_delay"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, not {value!r}")
        if self.jitter not in ("equal", "full", "none"):
            raise ValueError(f"jitter must be 'equal', 'full' or 'none', not {self.jitter!r}")

    def backoff(self, attempt: int) -> float:
        """The jittered backoff after failed attempt number `attempt` (1 for the first)."""
        exponent = min(max(attempt, 1) - 1, 62)
        ceiling = min(self.max_delay, self.base_delay * 2.0**exponent)
        if self.jitter == "none":
            return ceiling
        fraction = min(max(self.random(), 0.0), 1.0)
        if self.jitter == "full":
            return ceiling * fraction
        return ceiling / 2 + ceiling / 2 * fraction

    def delay_for(
        self,
        attempt: int,
        error: BaseException,
        retry_after: float | None = None,
        elapsed: float = 0.0,
    ) -> float | None:
        """Seconds to wait before the next attempt, or None to give up and raise `error`.

        `attempt` is how many attempts have been made (1 after the first failure); `elapsed` the
        seconds since the first one started. `retry_after` defaults to the error's own
        `retry_after` (from the response's `Retry-After` header). Only a `WhatsAppError` whose
        class is `retryable` is retried, and no more often than its `max_retries`.
        """
        if attempt >= self.max_attempts:
            return None
        if not isinstance(error, WhatsAppError) or not error.retryable:
            return None
        if error.max_retries is not None and attempt > error.max_retries:
            return None
        delay = self.backoff(attempt)
        if isinstance(error, PairRateLimitError):
            delay = max(delay, self.pair_rate_limit_min_delay)
        if retry_after is None:
            retry_after = getattr(error, "retry_after", None)
        if retry_after is not None and math.isfinite(retry_after) and retry_after >= 0:
            delay = max(delay, retry_after)
        if max(elapsed, 0.0) + delay > self.max_total_seconds:
            return None
        return delay


NO_RETRY = RetryPolicy(max_attempts=1)
"""A policy that never retries."""


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds from a `Retry-After` header: delay-seconds or an HTTP date (RFC 9110 10.2.3).

    Anything unreadable, negative or not finite gives None; a date in the past gives 0.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    current = now if now is not None else datetime.now(timezone.utc)
    return max((when - current).total_seconds(), 0.0)
