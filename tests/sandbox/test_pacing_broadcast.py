"""A broadcast through `Outbound` to the sandbox, which enforces Meta's send-rate limits.

The sandbox answers 130429 over its throughput and 131056 over its pair limit, like Meta; the
channel's pacing (`core/pacing.py`) must keep every send under both, with no retry to hide a
refusal (one attempt per send). 2,000 messages at 80/s would take 25 s, so both sides run at
400/s here: the same count, the same rule, 5 s.
"""

import asyncio
import time
from typing import Any

from connectors.whatsapp.core.client import GraphClient
from connectors.whatsapp.core.metrics import Metrics
from connectors.whatsapp.core.outbound import Outbound
from connectors.whatsapp.core.pacing import LocalPacer, throughput_burst
from connectors.whatsapp.core.retry import RetryPolicy
from sandbox import SimulatedContact
from tests.conftest import ACCESS_TOKEN, PHONE_NUMBER_ID
from tests.sandbox.conftest import ANA, SandboxFactory

RATE = 400.0
COUNT = 2000
ONE_ATTEMPT = RetryPolicy(max_attempts=1)
TEMPLATE = {
    "type": "template",
    "template": {"name": "lembrete", "language": {"code": "pt_BR"}},
}


def customers(n: int) -> tuple[SimulatedContact, ...]:
    return tuple(SimulatedContact(f"55119{i:08d}", f"Cliente {i}") for i in range(n))


def outbound(base_url: str, pacer: LocalPacer | None, metrics: Metrics) -> Outbound:
    client = GraphClient(
        access_token=ACCESS_TOKEN, base_url=base_url, retry=ONE_ATTEMPT, metrics=metrics
    )
    return Outbound(client, default_phone_number_id=PHONE_NUMBER_ID, pacer=pacer)


def refusals(metrics: Metrics) -> dict[str, float]:
    found: dict[str, float] = {}
    for family in metrics.registry.collect():
        for sample in family.samples:
            if sample.name == "whatsapp_graph_errors_total":
                found[sample.labels["code"]] = sample.value
    return found


async def broadcast(
    sender: Outbound,
    contacts: tuple[SimulatedContact, ...],
    failed_at: list[float] | None = None,
) -> list[Any]:
    """Send the template to every contact at once; `failed_at` gets when each failed send
    ended (a refusal, or any other failure)."""

    async def one(contact: SimulatedContact) -> list[Any]:
        results = await sender.send(contact.wa_id or "", {"custom": TEMPLATE})
        if failed_at is not None and None in results:
            failed_at.append(time.monotonic())
        return results

    results = await asyncio.gather(*(one(contact) for contact in contacts))
    return [result for per_message in results for result in per_message]


async def test_a_paced_broadcast_of_2000_gets_no_130429_and_loses_nothing(
    make_sandbox: SandboxFactory,
) -> None:
    contacts = customers(COUNT)
    sandbox = await make_sandbox(
        contacts=contacts, throughput_per_second=RATE, status_delays=(600.0, 600.0, 600.0)
    )
    metrics = Metrics()
    sender = outbound(sandbox.url(""), LocalPacer(RATE, pair_interval=0), metrics)
    start = time.monotonic()
    results = await broadcast(sender, contacts)
    elapsed = time.monotonic() - start
    await sender.close()
    assert refusals(metrics) == {}
    assert all(result is not None for result in results)
    assert len({result.message_id for result in results if result is not None}) == COUNT
    assert (sender.counters["answers_sent"], sender.counters["send_failures"]) == (COUNT, 0)
    assert elapsed >= (COUNT - throughput_burst(RATE)) / RATE - 0.1  # it was paced, not lucky


async def test_a_broadcast_stays_under_the_limit_when_the_event_loop_was_blocked(
    make_sandbox: SandboxFactory,
) -> None:
    """Rasa predicts in the event loop, so a loop can be blocked for a second mid-broadcast:
    the sends due meanwhile must not all leave at once when it resumes (Meta would count them
    in one second), but take new slots."""
    contacts = customers(1200)
    sandbox = await make_sandbox(
        contacts=contacts, throughput_per_second=RATE, status_delays=(600.0, 600.0, 600.0)
    )
    metrics = Metrics()
    sender = outbound(sandbox.url(""), LocalPacer(RATE, pair_interval=0), metrics)
    start = time.monotonic()
    blocked_at: list[float] = []
    failed_at: list[float] = []

    async def block_the_loop() -> None:
        await asyncio.sleep(1.0)
        blocked_at.append(time.monotonic() - start)
        time.sleep(1.5)  # noqa: ASYNC251 (a long prediction, a model load: the loop is blocked)

    blocker = asyncio.create_task(block_the_loop())
    results = await broadcast(sender, contacts, failed_at)
    await blocker
    await sender.close()
    when = [round(at - start, 2) for at in failed_at]
    assert refusals(metrics) == {}, f"sends failed at {when} s; blocked at {blocked_at} s for 1.5 s"
    assert all(result is not None for result in results)
    assert sender.counters["answers_sent"] == 1200


async def test_without_pacing_the_same_broadcast_is_refused(make_sandbox: SandboxFactory) -> None:
    contacts = customers(600)
    # A quarter of RATE: unpaced sends must outrun the limit on a slow machine too (at RATE
    # itself, a machine sending under 400/s drew no refusal and the test failed).
    sandbox = await make_sandbox(
        contacts=contacts, throughput_per_second=RATE / 4, status_delays=(600.0, 600.0, 600.0)
    )
    metrics = Metrics()
    sender = outbound(sandbox.url(""), None, metrics)
    results = await broadcast(sender, contacts)
    await sender.close()
    assert refusals(metrics).get("130429", 0) > 0
    assert sum(result is None for result in results) == refusals(metrics)["130429"]


async def test_a_long_answer_to_one_user_stays_under_the_pair_limit(
    make_sandbox: SandboxFactory,
) -> None:
    sandbox = await make_sandbox(pair_interval=0.2, pair_burst=3)
    await sandbox.user_does({"type": "text", "text": "oi"})  # opens the 24-hour window
    metrics = Metrics()
    # One under the sandbox's burst, as the default is one margin under Meta's.
    sender = outbound(sandbox.url(""), LocalPacer(RATE, pair_interval=0.2, pair_burst=2), metrics)
    start = time.monotonic()
    results = [await sender.send(ANA, {"text": f"parte {i}"}) for i in range(8)]
    elapsed = time.monotonic() - start
    await sender.close()
    assert refusals(metrics) == {}
    assert all(result is not None for per_message in results for result in per_message)
    assert elapsed >= (8 - 2) * 0.2 - 0.05
    texts = [
        m["content"]["text"]["body"]
        for m in await sandbox.conversation()
        if m["direction"] == "bot"
    ]
    assert texts == [f"parte {i}" for i in range(8)]
