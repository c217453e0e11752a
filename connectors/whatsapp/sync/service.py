"""`WebhookService`: the core's `WebhookEndpoint` for synchronous web frameworks (Flask, Django).

Request threads call `verify`, `receive` and `health`; each hands the endpoint's coroutine to the
one event loop of the process (`bridge.LoopThread`) and waits for its answer, which comes as
soon as the webhook is checked and accepted: the answer backend runs afterwards, on the loop,
so Meta gets its 200 before the bot answers
(https://developers.facebook.com/docs/graph-api/webhooks/getting-started).

On the loop, the endpoint's pipeline de-duplicates, keeps each sender's messages in order,
marks them as read, and calls `deliver`: the answer backend, then the endpoint's `Outbound`
(render, send from the number that received the message; failures logged, never raised).

`close()` makes the endpoint refuse new webhooks (503: Meta redelivers them later), finishes
what was accepted within `drain_timeout_seconds`, closes the backend and the connections, and
stops the loop. It runs by itself when the interpreter exits normally.

After `os.fork()` (a pre-forking server with the app loaded in the parent), the loop thread is
not copied: a service first used in the child starts its own loop and endpoint there.
"""

import logging
import os
import threading
import weakref
from collections.abc import Mapping
from typing import Any

from connectors.whatsapp.core.client import GraphClient
from connectors.whatsapp.core.config import WhatsAppConfig
from connectors.whatsapp.core.dedup import DedupStore
from connectors.whatsapp.core.endpoint import (
    Health,
    WebhookEndpoint,
    load_status_hook,
    make_acknowledge,
    make_dedup_store,
    make_graph_client,
)
from connectors.whatsapp.core.importing import call_hook
from connectors.whatsapp.core.inbound import BotInput
from connectors.whatsapp.core.processing import StatusHook
from connectors.whatsapp.core.webhook import (
    SHUTTING_DOWN,
    TEMPORARILY_UNAVAILABLE,
    WebhookRequest,
    WebhookResponse,
)
from connectors.whatsapp.sync.backends import (
    AnswerBackend,
    EchoBackend,
    ask_backend,
    backend_name,
    load_backend,
)
from connectors.whatsapp.sync.bridge import LoopThread, close_at_exit, forget_at_exit

logger = logging.getLogger(__name__)

__all__ = [
    "WebhookService",
    # Where the first layout had them (connectors.whatsapp.service); they live in core.endpoint.
    "load_status_hook",
    "make_acknowledge",
    "make_dedup_store",
    "make_graph_client",
]

HEALTH_TIMEOUT_SECONDS = 2.0
"""The health check runs on the loop: an answer within this time proves the loop is alive."""
RECEIVE_TIMEOUT_SECONDS = 10.0
"""Longest a request thread waits for the loop to accept a webhook (then 503: Meta retries)."""
_STOP_GRACE_SECONDS = 5.0
"""Beyond the drain timeout, time allowed to close connections and stop the loop thread."""


class WebhookService:
    """The webhook endpoint for synchronous frameworks; thread-safe.

    Adapters (`adapters/flask_blueprint.py`, `adapters/drf_view.py`) only convert their
    framework's request and response and call `verify`, `receive` and `health`.
    """

    def __init__(
        self,
        config: WhatsAppConfig,
        backend: AnswerBackend | None = None,
        *,
        client: GraphClient | None = None,
        dedup: DedupStore | None = None,
        status_hook: StatusHook | None = None,
    ) -> None:
        """Check the configuration and wire the parts; no thread or connection starts here.

        Raises:
            ConfigError: an inconsistent setting (signature checks without an app secret, a
                `status_hook` that cannot be imported).
        """
        self.config = config
        self.backend: AnswerBackend = backend if backend is not None else EchoBackend()
        self._parts: dict[str, Any] = {"client": client, "dedup": dedup, "status_hook": status_hook}
        self.endpoint = self._make_endpoint()  # checks the settings now, in the caller's thread
        self.counters: dict[str, int] = {"backend_failures": 0}
        """Changed on the loop only; `health()` reads them there."""
        self._lock = threading.Lock()
        self._runtime: LoopThread | None = None
        self._closed = False

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, backend: AnswerBackend | None = None
    ) -> "WebhookService":
        """Configured from `WHATSAPP_*` variables; the backend from `WHATSAPP_BACKEND`.

        Raises:
            ConfigError: naming the variable at fault.
        """
        env = os.environ if environ is None else environ
        config = WhatsAppConfig.from_env(env)
        if backend is None:
            backend = load_backend(env.get("WHATSAPP_BACKEND"), env)
        return cls(config, backend)

    def __repr__(self) -> str:
        state = "closed" if self._closed else "running" if self._runtime else "not started"
        return f"WebhookService(backend={backend_name(self.backend)!r}, {state})"

    def __enter__(self) -> "WebhookService":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def client(self) -> GraphClient:
        return self.endpoint.client

    @property
    def dedup(self) -> DedupStore:
        return self.endpoint.dedup

    # -- called from request threads ----------------------------------------------------------

    def verify(self, query: Mapping[str, str]) -> WebhookResponse:
        """Meta's GET verification request: 200 with `hub.challenge`, else 403."""
        return self.endpoint.verify(query)

    def receive(self, request: WebhookRequest) -> WebhookResponse:
        """A webhook POST: the endpoint's answer, given as soon as it accepted the events.

        503 once the service is closing (Meta redelivers what this process would not process),
        or when the loop does not answer in time.
        """
        with self._lock:
            if self._closed:
                acceptance = self.endpoint.screen(request)  # bad input still gets its 4xx
                if not acceptance.accepted:
                    return acceptance.response
                logger.warning("Webhook refused with 503: the service is shutting down.")
                return SHUTTING_DOWN
            runtime, endpoint = self._start_locked()
        try:
            return runtime.run(endpoint.receive(request), RECEIVE_TIMEOUT_SECONDS)
        except (TimeoutError, RuntimeError) as error:
            logger.error("Webhook answered 503: the service's loop did not accept it (%s).", error)
            return TEMPORARILY_UNAVAILABLE

    def health(self) -> Health:
        """The endpoint's health, with the backend's name; 503 unless the loop answers in time."""
        name = backend_name(self.backend)
        with self._lock:
            if self._closed:
                return Health(503, {"status": "closed", "backend": name})
            runtime, endpoint = self._start_locked()
        try:
            report = runtime.run(endpoint.health(), HEALTH_TIMEOUT_SECONDS)
        except (TimeoutError, RuntimeError):
            return Health(503, {"status": "unresponsive", "backend": name})
        return Health(report.status_code, {**report.body, "backend": name, **self.counters})

    def metrics(self, request: WebhookRequest) -> WebhookResponse:
        """The endpoint's metrics route (404 while `metrics` is off); 503 if the loop is stuck."""
        if self.endpoint.meter is None:
            return self.endpoint.metrics_off()
        with self._lock:
            if self._closed:
                return SHUTTING_DOWN
            runtime, endpoint = self._start_locked()
        try:
            return runtime.run(endpoint.metrics(request), HEALTH_TIMEOUT_SECONDS)
        except (TimeoutError, RuntimeError):
            return TEMPORARILY_UNAVAILABLE

    def join(self, timeout: float = 30.0) -> bool:
        """Wait until every message accepted so far is processed (tests, benchmarks)."""
        with self._lock:
            runtime = self._runtime
        if runtime is None or runtime.pid != os.getpid():
            return True
        try:
            runtime.run(self.endpoint.join(), timeout)
        except TimeoutError:
            return False
        return True

    def close(self, timeout: float | None = None) -> bool:
        """Stop accepting, finish accepted messages, release connections, stop the loop.

        `timeout` defaults to the configured `drain_timeout_seconds`. Returns True if everything
        accepted was processed in time. Safe to call more than once and from any thread but the
        loop's own.
        """
        with self._lock:
            if self._closed:
                return True
            self._closed = True
            runtime = self._runtime
        forget_at_exit(self)
        if runtime is None or runtime.pid != os.getpid():
            return True  # never started in this process: nothing accepted, nothing connected
        drain = self.config.drain_timeout_seconds if timeout is None else timeout
        finished = False
        try:
            finished = runtime.run(self._shutdown(drain), drain + _STOP_GRACE_SECONDS)
        except (TimeoutError, RuntimeError) as error:
            logger.error("WhatsApp service did not shut down cleanly: %s", error)
        finally:
            runtime.stop(_STOP_GRACE_SECONDS)
        return finished

    # -- the loop side ----------------------------------------------------------------------------

    def _make_endpoint(self) -> WebhookEndpoint:
        return WebhookEndpoint(self.config, self._deliver, **self._parts)

    def _start_locked(self) -> tuple[LoopThread, WebhookEndpoint]:
        """The running loop and endpoint, started on first use (and again after a fork)."""
        runtime = self._runtime
        if runtime is not None and runtime.pid == os.getpid():
            return runtime, self.endpoint
        if runtime is not None:
            logger.info("Process forked: starting the WhatsApp service's loop in this process.")
            self.endpoint = self._make_endpoint()
        runtime = self._runtime = LoopThread()
        weakref.finalize(self, runtime.stop_soon)  # a service dropped without close()
        close_at_exit(self)
        return runtime, self.endpoint

    async def _deliver(self, bot_input: BotInput) -> None:
        try:
            answers = await ask_backend(self.backend, bot_input)
        except Exception:
            # Raised on, as a Rasa turn's error is: the intake decides what follows (memory: logged
            # with its traceback, the next message goes on; redis: retried, then a dead letter,
            # README "Scale-out"). Swallowed here, a message Meta got its 200 for would be lost.
            self.counters["backend_failures"] += 1
            logger.warning(
                "Answer backend %s failed on message %s from %s.",
                backend_name(self.backend),
                bot_input.message_id,
                bot_input.sender_id,
            )
            raise
        # Answer from the number the user wrote to (an app may serve several numbers).
        phone_number_id = bot_input.message.business.phone_number_id
        for number, answer in enumerate(answers):
            await self.endpoint.outbound.send(
                bot_input.sender_id,
                answer,
                phone_number_id=phone_number_id,
                answer_key=f"{bot_input.message_id}:{number}",  # not twice if the turn runs again
            )

    async def _shutdown(self, timeout: float) -> bool:
        finished = await self.endpoint.drain(timeout)
        try:
            await self._close_backend()
        except Exception:
            logger.exception("Closing the answer backend failed.")
        await self.endpoint.close()
        return finished

    async def _close_backend(self) -> None:
        close = getattr(self.backend, "close", None)
        if callable(close):
            await call_hook(close)
