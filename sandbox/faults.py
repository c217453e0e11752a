"""Faults injected on demand, so that tests and demos can show retries.

`POST /_sandbox/faults` queues one: the next `count` Graph API calls it targets answer with it.

- `throttle`: HTTP 400 with a throttling code (130429 by default; 4, 80007, 131056 also work),
  as Meta sends them (https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes).
- `server_error`: HTTP 500 (code 131000) or 503 (code 2).
- `slow`: the call waits `seconds`, then goes on normally (for client timeouts).
"""

from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

from .errors import ERROR_TITLES, GraphError

FaultKind = Literal["throttle", "server_error", "slow"]
Target = Literal["send", "read", "media", "any"]
KINDS: tuple[FaultKind, ...] = ("throttle", "server_error", "slow")
TARGETS: tuple[Target, ...] = ("send", "read", "media", "any")
THROTTLE_CODES = frozenset({4, 80007, 130429, 131056})
MAX_SLOW_SECONDS = 120.0


class FaultError(ValueError):
    """A fault request that makes no sense; answered with 400 and this message."""


@dataclass(frozen=True, slots=True)
class Fault:
    kind: FaultKind
    count: int = 1
    target: Target = "send"
    """Which calls it hits: message sends (default), read receipts, media calls, or any call."""
    code: int = 130429
    status: int = 400
    seconds: float = 0.0
    retry_after: int | None = None
    """Seconds for a `Retry-After` header (Meta does not send one; handy to test honouring it)."""

    @classmethod
    def from_json(cls, data: object) -> "Fault":
        if not isinstance(data, Mapping):
            raise FaultError("a fault is a JSON object with at least 'kind'")
        kind = data.get("kind")
        if kind not in KINDS:
            raise FaultError(f"kind must be one of {', '.join(KINDS)}")
        target = data.get("target", "send")
        if target not in TARGETS:
            raise FaultError(f"target must be one of {', '.join(TARGETS)}")
        count = _int(data, "count", 1)
        if not 1 <= count <= 1000:
            raise FaultError("count must be between 1 and 1000")
        retry_after = data.get("retry_after")
        if retry_after is not None:
            retry_after = _int(data, "retry_after", 0)
        if kind == "throttle":
            code = _int(data, "code", 130429)
            if code not in THROTTLE_CODES:
                raise FaultError(f"a throttle code is one of {sorted(THROTTLE_CODES)}")
            return cls("throttle", count, target, code, 400, retry_after=retry_after)
        if kind == "server_error":
            status = _int(data, "status", 500)
            if status not in (500, 502, 503, 504):
                raise FaultError("a server_error status is 500, 502, 503 or 504")
            code = 2 if status == 503 else 131000
            return cls("server_error", count, target, code, status, retry_after=retry_after)
        seconds = data.get("seconds", 3)
        if isinstance(seconds, bool) or not isinstance(seconds, int | float):
            raise FaultError("seconds must be a number")
        if not 0 < seconds <= MAX_SLOW_SECONDS:
            raise FaultError(f"seconds must be between 0 and {MAX_SLOW_SECONDS}")
        return cls("slow", count, target, 0, 200, float(seconds))

    def error(self) -> GraphError:
        """The Graph error this fault answers with (not for `slow`)."""
        title = ERROR_TITLES.get(self.code, "Something went wrong")
        details = {
            130429: "Cloud API message throughput has been reached.",
            131056: "Too many messages sent from the sender phone number to the same recipient "
            "phone number in a short period of time.",
        }.get(self.code, f"{title} (injected by the sandbox)")
        headers = {} if self.retry_after is None else {"Retry-After": str(self.retry_after)}
        return GraphError(
            self.code,
            f"(#{self.code}) {title}",
            details=details,
            status=self.status,
            headers=headers,
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _int(data: Mapping[str, Any], key: str, default: int) -> int:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise FaultError(f"{key} must be an integer")
    return value


class FaultQueue:
    """Faults waiting to happen, in the order they were asked for."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> None:
        self._faults.append(fault)

    def clear(self) -> None:
        self._faults.clear()

    def pending(self) -> list[Fault]:
        return list(self._faults)

    def take(self, call: Target) -> Fault | None:
        """The fault that applies to this call, if any, counting it down."""
        for index, fault in enumerate(self._faults):
            if fault.target in (call, "any"):
                if fault.count <= 1:
                    del self._faults[index]
                else:
                    self._faults[index] = replace(fault, count=fault.count - 1)
                return fault
        return None
