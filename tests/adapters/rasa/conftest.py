"""A real Rasa server (Rasa's own app factory, the trained sample bot) with the WhatsApp channel.

The Graph API is a real test server on 127.0.0.1; webhooks are real signed HTTP POSTs.
"""

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sanic import Sanic

from connectors.whatsapp.adapters.rasa_channel import WhatsAppInput
from connectors.whatsapp.core.client import GraphClient
from connectors.whatsapp.core.config import WhatsAppConfig
from connectors.whatsapp.core.events import StatusUpdate
from connectors.whatsapp.core.retry import RetryPolicy
from tests.conftest import ACCESS_TOKEN
from tests.support.graph_server import GraphServer
from tests.support.http import client_session
from tests.support.sanic_server import serve
from tests.support.settings import credentials
from tests.support.waiting import within
from tests.support.webhooks import encode, post_webhook

FAST_RETRIES = RetryPolicy(
    base_delay=0.01, max_delay=0.05, max_total_seconds=2, pair_rate_limit_min_delay=0.05
)

SETTLE_SECONDS = 120
"""A stuck turn fails its test here, naming what is left, well before the test timeout."""

# Rasa's app factory names every app "rasa_server"; Sanic refuses a second one outside test mode.
Sanic.test_mode = True


@pytest.fixture(scope="session")
def rasa_agent(trained_model: Path, action_server_url: str) -> Any:
    """The trained sample bot, loaded once, talking to the real action server."""
    from rasa.core.agent import Agent
    from rasa.utils.endpoints import EndpointConfig

    agent = Agent.load(trained_model, action_endpoint=EndpointConfig(url=action_server_url))
    assert agent.is_ready()
    return agent


@dataclass
class RasaWhatsApp:
    """A running Rasa server with the channel, its Graph API, and helpers to talk to it."""

    url: str
    channel: WhatsAppInput
    graph: GraphServer
    agent: Any
    http: aiohttp.ClientSession
    failed_statuses: list[StatusUpdate] = field(default_factory=list)

    @property
    def webhook_url(self) -> str:
        return self.url + "/webhooks/whatsapp/webhook"

    async def post(self, payload: dict[str, Any] | bytes, **kwargs: Any) -> tuple[int, str]:
        body = payload if isinstance(payload, bytes) else encode(payload)
        return await post_webhook(self.http, self.webhook_url, body, **kwargs)

    async def settle(self, timeout: float = SETTLE_SECONDS) -> None:
        """Wait until every accepted message was processed by the bot."""
        pipeline = self.channel.pipeline
        assert pipeline is not None
        try:
            await within(timeout, pipeline.join(), "join()")
        except AssertionError:
            stats = await pipeline.intake.stats()
            raise AssertionError(f"turns still running after {timeout} s: {stats}") from None

    def replies_to(self, recipient: str) -> list[dict[str, Any]]:
        return [body for body in self.graph.sent_messages if body.get("to") == recipient]

    async def user_turns(self, sender: str) -> list[Any]:
        from rasa.shared.core.events import UserUttered

        tracker = await self.agent.tracker_store.retrieve(sender)
        if tracker is None:
            return []
        return [event for event in tracker.events if isinstance(event, UserUttered)]

    async def bot_turns(self, sender: str) -> list[Any]:
        from rasa.shared.core.events import BotUttered

        tracker = await self.agent.tracker_store.retrieve(sender)
        return [e for e in tracker.events if isinstance(e, BotUttered)] if tracker else []


@pytest.fixture
async def graph() -> AsyncIterator[GraphServer]:
    async with GraphServer(access_token=ACCESS_TOKEN) as server:
        yield server


@pytest.fixture
async def rasa_whatsapp(graph: GraphServer, rasa_agent: Any) -> AsyncIterator[RasaWhatsApp]:
    async with running_rasa(graph, rasa_agent) as server:
        yield server


def running_rasa(graph: GraphServer, agent: Any, **overrides: Any) -> Any:
    """Rasa's own app (API enabled, as `rasa run --enable-api`) serving the channel."""
    import contextlib

    from rasa.core.run import configure_app

    @contextlib.asynccontextmanager
    async def run() -> AsyncIterator[RasaWhatsApp]:
        failed: list[StatusUpdate] = []
        config = WhatsAppConfig.from_mapping(credentials(graph.base_url, **overrides))
        # The real client, with short waits so that retries do not slow the suite down.
        client = GraphClient(
            access_token=config.access_token,
            api_version=config.api_version,
            base_url=config.api_base_url,
            retry=FAST_RETRIES,
        )
        channel = WhatsAppInput(config, client=client, status_hook=failed.append)
        app = configure_app([channel], enable_api=True)
        app.ctx.agent = agent
        async with serve(app) as url, client_session() as http:
            yield RasaWhatsApp(url, channel, graph, agent, http, failed)

    return run()
