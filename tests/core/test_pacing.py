"""Send pacing: the token buckets on a fake clock, then real coroutines, then Redis instances."""

import asyncio
import time
from collections.abc import Iterator

import pytest

from connectors.whatsapp.core.config import WhatsAppConfig
from connectors.whatsapp.core.endpoint import make_pacer
from connectors.whatsapp.core.pacing import (
    RETAKES,
    Gcra,
    LocalPacer,
    RedisPacer,
    sleep_until_slot,
    throughput_burst,
)
from tests.support.redis_server import redis_server


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_gcra_gives_the_burst_at_once_then_one_slot_per_interval() -> None:
    gcra = Gcra(interval=0.25, burst=3)
    slots = [gcra.reserve("n", 10.0) for _ in range(6)]
    assert slots == [10.0, 10.0, 10.0, 10.25, 10.5, 10.75]
    assert gcra.reserve("other", 10.0) == 10.0  # keys are independent
    assert gcra.reserve("n", 20.0) == 20.0  # idle time refills the burst
    assert Gcra(interval=0, burst=1).reserve("n", 5.0) == 5.0  # 0: off


def test_gcra_forgets_keys_in_the_past() -> None:
    gcra = Gcra(interval=1.0, burst=1)
    for recipient in range(10_001):
        gcra.reserve(str(recipient), 0.0)
    gcra.reserve("late", 5.0)  # over the bound: every key whose slot passed is dropped
    assert len(gcra._tat) == 1


def test_the_number_rate_is_shared_by_every_recipient() -> None:
    clock = FakeClock()
    pacer = LocalPacer(8, pair_interval=0, clock=clock)
    delays = [pacer.reserve_number("number") for _ in range(6)]
    assert throughput_burst(8) == 2
    assert delays == pytest.approx([0, 0, 0.125, 0.25, 0.375, 0.5])
    assert pacer.reserve_number("another number") == 0


def test_a_burst_to_one_recipient_is_spaced_after_the_pair_burst() -> None:
    clock = FakeClock()
    pacer = LocalPacer(1000, pair_interval=6.0, pair_burst=3, clock=clock)
    delays = [pacer.reserve_pair("number", "ana") for _ in range(5)]
    assert delays == pytest.approx([0, 0, 0, 6.0, 12.0])
    assert pacer.reserve_pair("number", "bruno") == 0  # other recipients are not held up


async def test_a_recipient_waiting_does_not_hold_the_number_for_others() -> None:
    clock = FakeClock()
    slept: list[float] = []
    gate = asyncio.Event()

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        await gate.wait()

    pacer = LocalPacer(2, pair_interval=10.0, pair_burst=1, clock=clock, sleep=sleep)
    assert await pacer.wait("n", "ana") == 0
    waiting = asyncio.ensure_future(pacer.wait("n", "ana"))
    await asyncio.sleep(0)
    assert slept == [10.0]  # ana's next slot is 10 s away...
    assert pacer.reserve_number("n") == pytest.approx(0.5)  # ...bruno only waits for the rate
    gate.set()
    await waiting


async def test_concurrent_senders_share_one_rate() -> None:
    pacer = LocalPacer(200, pair_interval=0)
    sent: list[float] = []

    async def send(i: int) -> None:
        await pacer.wait("number", f"user{i}")
        sent.append(time.monotonic())

    start = time.monotonic()
    await asyncio.gather(*(send(i) for i in range(300)))
    burst = throughput_burst(200)
    assert time.monotonic() - start >= (300 - burst) / 200 - 0.01
    # No second holds more than the rate plus the burst.
    for first in sent:
        assert sum(1 for t in sent if first <= t < first + 1.0) <= 200 + burst


def test_the_endpoint_uses_redis_when_instances_share_it() -> None:
    base = {"access_token": "t", "phone_number_id": "1", "verify_token": "v", "app_secret": "s"}
    assert isinstance(make_pacer(WhatsAppConfig.from_mapping(base)), LocalPacer)
    shared = make_pacer(WhatsAppConfig.from_mapping({**base, "dedup": "redis"}))
    assert isinstance(shared, RedisPacer)


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with redis_server() as url:
        yield url


async def test_instances_share_the_rate_through_redis(redis_url: str) -> None:
    rate = 100.0
    instances = [
        RedisPacer(url=redis_url, max_messages_per_second=rate, pair_interval=0, prefix="t1:")
        for _ in range(3)
    ]
    sent: list[float] = []

    async def send(pacer: RedisPacer, i: int) -> None:
        await pacer.wait("number", f"user{i}")
        sent.append(time.monotonic())

    start = time.monotonic()
    await asyncio.gather(*(send(instances[i % 3], i) for i in range(150)))
    burst = throughput_burst(rate)
    assert time.monotonic() - start >= (150 - burst) / rate - 0.02
    for first in sent:
        assert sum(1 for t in sent if first <= t < first + 0.5) <= rate / 2 + burst + 1
    for pacer in instances:
        await pacer.close()


async def test_the_pair_limit_through_redis(redis_url: str) -> None:
    pacer = RedisPacer(
        url=redis_url, max_messages_per_second=1000, pair_interval=0.2, pair_burst=2, prefix="t2:"
    )
    waits = [await pacer.wait("number", "ana") for _ in range(4)]
    assert waits[:2] == [0, 0]
    assert all(w > 0.15 for w in waits[2:])
    assert await pacer.wait("number", "bruno") == 0
    await pacer.close()


async def test_redis_down_paces_this_process_alone(caplog: pytest.LogCaptureFixture) -> None:
    from tests.support.processes import free_port

    pacer = RedisPacer(
        url=f"redis://127.0.0.1:{free_port()}/0", max_messages_per_second=50, pair_interval=0
    )
    start = time.monotonic()
    for i in range(40):
        await pacer.wait("number", f"u{i}")
    assert time.monotonic() - start >= (40 - throughput_burst(50)) / 50 - 0.02
    assert sum("Pacing store unreachable" in r.message for r in caplog.records) == 1
    await pacer.close()


async def test_a_send_woken_late_every_time_takes_at_most_three_new_slots_and_uses_each() -> None:
    now = [0.0]
    retaken: list[float] = []

    async def late_sleep(delay: float) -> None:
        now[0] += delay + 1.0  # the loop was blocked every time

    async def retake() -> float:
        retaken.append(now[0])
        return 0.5

    waited = await sleep_until_slot(0.5, retake, late_sleep, lambda: now[0])
    assert len(retaken) == RETAKES
    assert waited == 0.5 * (RETAKES + 1)  # every slot it reserved, it slept for


def over_metas_limit(sent: list[float], rate: float) -> int:
    """How many of `sent` Meta would refuse: its bucket holds one second of sends."""
    interval, tolerance = 1.0 / rate, (rate - 1) / rate
    tat, refused = 0.0, 0
    for at in sorted(sent):
        tat = max(tat, at)
        if tat - at > tolerance:
            refused += 1
            continue
        tat += interval
    return refused


@pytest.mark.parametrize("backend", ["local", "redis"])
async def test_sends_due_while_the_loop_was_blocked_do_not_leave_at_once(
    backend: str, request: pytest.FixtureRequest
) -> None:
    """Rasa predicts in the event loop: blocked for 1.5 s mid-broadcast, and again soon after,
    the sends whose slots passed meanwhile take new ones rather than leaving together when it
    resumes."""
    rate = 100.0
    pacer: LocalPacer | RedisPacer
    if backend == "local":
        pacer = LocalPacer(rate, pair_interval=0)
    else:
        url = request.getfixturevalue("redis_url")
        pacer = RedisPacer(url=url, max_messages_per_second=rate, pair_interval=0, prefix="t4:")
    sent: list[float] = []

    async def send(i: int) -> None:
        await pacer.wait("number", f"user{i}")
        sent.append(time.monotonic())

    async def block_the_loop() -> None:
        await asyncio.sleep(1.0)
        time.sleep(1.5)  # noqa: ASYNC251 (the loop blocked, as by a long prediction)
        await asyncio.sleep(0.1)  # and again, while the sends that took new slots sleep
        time.sleep(1.4)  # noqa: ASYNC251

    blocker = asyncio.create_task(block_the_loop())
    await asyncio.gather(*(send(i) for i in range(300)))
    await blocker
    await pacer.close()
    assert len(sent) == 300
    assert over_metas_limit(sent, rate) == 0
