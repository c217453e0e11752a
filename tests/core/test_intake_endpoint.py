"""The endpoint with each intake: repeats dropped, backpressure, 503 rather than a lost message."""

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from connectors.whatsapp.core.config import ConfigError, WhatsAppConfig
from connectors.whatsapp.core.endpoint import WebhookEndpoint
from connectors.whatsapp.core.inbound import BotInput
from connectors.whatsapp.core.signature import sign
from connectors.whatsapp.core.webhook import WebhookRequest
from tests.conftest import ACCESS_TOKEN, APP_SECRET, PHONE_NUMBER_ID, VERIFY_TOKEN
from tests.support.processes import free_port
from tests.support.redis_server import redis_server
from tests.support.waiting import within
from tests.support.webhooks import encode, envelope, text_message


def config(**overrides: Any) -> WhatsAppConfig:
    values: dict[str, Any] = {
        "access_token": ACCESS_TOKEN,
        "phone_number_id": PHONE_NUMBER_ID,
        "verify_token": VERIFY_TOKEN,
        "app_secret": APP_SECRET,
        "api_base_url": "http://127.0.0.1:9",
        "mark_as_read": False,
        "outbox_retry_seconds": 0,
    }
    values.update(overrides)
    return WhatsAppConfig.from_mapping(values)


def post(payload: dict[str, Any]) -> WebhookRequest:
    body = encode(payload)
    return WebhookRequest("POST", body, {"X-Hub-Signature-256": sign(body, APP_SECRET)})


class Bot:
    def __init__(self) -> None:
        self.texts: list[str] = []
        self.release = asyncio.Event()
        self.release.set()

    async def deliver(self, bot_input: BotInput) -> None:
        await self.release.wait()
        self.texts.append(bot_input.text)


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with redis_server() as url:
        yield url


@pytest.fixture
def clean_redis(redis_url: str) -> str:
    client: redis.Redis[bytes] = redis.Redis.from_url(redis_url)
    client.flushall()
    client.close()
    return redis_url


@pytest.mark.parametrize("queue", ["memory", "redis"])
async def test_a_webhook_carrying_one_message_a_thousand_times_is_one_turn(
    queue: str, clean_redis: str
) -> None:
    bot = Bot()
    endpoint = WebhookEndpoint(config(queue=queue, redis_url=clean_redis), bot.deliver)
    payload, _ = text_message("5511933330001", "oi")
    change = payload["entry"][0]["changes"][0]["value"]
    change["messages"] = change["messages"] * 1000
    try:
        answer = await endpoint.receive(post(payload))
        assert answer.status == 200
        await within(10, endpoint.join(), "join()")
        health = await endpoint.health()
    finally:
        await endpoint.close()
    assert bot.texts == ["oi"]
    assert health.body["queue"] == queue
    assert health.body["duplicates"] == 999


@pytest.mark.parametrize("queue", ["memory", "redis"])
async def test_repeats_in_a_refused_webhook_are_counted_once_when_its_redelivery_is_taken(
    queue: str, clean_redis: str
) -> None:
    bot = Bot()
    bot.release.clear()
    endpoint = WebhookEndpoint(
        config(queue=queue, redis_url=clean_redis, max_pending=1), bot.deliver
    )
    payload, _ = text_message("5511933330401", "repetida")
    change = payload["entry"][0]["changes"][0]["value"]
    change["messages"] = change["messages"] * 10
    try:
        assert (await endpoint.receive(post(text_message("5511933330402", "oi")[0]))).status == 200
        assert (await endpoint.receive(post(payload))).status == 503  # the backlog is full
        assert (await endpoint.health()).body["duplicates"] == 0
        bot.release.set()
        await within(10, endpoint.join(), "join()")
        assert (await endpoint.receive(post(payload))).status == 200  # Meta's redelivery
        await within(10, endpoint.join(), "join()")
        health = await endpoint.health()
    finally:
        await endpoint.close()
    assert bot.texts.count("repetida") == 1
    assert health.body["duplicates"] == 9


@pytest.mark.parametrize("queue", ["memory", "redis"])
async def test_beyond_max_pending_webhooks_get_503_with_retry_after_and_are_taken_again_later(
    queue: str, clean_redis: str
) -> None:
    bot = Bot()
    bot.release.clear()
    endpoint = WebhookEndpoint(
        config(queue=queue, redis_url=clean_redis, max_pending=3), bot.deliver
    )
    try:
        answers = [
            await endpoint.receive(post(text_message(f"55119333301{i:02d}", "oi")[0]))
            for i in range(5)
        ]
        health = await endpoint.health()
        assert [a.status for a in answers][:3] == [200, 200, 200]
        refused = [a for a in answers if a.status == 503]
        assert refused and all(a.headers.get("Retry-After") for a in refused)
        assert health.body["max_pending"] == 3
        assert health.body["pending"] >= 3
        assert health.body["webhooks_refused_full"] == len(refused)
        bot.release.set()
        await within(10, endpoint.join(), "join()")
        # Meta's redelivery, once the backlog is gone, is taken.
        again = await endpoint.receive(post(text_message("5511933330199", "de novo")[0]))
        assert again.status == 200
        await within(10, endpoint.join(), "join()")
    finally:
        await endpoint.close()
    assert "de novo" in bot.texts
    assert len(bot.texts) == 3 + 1


async def test_redis_unreachable_means_503_never_a_200() -> None:
    bot = Bot()
    endpoint = WebhookEndpoint(
        config(queue="redis", redis_url=f"redis://127.0.0.1:{free_port()}/0"), bot.deliver
    )
    try:
        answer = await endpoint.receive(post(text_message("5511933330201", "oi")[0]))
        health = await endpoint.health()
        # A webhook without messages (statuses only) stores nothing and is still answered 200.
        statuses = await endpoint.receive(post(envelope(statuses=[])))
    finally:
        await endpoint.close()
    assert answer.status == 503
    assert answer.headers["Retry-After"]
    assert health.status_code == 503
    assert health.body["status"] == "queue unavailable"
    assert "queue_error" in health.body
    assert health.body["webhooks_refused_unavailable"] == 1
    assert statuses.status == 200


async def test_the_redis_queue_serves_a_webhook_end_to_end_and_reports_on_health(
    clean_redis: str,
) -> None:
    bot = Bot()
    endpoint = WebhookEndpoint(config(queue="redis", redis_url=clean_redis), bot.deliver)
    try:
        for text in ("um", "dois", "três"):
            answer = await endpoint.receive(post(text_message("5511933330301", text)[0]))
            assert answer.status == 200
        await within(10, endpoint.join(), "join()")
        health = await endpoint.health()
    finally:
        await endpoint.close()
    assert bot.texts == ["um", "dois", "três"]
    assert health.status_code == 200
    body = health.body
    assert (body["queue"], body["dedup"], body["pending"], body["claimed"]) == (
        "redis",
        "redis",
        0,
        0,
    )
    assert body["dead_letters"] == 0
    assert body["queue_turns"] == 3


def test_queue_settings_are_read_from_credentials_and_environment() -> None:
    from_env = WhatsAppConfig.from_env(
        {
            "WHATSAPP_ACCESS_TOKEN": ACCESS_TOKEN,
            "WHATSAPP_PHONE_NUMBER_ID": PHONE_NUMBER_ID,
            "WHATSAPP_VERIFY_TOKEN": VERIFY_TOKEN,
            "WHATSAPP_APP_SECRET": APP_SECRET,
            "WHATSAPP_QUEUE": "redis",
            "WHATSAPP_CLAIM_IDLE_SECONDS": "12.5",
            "WHATSAPP_MAX_ATTEMPTS": "3",
            "WHATSAPP_MAX_PENDING": "500",
            "WHATSAPP_OUTBOX_RETRY_SECONDS": "60",
        }
    )
    assert (from_env.queue, from_env.dedup) == ("redis", "redis")  # queue: redis implies it
    assert from_env.claim_idle_seconds == 12.5
    assert (from_env.max_attempts, from_env.max_pending) == (3, 500)
    assert from_env.outbox_retry_seconds == 60
    defaults = config(outbox_retry_seconds=None)
    assert (defaults.queue, defaults.claim_idle_seconds, defaults.max_attempts) == (
        "memory",
        30,
        5,
    )
    assert (defaults.max_pending, defaults.outbox_retry_seconds) == (10_000, 900)
    for bad, named in (
        ({"queue": "kafka"}, "'queue'"),
        ({"queue": "redis", "dedup": "memory"}, "'dedup'"),
        ({"max_attempts": 0}, "'max_attempts'"),
        ({"max_pending": "lots"}, "'max_pending'"),
        ({"outbox_retry_seconds": 90_000}, "'outbox_retry_seconds'"),
        ({"claim_idle_seconds": 0}, "'claim_idle_seconds'"),
    ):
        with pytest.raises(ConfigError, match=named):
            config(**bad)
