"""Faults on demand: throttling and 5xx as Meta sends them, slowness, and the client's retries."""

import time

import aiohttp
import pytest

from connectors.whatsapp.core.client import GraphClient
from connectors.whatsapp.core.errors import ServiceUnavailableError, ThrottlingError
from connectors.whatsapp.core.retry import RetryPolicy
from sandbox.faults import Fault, FaultError, FaultQueue
from tests.conftest import ACCESS_TOKEN, PHONE_NUMBER_ID
from tests.sandbox.conftest import ANA, Sandbox

TEXT = {"messaging_product": "whatsapp", "to": ANA, "type": "text", "text": {"body": "Olá!"}}


async def add_fault(sandbox: Sandbox, fault: dict[str, object]) -> None:
    async with sandbox.session.post(sandbox.url("/_sandbox/faults"), json=fault) as response:
        assert response.status == 201, await response.text()


def client_for(sandbox: Sandbox, attempts: int) -> GraphClient:
    return GraphClient(
        access_token=ACCESS_TOKEN,
        base_url=sandbox.url("/"),
        retry=RetryPolicy(max_attempts=attempts, base_delay=0.01, max_delay=0.02, jitter="none"),
    )


async def test_throttling_is_http_400_with_code_130429_then_success(sandbox: Sandbox) -> None:
    await sandbox.user_does({"type": "text", "text": "oi"})
    await add_fault(sandbox, {"kind": "throttle", "code": 130429, "count": 2})
    for _ in range(2):
        status, body = await sandbox.send(TEXT)
        assert status == 400
        assert body["error"]["code"] == 130429
        assert body["error"]["message"] == "(#130429) Rate limit hit"
    status, body = await sandbox.send(TEXT)
    assert status == 200
    assert body["messages"][0]["id"].startswith("wamid.")


async def test_the_graph_client_retries_through_scripted_throttling(sandbox: Sandbox) -> None:
    await sandbox.user_does({"type": "text", "text": "oi"})
    await add_fault(sandbox, {"kind": "throttle", "code": 130429, "count": 2})
    async with client_for(sandbox, attempts=3) as client:
        result = await client.send_message(PHONE_NUMBER_ID, TEXT)
    conversation = await sandbox.conversation()
    assert [m["id"] for m in conversation if m["direction"] == "bot"] == [result.message_id]


async def test_the_graph_client_gives_up_with_a_typed_error(sandbox: Sandbox) -> None:
    await add_fault(sandbox, {"kind": "throttle", "code": 130429, "count": 5})
    async with client_for(sandbox, attempts=2) as client:
        with pytest.raises(ThrottlingError) as caught:
            await client.send_message(PHONE_NUMBER_ID, TEXT)
    assert caught.value.code == 130429
    async with sandbox.session.delete(sandbox.url("/_sandbox/faults")) as response:
        assert await response.json() == []
    await add_fault(sandbox, {"kind": "server_error", "status": 503, "count": 1})
    async with client_for(sandbox, attempts=1) as client:
        with pytest.raises(ServiceUnavailableError):
            await client.send_message(PHONE_NUMBER_ID, TEXT)


async def test_server_errors(sandbox: Sandbox) -> None:
    await add_fault(sandbox, {"kind": "server_error", "status": 500, "count": 1})
    await add_fault(sandbox, {"kind": "server_error", "status": 503, "count": 1})
    status, body = await sandbox.send(TEXT)
    assert (status, body["error"]["code"]) == (500, 131000)
    status, body = await sandbox.send(TEXT)
    assert (status, body["error"]["code"]) == (503, 2)


async def test_a_retry_after_header_can_be_scripted(sandbox: Sandbox) -> None:
    await add_fault(sandbox, {"kind": "throttle", "code": 80007, "retry_after": 7})
    headers = {"Authorization": f"Bearer {ACCESS_TOKEN}"}
    async with sandbox.session.post(sandbox.messages_url, json=TEXT, headers=headers) as response:
        assert response.status == 400
        assert response.headers["Retry-After"] == "7"


async def test_slowness(sandbox: Sandbox) -> None:
    await sandbox.user_does({"type": "text", "text": "oi"})
    await add_fault(sandbox, {"kind": "slow", "seconds": 0.5, "count": 1})
    started = time.monotonic()
    status, _ = await sandbox.send(TEXT)
    assert status == 200
    assert time.monotonic() - started >= 0.5
    timeout = aiohttp.ClientTimeout(total=0.2)
    await add_fault(sandbox, {"kind": "slow", "seconds": 1, "count": 1})
    async with GraphClient(
        access_token=ACCESS_TOKEN,
        base_url=sandbox.url("/"),
        timeout=timeout,
        retry=RetryPolicy(max_attempts=2, base_delay=0.01, jitter="none"),
    ) as client:
        result = await client.send_message(PHONE_NUMBER_ID, TEXT)  # timed out once, then sent
    assert result.message_id.startswith("wamid.")


async def test_faults_target_sends_not_read_receipts_by_default(sandbox: Sandbox) -> None:
    user = await sandbox.user_does({"type": "text", "text": "oi"})
    await add_fault(sandbox, {"kind": "throttle", "count": 1})
    receipt = {"messaging_product": "whatsapp", "status": "read", "message_id": user["id"]}
    assert (await sandbox.send(receipt))[0] == 200
    assert (await sandbox.send(TEXT))[0] == 400
    async with sandbox.session.get(sandbox.url("/_sandbox/faults")) as response:
        assert await response.json() == []


async def test_bad_fault_requests_are_400(sandbox: Sandbox) -> None:
    for fault in (
        {"kind": "meteor"},
        {"kind": "throttle", "code": 100},
        {"kind": "server_error", "status": 404},
        {"kind": "slow", "seconds": -1},
        {"kind": "throttle", "count": 0},
        {"kind": "throttle", "target": "x"},
    ):
        async with sandbox.session.post(sandbox.url("/_sandbox/faults"), json=fault) as response:
            assert response.status == 400, fault


def test_fault_queue_counts_down_and_matches_targets() -> None:
    queue = FaultQueue()
    queue.add(Fault.from_json({"kind": "throttle", "count": 2}))
    queue.add(Fault.from_json({"kind": "server_error", "target": "any"}))
    assert queue.take("media") is not None  # the "any" fault
    assert queue.take("media") is None
    first, second = queue.take("send"), queue.take("send")
    assert first is not None and second is not None
    assert (first.kind, second.kind) == ("throttle", "throttle")
    assert queue.take("send") is None
    with pytest.raises(FaultError):
        Fault.from_json("throttle")
