"""Meta's throughput limit (130429) and pair rate limit (131056), as the sandbox enforces them."""

import asyncio
from typing import Any

import pytest

from sandbox.context import SANDBOX
from sandbox.errors import GraphError
from sandbox.rates import Gcra, RateLimits
from tests.sandbox.conftest import ANA, Sandbox, SandboxFactory

BRUNO = "5521998765432"


def text(to: str) -> dict[str, Any]:
    return {"messaging_product": "whatsapp", "to": to, "type": "text", "text": {"body": "oi"}}


def test_gcra_allows_a_burst_then_the_sustained_rate() -> None:
    gcra = Gcra(interval=6.0, burst=3)
    allowed = []
    for _ in range(4):
        allowed.append(gcra.allows("a", 0.0))
        if allowed[-1]:
            gcra.take("a", 0.0)
    assert allowed == [True, True, True, False]
    assert gcra.allows("b", 0.0)  # another recipient is not affected
    assert not gcra.allows("a", 5.9)
    assert gcra.allows("a", 6.0)  # one interval later, one more


def test_a_refused_send_costs_nothing() -> None:
    limits = RateLimits(throughput_per_second=2, pair_interval=6.0, pair_burst=1, clock=lambda: 0.0)
    limits.check("a")
    for _ in range(5):  # refused by the pair limit: the throughput budget is not spent
        with pytest.raises(GraphError) as refused:
            limits.check("a")
        assert refused.value.code == 131056
    limits.check("b")  # the second of two per second is still there


async def test_over_the_throughput_the_send_gets_130429(make_sandbox: SandboxFactory) -> None:
    sandbox = await make_sandbox(throughput_per_second=3, pair_interval=0)
    await sandbox.user_does({"type": "text", "text": "oi"})
    answers = [await sandbox.send(text(ANA)) for _ in range(4)]
    assert [status for status, _ in answers[:3]] == [200, 200, 200]
    status, body = answers[3]
    assert status == 400
    assert body["error"]["code"] == 130429
    assert body["error"]["error_data"]["details"].startswith("Cloud API message throughput")


async def test_a_wall_clock_stepped_back_refuses_no_paced_send(
    make_sandbox: SandboxFactory,
) -> None:
    """NTP, a resumed VM or a woken laptop can step the wall clock back: sends paced correctly
    (a monotonic clock, as the channel's pacer uses) must not be refused for it."""
    sandbox = await make_sandbox(throughput_per_second=2, pair_interval=0)
    await sandbox.user_does({"type": "text", "text": "oi"})
    state = sandbox.server.app[SANDBOX].state
    wall = state.clock
    assert [(await sandbox.send(text(ANA)))[0] for _ in range(2)] == [200, 200]
    state.clock = lambda: wall() - 60.0
    status, body = await sandbox.send(text(ANA))  # the limit still counts: a third is too many
    assert (status, body["error"]["code"]) == (400, 130429)
    await asyncio.sleep(1.05)  # two sends per second: the next two are due
    assert [(await sandbox.send(text(ANA)))[0] for _ in range(2)] == [200, 200]


def test_the_limits_count_on_their_own_clock() -> None:
    now = [100.0]
    limits = RateLimits(
        throughput_per_second=1, pair_interval=0, pair_burst=1, clock=lambda: now[0]
    )
    limits.check("a")
    with pytest.raises(GraphError):
        limits.check("a")
    now[0] += 1.0
    limits.check("a")


async def test_the_pair_limit_is_per_recipient_with_131056(make_sandbox: SandboxFactory) -> None:
    sandbox = await make_sandbox(pair_interval=6.0, pair_burst=2)
    await sandbox.user_does({"type": "text", "text": "oi"})
    await sandbox.user_does({"type": "text", "text": "oi"}, BRUNO)
    assert [(await sandbox.send(text(ANA)))[0] for _ in range(2)] == [200, 200]
    status, body = await sandbox.send(text(ANA))
    assert (status, body["error"]["code"]) == (400, 131056)
    assert (await sandbox.send(text(BRUNO)))[0] == 200


async def test_defaults_settings_and_off(sandbox: Sandbox) -> None:
    async with sandbox.session.get(sandbox.url("/_sandbox/settings")) as response:
        settings = await response.json()
    assert settings == {
        "enforce_service_window": True,
        "window_refusal": "http",
        "throughput_per_second": 80.0,
        "pair_interval": 6.0,
        "pair_burst": 45,
    }
    await sandbox.user_does({"type": "text", "text": "oi"})
    off = {"throughput_per_second": 0, "pair_interval": 0}
    async with sandbox.session.post(sandbox.url("/_sandbox/settings"), json=off) as response:
        assert response.status == 200
    assert {(await sandbox.send(text(ANA)))[0] for _ in range(100)} == {200}
    bad = {"pair_burst": 0}
    async with sandbox.session.post(sandbox.url("/_sandbox/settings"), json=bad) as response:
        assert response.status == 400
