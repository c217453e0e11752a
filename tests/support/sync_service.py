"""Shared by the Flask, DRF and sync service tests: a real Graph API server, services, backends.

The tests here are synchronous, like Flask and Django: `GraphServer` runs on its own event loop
in a background thread (`with GraphServer()`), and the service under test on its own.
"""

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from connectors.whatsapp.core.client import GraphClient
from connectors.whatsapp.core.config import WhatsAppConfig
from connectors.whatsapp.core.inbound import BotInput
from connectors.whatsapp.core.retry import RetryPolicy
from connectors.whatsapp.core.signature import sign
from connectors.whatsapp.sync.backends import AnswerBackend
from connectors.whatsapp.sync.service import WebhookService
from tests.conftest import APP_SECRET
from tests.support.graph_server import GraphServer
from tests.support.settings import credentials

FAST_RETRIES = RetryPolicy(
    base_delay=0.01, max_delay=0.05, max_total_seconds=2, pair_rate_limit_min_delay=0.05
)


class Recorder:
    """A sync answer backend that records what it gets; `hold()` makes it wait for `release()`."""

    def __init__(self, prefix: str = "eco: ") -> None:
        self.prefix = prefix
        self.inputs: list[BotInput] = []
        self.threads: set[int] = set()
        self._gate = threading.Event()
        self._gate.set()
        self.entered = threading.Event()

    def hold(self) -> None:
        self._gate.clear()

    def release(self) -> None:
        self._gate.set()

    @property
    def texts(self) -> list[str]:
        return [bot_input.text for bot_input in self.inputs]

    def __call__(self, bot_input: BotInput) -> list[dict[str, Any]]:
        self.threads.add(threading.get_ident())
        self.entered.set()
        self._gate.wait(30)
        self.inputs.append(bot_input)
        return [{"text": self.prefix + bot_input.text}]


def make_config(graph: GraphServer, **overrides: Any) -> WhatsAppConfig:
    return WhatsAppConfig(**credentials(graph.base_url, drain_timeout_seconds=10.0) | overrides)


def make_service(
    graph: GraphServer, backend: AnswerBackend | None = None, **overrides: Any
) -> WebhookService:
    config = make_config(graph, **overrides)
    client = GraphClient(
        access_token=config.access_token,
        api_version=config.api_version,
        base_url=config.api_base_url,
        retry=FAST_RETRIES,
    )
    return WebhookService(config, backend, client=client)


def signature_headers(body: bytes, secret: str = APP_SECRET) -> dict[str, str]:
    return {"X-Hub-Signature-256": sign(body, secret), "Content-Type": "application/json"}


def messages_to(graph: GraphServer, recipient: str) -> list[dict[str, Any]]:
    return [body for body in graph.sent_messages if body.get("to") == recipient]


def wait_for_messages(
    graph: GraphServer, recipient: str, n: int, timeout: float = 10.0
) -> list[dict[str, Any]]:
    """Wait until `n` messages (read receipts left out) were sent to `recipient`."""
    deadline = time.monotonic() + timeout
    while len(messages_to(graph, recipient)) < n:
        if time.monotonic() > deadline:
            raise AssertionError(
                f"{n} message(s) to {recipient} expected within {timeout} s, got "
                f"{messages_to(graph, recipient)}"
            )
        time.sleep(0.02)
    return messages_to(graph, recipient)


@pytest.fixture
def graph() -> Iterator[GraphServer]:
    with GraphServer() as server:
        yield server


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    backend = Recorder()
    yield backend
    backend.release()  # never leave a worker thread waiting


@pytest.fixture
def service(graph: GraphServer, recorder: Recorder) -> Iterator[WebhookService]:
    with make_service(graph, recorder) as running:
        yield running
