import asyncio
import logging
from typing import Any

import pytest

from connectors.whatsapp.core.dedup import InMemoryDedupStore
from connectors.whatsapp.core.errors import GraphTransportError
from connectors.whatsapp.core.events import InboundMessage, StatusUpdate
from connectors.whatsapp.core.inbound import BotInput
from connectors.whatsapp.core.parsing import parse_webhook
from connectors.whatsapp.core.processing import InboundPipeline
from connectors.whatsapp.core.queue import QueueFull
from tests.support.webhooks import envelope, text_message, user_message


class Recorder:
    def __init__(self, delay: float = 0) -> None:
        self.delivered: list[BotInput] = []
        self.acknowledged: list[str] = []
        self.expects_answer: list[bool] = []
        self.statuses: list[StatusUpdate] = []
        self.delay = delay

    async def deliver(self, bot_input: BotInput) -> None:
        await asyncio.sleep(self.delay)
        self.delivered.append(bot_input)

    async def acknowledge(self, message: InboundMessage, expects_answer: bool) -> None:
        self.acknowledged.append(message.id)
        self.expects_answer.append(expects_answer)

    def hook(self, status: StatusUpdate) -> None:
        self.statuses.append(status)


def pipeline(recorder: Recorder) -> InboundPipeline:
    return InboundPipeline(
        dedup=InMemoryDedupStore(ttl_seconds=60, max_entries=1000),
        deliver=recorder.deliver,
        acknowledge=recorder.acknowledge,
        status_hook=recorder.hook,
    )


async def test_a_redelivered_message_reaches_the_bot_once() -> None:
    recorder = Recorder()
    inbound = pipeline(recorder)
    payload, wamid = text_message("5511900000001", "oi")
    for _ in range(3):
        await inbound.admit(parse_webhook(payload))
    await inbound.join()
    assert [b.message_id for b in recorder.delivered] == [wamid]
    assert recorder.acknowledged == [wamid]
    assert recorder.expects_answer == [True]
    assert inbound.counters["duplicates"] == 2


async def test_messages_of_one_sender_reach_the_bot_in_arrival_order() -> None:
    recorder = Recorder(delay=0.01)
    inbound = pipeline(recorder)
    texts = [f"mensagem {i}" for i in range(8)]
    for text in texts:
        await inbound.admit(parse_webhook(text_message("5511900000002", text)[0]))
    await inbound.join()
    assert [b.text for b in recorder.delivered] == texts


async def test_statuses_never_reach_the_bot_and_failures_reach_the_hook_once() -> None:
    recorder = Recorder()
    inbound = pipeline(recorder)
    failed = {
        "id": "wamid.OUT1",
        "status": "failed",
        "timestamp": "1732590000",
        "recipient_id": "5511900000003",
        "errors": [{"code": 131047, "title": "Re-engagement message"}],
    }
    delivered = {**failed, "id": "wamid.OUT2", "status": "delivered", "errors": []}
    payload = envelope(statuses=[failed, delivered])
    await inbound.admit(parse_webhook(payload))
    await inbound.admit(parse_webhook(payload))  # redelivered
    await inbound.join()
    assert recorder.delivered == []
    assert [s.message_id for s in recorder.statuses] == ["wamid.OUT1"]
    assert recorder.statuses[0].errors[0].code == 131047


async def test_async_status_hook_is_awaited() -> None:
    seen: list[str] = []

    async def hook(status: StatusUpdate) -> None:
        await asyncio.sleep(0)
        seen.append(status.message_id)

    inbound = InboundPipeline(
        dedup=InMemoryDedupStore(ttl_seconds=60, max_entries=10),
        deliver=Recorder().deliver,
        status_hook=hook,
    )
    status = {
        "id": "wamid.F",
        "status": "failed",
        "recipient_id": "1",
        "errors": [{"code": 131026}],
    }
    await inbound.admit(parse_webhook(envelope(statuses=[status])))
    await inbound.join()
    assert seen == ["wamid.F"]


async def test_messages_not_for_the_bot_are_read_without_typing_and_not_delivered() -> None:
    recorder = Recorder()
    inbound = pipeline(recorder)
    payload, wamid = user_message("5511900000004", "reaction", {"message_id": "x", "emoji": "❤"})
    await inbound.admit(parse_webhook(payload))
    await inbound.join()
    assert recorder.delivered == []
    assert recorder.acknowledged == [wamid]
    assert recorder.expects_answer == [False]  # no "typing..." for 25 s with no answer


async def test_a_failing_bot_does_not_stop_the_next_message(
    caplog: pytest.LogCaptureFixture,
) -> None:
    delivered: list[str] = []

    async def deliver(bot_input: BotInput) -> None:
        if bot_input.text == "quebra":
            raise RuntimeError("agent exploded")
        delivered.append(bot_input.text)

    inbound = InboundPipeline(
        dedup=InMemoryDedupStore(ttl_seconds=9, max_entries=9), deliver=deliver
    )
    for text in ("quebra", "depois"):
        await inbound.admit(parse_webhook(text_message("5511900000005", text)[0]))
    await inbound.join()
    assert delivered == ["depois"]
    assert "agent exploded" in caplog.text


async def test_drain_finishes_accepted_messages() -> None:
    recorder = Recorder(delay=0.05)
    inbound = pipeline(recorder)
    for i in range(3):
        await inbound.admit(parse_webhook(text_message(f"55119000001{i}", "oi")[0]))
    assert await inbound.drain(timeout=5)
    assert len(recorder.delivered) == 3
    before: Any = inbound.counters["accepted"]
    with pytest.raises(QueueFull):  # the endpoint answers 503: Meta redelivers it elsewhere
        await inbound.admit(parse_webhook(text_message("5511900000020", "tarde")[0]))
    assert inbound.counters["accepted"] == before


async def test_the_read_receipt_goes_out_before_the_bot_answers() -> None:
    # The receipt carries the typing indicator: after the answer, "typing..." would linger.
    order: list[str] = []

    async def acknowledge(message: InboundMessage, expects_answer: bool) -> None:
        await asyncio.sleep(0.05)
        order.append("receipt")

    async def deliver(bot_input: BotInput) -> None:
        order.append("answer")

    inbound = InboundPipeline(
        dedup=InMemoryDedupStore(ttl_seconds=9, max_entries=9),
        deliver=deliver,
        acknowledge=acknowledge,
    )
    await inbound.admit(parse_webhook(text_message("5511900000030", "oi")[0]))
    await inbound.join()
    assert order == ["receipt", "answer"]


async def test_a_slow_read_receipt_does_not_hold_the_answer_back() -> None:
    order: list[str] = []
    release = asyncio.Event()

    async def acknowledge(message: InboundMessage, expects_answer: bool) -> None:
        try:
            await release.wait()  # Meta throttles read receipts, say
        except asyncio.CancelledError:
            order.append("receipt abandoned")
            raise
        order.append("receipt")

    async def deliver(bot_input: BotInput) -> None:
        order.append("answer")
        release.set()

    inbound = InboundPipeline(
        dedup=InMemoryDedupStore(ttl_seconds=9, max_entries=9),
        deliver=deliver,
        acknowledge=acknowledge,
        acknowledge_wait=0.05,
    )
    await inbound.admit(parse_webhook(text_message("5511900000031", "oi")[0]))
    await inbound.join()
    # Abandoned before the answer: a late "typing..." would show after it.
    assert order == ["receipt abandoned", "answer"]


@pytest.mark.parametrize(
    ("failure", "logged"),
    [
        (asyncio.TimeoutError(), "not answered in time"),
        (GraphTransportError("timed out", method="POST", path="/x"), "Could not mark"),
        (RuntimeError("a bug"), "Marking wamid"),
    ],
)
async def test_an_acknowledge_that_bounds_itself_fails_without_stopping_the_turn(
    failure: Exception, logged: str, caplog: pytest.LogCaptureFixture
) -> None:
    """`acknowledge_wait=None`: no timer of the pipeline's; whatever the acknowledge raises is
    logged (never a logging error) and the answer still goes out."""
    delivered: list[str] = []

    async def acknowledge(message: InboundMessage, expects_answer: bool) -> None:
        raise failure

    async def deliver(bot_input: BotInput) -> None:
        delivered.append(bot_input.text)

    inbound = InboundPipeline(
        dedup=InMemoryDedupStore(ttl_seconds=9, max_entries=9),
        deliver=deliver,
        acknowledge=acknowledge,
        acknowledge_wait=None,
    )
    with caplog.at_level(logging.WARNING):
        await inbound.admit(parse_webhook(text_message("5511900000032", "oi")[0]))
        await inbound.join()
    assert delivered == ["oi"]
    assert any(logged in record.getMessage() for record in caplog.records)
