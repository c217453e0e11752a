"""`WebhookService`: the WhatsApp webhook for synchronous web frameworks (Flask, Django).

The core is async (the Graph client, the de-duplication store, the per-sender queues), while
Flask and Django handle each request in a plain thread. The service bridges the two with ONE
asyncio event loop running in a daemon thread, started on first use:

- `verify(query)` and `receive(request)` are called from any request thread. `receive` does the
  cheap, synchronous part at once (size, signature, parsing: `webhook.accept_notification`),
  hands the events to the loop with `call_soon_threadsafe` and returns: Meta gets its 200 before
  the backend runs (https://developers.facebook.com/docs/graph-api/webhooks/getting-started:
  a slow or failed answer makes Meta redeliver).
- On the loop, the same `InboundPipeline` as the Rasa channel's de-duplicates by message id,
  keeps each sender's messages in order, marks them as read, and calls `deliver`: the answer
  backend, then `render_bot_message`, then `GraphClient.send_message` from the number that
  received the message. A send failure is logged with Meta's code and the recipient and never
  raised; statuses never reach the backend.
- `close()` stops accepting (a webhook then gets 503, so Meta redelivers it later), finishes what
  was accepted within `drain_timeout_seconds`, closes the backend, the Graph client and the
  de-duplication store, and stops the loop. It runs by itself when the interpreter exits
  normally (Ctrl-C on `flask run`, a worker's graceful stop), early enough that thread pools
  (sync backends, DNS lookups) still work; see `_install_exit_hook`.

After `os.fork()` (a pre-forking server with the app loaded in the parent), the loop thread is
not copied: a service first used in the child starts its own loop there.

The functions shared with the Rasa channel (`make_dedup_store`, `load_status_hook`,
`mark_message_read`, `send_body`) live here too, free of any framework.
"""

import asyncio
import atexit
import concurrent.futures
import concurrent.futures.thread  # registers its exit hook before ours: see _install_exit_hook
import contextlib
import inspect
import logging
import os
import threading
import weakref
from collections.abc import Coroutine, Iterable, Mapping
from typing import Any, TypeVar

from connectors.whatsapp.core.client import GraphClient, SendResult
from connectors.whatsapp.core.config import ConfigError, WhatsAppConfig
from connectors.whatsapp.core.dedup import DedupStore, InMemoryDedupStore, RedisDedupStore
from connectors.whatsapp.core.errors import WhatsAppError
from connectors.whatsapp.core.events import Event, InboundMessage
from connectors.whatsapp.core.inbound import BotInput, intent_names
from connectors.whatsapp.core.processing import Acknowledge, InboundPipeline, StatusHook
from connectors.whatsapp.core.rendering import RenderOptions, render_bot_message
from connectors.whatsapp.core.webhook import (
    SHUTTING_DOWN,
    WebhookRequest,
    WebhookResponse,
    accept_notification,
    verify_subscription,
)
from connectors.whatsapp.sync.backends import (
    AnswerBackend,
    EchoBackend,
    ask_backend,
    backend_name,
    import_object,
    load_backend,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")

HEALTH_TIMEOUT_SECONDS = 2.0
"""The health check runs on the loop: an answer within this time proves the loop is alive."""
_STOP_GRACE_SECONDS = 5.0
"""Beyond the drain timeout, time allowed to close connections and stop the loop thread."""


# -- shared with the Rasa channel -------------------------------------------------------------


def make_graph_client(config: WhatsAppConfig) -> GraphClient:
    """The Graph API client the configuration asks for."""
    return GraphClient(
        access_token=config.access_token,
        api_version=config.api_version,
        base_url=config.api_base_url,
    )


def make_acknowledge(client: GraphClient, config: WhatsAppConfig) -> Acknowledge | None:
    """Marking accepted messages as read, with "typing..." when an answer will follow, if asked."""
    if not config.mark_as_read:
        return None

    async def acknowledge(message: InboundMessage, expects_answer: bool) -> None:
        typing = config.typing_indicator and expects_answer
        await mark_message_read(client, message, typing_indicator=typing)

    return acknowledge


def make_dedup_store(config: WhatsAppConfig) -> DedupStore:
    """The de-duplication store the configuration asks for."""
    if config.dedup == "redis":
        return RedisDedupStore(url=config.redis_url, ttl_seconds=config.dedup_ttl_seconds)
    return InMemoryDedupStore(
        ttl_seconds=config.dedup_ttl_seconds, max_entries=config.dedup_max_entries
    )


def load_status_hook(path: str | None) -> StatusHook | None:
    """Import the callable that `status_hook` names ("pkg.module.function" or "module:function").

    Raises:
        ConfigError: when it cannot be imported or is not callable.
    """
    if not path:
        return None
    hook = import_object(path, "status_hook")
    if not callable(hook):
        raise ConfigError(f"'status_hook' {path!r} is not callable")
    found: StatusHook = hook
    return found


async def mark_message_read(
    client: GraphClient, message: InboundMessage, *, typing_indicator: bool
) -> None:
    """Mark `message` as read (with "typing..." if asked), from the number that received it.

    A failure only costs the blue ticks: it is logged, never raised.
    """
    try:
        await client.mark_as_read(
            message.business.phone_number_id, message.id, typing_indicator=typing_indicator
        )
    except WhatsAppError as error:
        logger.warning("Could not mark %s as read: %s", message.id, error)


async def send_body(
    client: GraphClient, phone_number_id: str, recipient_id: str, body: Mapping[str, Any]
) -> SendResult | None:
    """Send one Cloud API body; on failure log Meta's code and the recipient and return None.

    The client has already retried what can be retried (throttling, 5xx, timeouts), so what
    reaches here is final. Raising would only lose the answers after this one.
    """
    try:
        return await client.send_message(phone_number_id, body)
    except WhatsAppError as error:
        logger.error(
            "Could not send a %s message to %s from %s: %s",
            body.get("type"),
            recipient_id,
            phone_number_id,
            error,
        )
        return None


# -- the service ------------------------------------------------------------------------------


class ServiceClosed(RuntimeError):
    """The service was closed; it does not start again."""


class WebhookService:
    """The webhook endpoint's behaviour for synchronous frameworks; thread-safe.

    Adapters (`flask_adapter.py`, `drf.py`) only convert their framework's request and response
    to `WebhookRequest` / `WebhookResponse` and call `verify`, `receive` and `health`.

    The service owns the backend, the Graph client and the de-duplication store it is given (or
    makes from `config`), and closes them in `close()`.
    """

    def __init__(
        self,
        config: WhatsAppConfig,
        backend: AnswerBackend | None = None,
        *,
        client: GraphClient | None = None,
        dedup: DedupStore | None = None,
        status_hook: StatusHook | None = None,
        render_options: RenderOptions | None = None,
    ) -> None:
        """Check the configuration and wire the parts; no thread or connection starts here.

        Raises:
            ConfigError: an inconsistent setting (signature checks without an app secret, an
                unknown message kind in `intents`, a `status_hook` that cannot be imported).
        """
        if config.validate_signature and not config.app_secret:
            raise ConfigError(
                "'app_secret' is required to check X-Hub-Signature-256 "
                "(set WHATSAPP_APP_SECRET, or WHATSAPP_VALIDATE_SIGNATURE=false behind a proxy "
                "that checks it)"
            )
        try:
            self._intents = intent_names(config.intents)
        except ValueError as error:
            raise ConfigError(str(error)) from None
        self.config = config
        self.backend: AnswerBackend = backend if backend is not None else EchoBackend()
        self.client = client or make_graph_client(config)
        self.dedup = dedup or make_dedup_store(config)
        self.status_hook = (
            status_hook if status_hook is not None else load_status_hook(config.status_hook)
        )
        self.render_options = render_options or config.render_options()
        self.counters: dict[str, int] = {
            "answers_sent": 0,
            "send_failures": 0,
            "backend_failures": 0,
        }
        """Changed on the loop only; `health()` reads them there."""
        self._lock = threading.Lock()
        self._runtime: _LoopThread | None = None
        self._pipeline: InboundPipeline | None = None
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

    # -- called from request threads ----------------------------------------------------------

    def verify(self, query: Mapping[str, str]) -> WebhookResponse:
        """Meta's GET verification request: 200 with `hub.challenge`, else 403 (or 400)."""
        return verify_subscription(query, self.config.verify_token)

    def receive(self, request: WebhookRequest) -> WebhookResponse:
        """A webhook POST: checked and parsed now, processed in the background.

        Returns the core's decision (200, 400, 401, 403, 413), or 503 once the service is
        closing, so that Meta redelivers what this process would no longer process.
        """
        acceptance = accept_notification(
            request,
            app_secret=self.config.app_secret,
            validate_signature=self.config.validate_signature,
            default_phone_number_id=self.config.phone_number_id,
        )
        if not acceptance.accepted or not acceptance.events:
            return acceptance.response
        with self._lock:  # so that close() cannot slip in between the check and the hand-over
            if self._closed:
                logger.warning("Webhook refused with 503: the service is shutting down.")
                return SHUTTING_DOWN
            runtime, pipeline = self._start_locked()
            runtime.loop.call_soon_threadsafe(_accept, pipeline, acceptance.events)
        return acceptance.response

    def health(self) -> dict[str, Any]:
        """Status and counters. `status` is "ok" only when the event loop answered in time."""
        name = backend_name(self.backend)
        try:
            with self._lock:
                if self._closed:
                    raise ServiceClosed
                runtime, pipeline = self._start_locked()
            snapshot = runtime.run(self._snapshot(pipeline), HEALTH_TIMEOUT_SECONDS)
        except ServiceClosed:
            return {"status": "closed", "backend": name}
        except (TimeoutError, RuntimeError):
            return {"status": "unresponsive", "backend": name}
        return {"status": "ok", "backend": name, **snapshot}

    def join(self, timeout: float = 30.0) -> bool:
        """Wait until every message accepted so far is processed (tests, benchmarks)."""
        with self._lock:
            runtime, pipeline = self._runtime, self._pipeline
        if runtime is None or pipeline is None or runtime.pid != os.getpid():
            return True
        try:
            runtime.run(pipeline.join(), timeout)
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
            runtime, pipeline = self._runtime, self._pipeline
        _open_services.discard(self)
        if runtime is None or pipeline is None or runtime.pid != os.getpid():
            return True  # never started in this process: nothing accepted, nothing connected
        drain = self.config.drain_timeout_seconds if timeout is None else timeout
        logger.info("Stopping: finishing the accepted messages first (at most %g s).", drain)
        finished = False
        try:
            finished = runtime.run(self._shutdown(pipeline, drain), drain + _STOP_GRACE_SECONDS)
        except (TimeoutError, RuntimeError) as error:
            logger.error("WhatsApp service did not shut down cleanly: %s", error)
        finally:
            runtime.stop(_STOP_GRACE_SECONDS)
        return finished

    # -- the loop side ----------------------------------------------------------------------------

    def _start_locked(self) -> tuple["_LoopThread", InboundPipeline]:
        """The running loop and pipeline, started on first use (and again after a fork)."""
        runtime, pipeline = self._runtime, self._pipeline
        if runtime is not None and pipeline is not None and runtime.pid == os.getpid():
            return runtime, pipeline
        if runtime is not None:
            logger.info("Process forked: starting the WhatsApp service's loop in this process.")
        pipeline = InboundPipeline(
            dedup=self.dedup,
            deliver=self._deliver,
            acknowledge=make_acknowledge(self.client, self.config),
            status_hook=self.status_hook,
            intents=self._intents,
            caption_as_text=self.config.media_caption_as_text,
        )
        runtime = _LoopThread()
        weakref.finalize(self, runtime.stop_soon)  # a service dropped without close()
        self._runtime, self._pipeline = runtime, pipeline
        _register_for_exit(self)
        return runtime, pipeline

    async def _deliver(self, bot_input: BotInput) -> None:
        try:
            answers = await ask_backend(self.backend, bot_input)
        except Exception:
            self.counters["backend_failures"] += 1
            logger.exception(
                "Answer backend %s failed on message %s from %s; nothing sent.",
                backend_name(self.backend),
                bot_input.message_id,
                bot_input.sender_id,
            )
            return
        # Answer from the number the user wrote to (an app may serve several numbers).
        phone_number_id = bot_input.message.business.phone_number_id
        for answer in answers:
            bodies = render_bot_message(answer, to=bot_input.sender_id, options=self.render_options)
            for body in bodies:
                sent = await send_body(self.client, phone_number_id, bot_input.sender_id, body)
                self.counters["answers_sent" if sent else "send_failures"] += 1

    async def _snapshot(self, pipeline: InboundPipeline) -> dict[str, Any]:
        return {"pending": pipeline.queues.pending, **pipeline.counters, **self.counters}

    async def _shutdown(self, pipeline: InboundPipeline, timeout: float) -> bool:
        finished = await pipeline.drain(timeout)
        for name, closing in (
            ("backend", self._close_backend),
            ("Graph client", self.client.close),
            ("de-duplication store", self.dedup.close),
        ):
            try:
                await closing()
            except Exception:
                logger.exception("Closing the %s failed.", name)
        return finished

    async def _close_backend(self) -> None:
        close = getattr(self.backend, "close", None)
        if callable(close):
            result = close()
            if inspect.isawaitable(result):
                await result


def _accept(pipeline: InboundPipeline, events: Iterable[Event]) -> None:
    """On the loop: queue accepted events. Never raises into the loop."""
    try:
        pipeline.accept(events)
    except Exception:
        logger.exception("Queuing accepted webhook events failed.")


class _LoopThread:
    """An asyncio event loop running in a daemon thread, until `stop`."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="whatsapp-service-loop", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
        finally:
            try:
                leftovers = asyncio.all_tasks(self.loop)
                for task in leftovers:
                    task.cancel()
                if leftovers:
                    self.loop.run_until_complete(asyncio.gather(*leftovers, return_exceptions=True))
                self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            finally:
                self.loop.close()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float) -> T:
        """Run `coroutine` on the loop and wait for its result (from another thread).

        Raises:
            TimeoutError: it did not finish in time (it is then cancelled).
            RuntimeError: the loop is closed, or this is the loop's own thread.
        """
        if threading.get_ident() == self._thread.ident:
            coroutine.close()
            raise RuntimeError("cannot wait for the service's loop from the loop itself")
        try:
            future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        except RuntimeError:
            coroutine.close()
            raise
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError(f"not finished within {timeout} s") from None

    def stop_soon(self) -> None:
        if not self.loop.is_closed():
            with contextlib.suppress(RuntimeError):  # closed in the meantime
                self.loop.call_soon_threadsafe(self.loop.stop)

    def stop(self, timeout: float) -> None:
        self.stop_soon()
        if threading.get_ident() != self._thread.ident:
            self._thread.join(timeout)


# -- closing at exit --------------------------------------------------------------------------

_open_services: "weakref.WeakSet[WebhookService]" = weakref.WeakSet()
_exit_hook = threading.Lock()
_exit_hook_installed = False


def _register_for_exit(service: WebhookService) -> None:
    global _exit_hook_installed
    with _exit_hook:
        _open_services.add(service)
        if not _exit_hook_installed:
            _install_exit_hook()
            _exit_hook_installed = True


def _install_exit_hook() -> None:
    """Close open services when the interpreter exits normally.

    `threading._register_atexit` (CPython, used by `concurrent.futures` itself) runs before the
    thread pools shut down; a plain `atexit` hook runs after, when `asyncio.to_thread` (sync
    backends) and aiohttp's DNS lookups can no longer start, so messages drained then could not
    be answered. Hooks run in reverse order of registration; `concurrent.futures.thread`
    (imported at the top of this module, else lazily on first use and too late) registers its
    own on import, so ours runs first. If that hook is not available, `atexit` is the fallback.
    """
    register = getattr(threading, "_register_atexit", None)
    if callable(register):
        try:
            register(_close_open_services)
            return
        except RuntimeError:  # already shutting down
            pass
    atexit.register(_close_open_services)


def _close_open_services() -> None:
    for service in list(_open_services):
        try:
            service.close()
        except Exception:
            logger.exception("Closing %r at exit failed.", service)
