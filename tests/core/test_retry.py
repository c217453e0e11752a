"""The retry policy is pure: every decision is checked here without a clock or a server."""

from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.whatsapp.core.errors import (
    GraphAPIError,
    GraphTransportError,
    MediaTooLargeError,
    graph_error_from_response,
)
from connectors.whatsapp.core.retry import NO_RETRY, RetryPolicy, parse_retry_after


def error(code: int, status: int = 400, retry_after: float | None = None) -> GraphAPIError:
    payload = {"error": {"code": code, "message": f"(#{code})"}}
    return graph_error_from_response(status, payload, retry_after=retry_after)


THROTTLED = error(130429)
TRANSPORT = GraphTransportError("timed out", method="POST", path="/x")


def fixed(value: float) -> RetryPolicy:
    return RetryPolicy(random=lambda: value)


def test_backoff_doubles_up_to_max_delay_without_jitter() -> None:
    policy = RetryPolicy(jitter="none", base_delay=0.5, max_delay=8.0, max_attempts=10)
    assert [policy.backoff(n) for n in range(1, 8)] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]


def test_equal_jitter_keeps_at_least_half_the_backoff() -> None:
    assert fixed(0.0).backoff(3) == 1.0  # 2.0 / 2
    assert fixed(0.999999).backoff(3) == pytest.approx(2.0, abs=1e-5)
    assert fixed(0.5).backoff(1) == pytest.approx(0.375)


def test_full_jitter_spans_zero_to_the_backoff() -> None:
    assert RetryPolicy(jitter="full", random=lambda: 0.0).backoff(3) == 0.0
    assert RetryPolicy(jitter="full", random=lambda: 0.5).backoff(3) == 1.0


def test_an_odd_random_source_is_clamped() -> None:
    assert RetryPolicy(jitter="full", random=lambda: 7.0).backoff(2) == 1.0
    assert RetryPolicy(jitter="full", random=lambda: -1.0).backoff(2) == 0.0


def test_retryable_errors_get_a_delay_until_attempts_run_out() -> None:
    policy = fixed(0.0)  # max_attempts=4
    delays = [policy.delay_for(n, THROTTLED, None, 0.0) for n in (1, 2, 3, 4)]
    assert delays == [0.25, 0.5, 1.0, None]


@pytest.mark.parametrize("code", [0, 3, 10, 100, 131026, 131047, 132001, 368, 190, 131045])
def test_permanent_errors_are_never_retried(code: int) -> None:
    assert fixed(0.5).delay_for(1, error(code), None, 0.0) is None


@pytest.mark.parametrize("code", [2, 4, 80007, 130429, 131000, 131016, 131057, 133004])
def test_transient_codes_are_retried(code: int) -> None:
    assert fixed(0.5).delay_for(1, error(code), None, 0.0) is not None


def test_transport_errors_are_retried_and_other_exceptions_are_not() -> None:
    policy = fixed(0.0)
    assert policy.delay_for(1, TRANSPORT, None, 0.0) == 0.25
    assert policy.delay_for(1, ValueError("bug"), None, 0.0) is None
    assert policy.delay_for(1, MediaTooLargeError(max_bytes=1, size=2), None, 0.0) is None


def test_code_1_is_retried_once() -> None:
    policy = fixed(0.0)
    assert policy.delay_for(1, error(1), None, 0.0) == 0.25
    assert policy.delay_for(2, error(1), None, 0.0) is None


def test_retry_after_is_honoured_even_above_max_delay() -> None:
    policy = fixed(0.0)
    assert policy.delay_for(1, THROTTLED, 3.0, 0.0) == 3.0
    assert policy.delay_for(1, THROTTLED, 12.0, 0.0) == 12.0
    # A Retry-After shorter than the backoff does not shorten the backoff.
    assert policy.delay_for(3, THROTTLED, 0.1, 0.0) == 1.0


def test_retry_after_defaults_to_the_one_carried_by_the_error() -> None:
    assert fixed(0.0).delay_for(1, error(4, retry_after=2.5), None, 0.0) == 2.5


def test_retry_after_beyond_the_budget_gives_up_at_once() -> None:
    policy = fixed(0.0)  # 20 s budget
    assert policy.delay_for(1, THROTTLED, 25.0, 0.0) is None
    assert policy.delay_for(1, THROTTLED, 5.0, 16.0) is None
    assert policy.delay_for(1, THROTTLED, 5.0, 15.0) == 5.0


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf")])
def test_unusable_retry_after_is_ignored(bad: float) -> None:
    assert fixed(0.0).delay_for(1, THROTTLED, bad, 0.0) == 0.25


def test_no_wait_ends_past_the_total_budget() -> None:
    policy = RetryPolicy(jitter="none", max_total_seconds=5.0, max_attempts=10)
    assert policy.delay_for(4, TRANSPORT, None, 0.9) == 4.0
    assert policy.delay_for(4, TRANSPORT, None, 1.1) is None


def test_pair_rate_limit_waits_longer() -> None:
    policy = fixed(0.0)
    assert policy.delay_for(1, error(131056), None, 0.0) == 6.0
    assert policy.delay_for(1, error(131056), 9.0, 0.0) == 9.0
    assert RetryPolicy(pair_rate_limit_min_delay=1.0, random=lambda: 0.0).delay_for(
        1, error(131056), None, 0.0
    ) == pytest.approx(1.0)


def test_no_retry_policy() -> None:
    assert NO_RETRY.delay_for(1, THROTTLED, None, 0.0) is None


@pytest.mark.parametrize(
    "kwargs",
    [{"max_attempts": 0}, {"base_delay": -1}, {"max_delay": float("nan")},
     {"max_total_seconds": float("inf")}, {"jitter": "sometimes"}],
)  # fmt: skip
def test_invalid_settings_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


def test_policy_is_frozen() -> None:
    with pytest.raises(AttributeError):
        RetryPolicy().max_attempts = 9  # type: ignore[misc]


@given(
    attempt=st.integers(1, 50),
    elapsed=st.floats(0, 100),
    retry_after=st.none() | st.floats(-5, 100, allow_nan=False),
    fraction=st.floats(0, 1, exclude_max=True),
    jitter=st.sampled_from(["equal", "full", "none"]),
    code=st.sampled_from([4, 130429, 131056, 2, 131000, 1]),
)
def test_delays_are_bounded(
    attempt: int,
    elapsed: float,
    retry_after: float | None,
    fraction: float,
    jitter: str,
    code: int,
) -> None:
    policy = RetryPolicy(jitter=jitter, random=lambda: fraction)  # type: ignore[arg-type]
    delay = policy.delay_for(attempt, error(code), retry_after, elapsed)
    if delay is None:
        return
    assert attempt < policy.max_attempts
    assert delay >= 0
    assert elapsed + delay <= policy.max_total_seconds
    if retry_after is not None and retry_after >= 0:
        assert delay >= retry_after
    if code == 131056:
        assert delay >= policy.pair_rate_limit_min_delay


def test_parse_retry_after_seconds() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after("0") == 0.0


@pytest.mark.parametrize("value", [None, "", "  ", "-1", "soon", "nan", "inf", "Mon, 99 Foo"])
def test_parse_retry_after_rejects_garbage(value: str | None) -> None:
    assert parse_retry_after(value) is None


def test_parse_retry_after_http_date() -> None:
    now = datetime(2025, 11, 26, 12, 0, 0, tzinfo=timezone.utc)
    header = format_datetime(now + timedelta(seconds=7), usegmt=True)
    assert parse_retry_after(header, now=now) == 7.0
    past = format_datetime(now - timedelta(seconds=30), usegmt=True)
    assert parse_retry_after(past, now=now) == 0.0
