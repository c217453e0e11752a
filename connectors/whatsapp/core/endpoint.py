"""`WebhookEndpoint`: the whole WhatsApp webhook, for any web framework.

Every adapter (the Rasa channel, the Flask blueprint, the DRF view) converts its framework's
request to a `WebhookRequest`, awaits one of the methods below, and converts the
`WebhookResponse` back. Nothing else: each decision is made here, once.

- `verify(query)`: Meta's GET verification (the echoed `hub.challenge`, or 403).
- `receive(request)`: a POST. Size (413), signature (401/403), parsing (400), then the events
  go to the pipeline and Meta gets its 200 before the bot runs
  (https://developers.facebook.com/docs/graph-api/webhooks/getting-started: a slow answer makes
  Meta redeliver). While draining: 503 with Retry-After, as a 200 would lose the message. An
  unexpected fault on our side: logged, 503, never a 500 (Meta redelivers and de-duplication
  keeps the redelivery from running twice).
- `health()`: one body and one status rule for every adapter: 200 while accepting, else 503.
- `metrics(request)`: Prometheus metrics (`core/metrics.py`) when `metrics: true`, else 404;
  with `metrics_token`, only for `Authorization: Bearer <token>` (401 without it, 403 wrong).
- `drain(timeout)` then `close()`: on shutdown, stop accepting, finish what was accepted, close
  the connections.

The endpoint builds what it needs from `WhatsAppConfig`, in one place (`__init__` and the
`make_*` functions below): the Graph client, the de-duplication store, the read receipts, the
status hook, the outbound sender. Tests and benchmarks may hand in their own parts instead.
What the bot is stays with the adapter: a `Deliver` coroutine given each `BotInput`.
"""

import hmac
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from connectors.whatsapp.core.client import GraphClient
from connectors.whatsapp.core.config import ConfigError, WhatsAppConfig
from connectors.whatsapp.core.dedup import DedupStore, InMemoryDedupStore, RedisDedupStore
from connectors.whatsapp.core.errors import WhatsAppError
from connectors.whatsapp.core.events import InboundMessage, StatusUpdate
from connectors.whatsapp.core.identity import (
    IdentityStore,
    InMemoryKeyValueStore,
    RedisKeyValueStore,
)
from connectors.whatsapp.core.importing import import_object
from connectors.whatsapp.core.inbound import BotInput, Translator
from connectors.whatsapp.core.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from connectors.whatsapp.core.metrics import Metrics
from connectors.whatsapp.core.outbound import Outbound
from connectors.whatsapp.core.outbox import MemoryOutbox, Outbox, Parcel, RedisOutbox, gone_status
from connectors.whatsapp.core.pacing import LocalPacer, Pacer, RedisPacer
from connectors.whatsapp.core.processing import (
    READ_RECEIPT_WAIT_SECONDS,
    Acknowledge,
    EventHook,
    InboundPipeline,
    StatusHook,
)
from connectors.whatsapp.core.queue import Intake, QueueFull, QueueUnavailable
from connectors.whatsapp.core.queue.memory import MemoryIntake
from connectors.whatsapp.core.webhook import (
    SHUTTING_DOWN,
    TEMPORARILY_UNAVAILABLE,
    TOO_MANY_PENDING,
    Acceptance,
    WebhookRequest,
    WebhookResponse,
    accept_notification,
    verify_subscription,
)

logger = logging.getLogger(__name__)

Deliver = Callable[[BotInput], Awaitable[None]]
"""Hands one message to the bot and sends its answers (through `endpoint.outbound`)."""


@dataclass(frozen=True, slots=True)
class Health:
    """The health route's answer: `status_code` 200 while the endpoint accepts webhooks.

    Reads like its body too (`health["status"]`, `health.get("pending")`), as the dict that
    `WebhookService.health()` returned before the endpoint existed.
    """

    status_code: int
    body: dict[str, Any]

    def __getitem__(self, key: str) -> Any:
        return self.body[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.body.get(key, default)


def make_graph_client(config: WhatsAppConfig) -> GraphClient:
    """The Graph API client the configuration asks for."""
    return GraphClient(
        access_token=config.access_token,
        api_version=config.api_version,
        base_url=config.api_base_url,
        media_hosts=config.media_hosts,
    )


def make_answer_log(config: WhatsAppConfig) -> RedisKeyValueStore | None:
    """With `queue: redis`, which answers of each turn were sent (`Outbound.answered`): a turn
    runs again when its instance died or it raised, and must not send what it sent before."""
    if config.queue != "redis":
        return None
    return RedisKeyValueStore(
        url=config.redis_url, prefix="whatsapp:answered:", name="The answer log"
    )


def make_identity_store(config: WhatsAppConfig) -> IdentityStore:
    """The identity store: in Redis beside the de-duplication keys with `dedup: redis` (shared
    by every instance), else in this process's memory."""
    if config.dedup == "redis":
        store: RedisKeyValueStore | InMemoryKeyValueStore = RedisKeyValueStore(
            url=config.redis_url, prefix="whatsapp:identity:"
        )
    else:
        store = InMemoryKeyValueStore(max_entries=config.dedup_max_entries)
    return IdentityStore(store, ttl_seconds=config.identity_ttl_seconds)


def load_event_hook(path: str | None) -> EventHook | None:
    """Import the callable that `event_hook` names, like `load_status_hook`."""
    found: EventHook | None = _load_hook(path, "event_hook")
    return found


def make_dedup_store(config: WhatsAppConfig) -> DedupStore:
    """The de-duplication store the configuration asks for."""
    if config.dedup == "redis":
        return RedisDedupStore(url=config.redis_url, ttl_seconds=config.dedup_ttl_seconds)
    return InMemoryDedupStore(
        ttl_seconds=config.dedup_ttl_seconds, max_entries=config.dedup_max_entries
    )


def make_pacer(config: WhatsAppConfig) -> Pacer:
    """The send pacing the configuration asks for: in Redis when instances share Redis.

    `queue: redis` (or `dedup: redis`) means several instances may send from one number, so the
    number's budget must be shared through Redis; otherwise this process's buckets are enough:
    the endpoint's, which every sender of the process uses (the Rasa channel's answers and its
    proactive output channel, the sync service's answers).
    """
    if config.queue == "redis" or config.dedup == "redis":
        return RedisPacer(
            url=config.redis_url,
            max_messages_per_second=config.max_messages_per_second,
            pair_interval=config.pair_interval_seconds,
            pair_burst=config.pair_burst,
        )
    return LocalPacer(
        config.max_messages_per_second,
        pair_interval=config.pair_interval_seconds,
        pair_burst=config.pair_burst,
    )


NOT_FOUND = WebhookResponse(404, "not found")
METRICS_TOKEN_MISSING = WebhookResponse(401, "metrics need Authorization: Bearer <metrics_token>")
METRICS_TOKEN_WRONG = WebhookResponse(403, "wrong metrics token")


def make_intake(config: WhatsAppConfig) -> Intake:
    """Where accepted messages wait: this process's memory, or the Redis stream (`queue`)."""
    if config.queue == "redis":
        from connectors.whatsapp.core.queue.redis_stream import RedisStreamIntake

        return RedisStreamIntake(
            url=config.redis_url,
            claim_idle_seconds=config.claim_idle_seconds,
            max_attempts=config.max_attempts,
            max_pending=config.max_pending,
            done_ttl_seconds=config.dedup_ttl_seconds,
        )
    return MemoryIntake(max_pending=config.max_pending)


def make_outbox(config: WhatsAppConfig) -> Outbox | None:
    """Where answers that failed for a retryable reason wait (None: `outbox_retry_seconds: 0`)."""
    if config.outbox_retry_seconds <= 0:
        return None
    if config.queue == "redis":
        return RedisOutbox(url=config.redis_url, retry_seconds=config.outbox_retry_seconds)
    return MemoryOutbox(retry_seconds=config.outbox_retry_seconds)


def load_status_hook(path: str | None) -> StatusHook | None:
    """Import the callable that `status_hook` names ("pkg.module.function" or "module:function").

    Raises:
        ConfigError: when it cannot be imported or is not callable.
    """
    found: StatusHook | None = _load_hook(path, "status_hook")
    return found


def _load_hook(path: str | None, key: str) -> Any:
    """The callable the setting `key` names, or None when it is unset."""
    if not path:
        return None
    hook = import_object(path, key)
    if not callable(hook):
        raise ConfigError(f"'{key}' {path!r} is not callable")
    return hook


def make_acknowledge(client: GraphClient, config: WhatsAppConfig) -> Acknowledge | None:
    """Marking accepted messages as read, with "typing..." when an answer will follow, if asked.

    A failure only costs the blue ticks: it is logged, never raised. (The endpoint itself uses
    `receipts_for`, whose receipts bound their own time.)
    """
    if not config.mark_as_read:
        return None

    async def acknowledge(message: InboundMessage, expects_answer: bool) -> None:
        try:
            await client.mark_as_read(
                message.business.phone_number_id,
                message.id,
                typing_indicator=config.typing_indicator and expects_answer,
            )
        except WhatsAppError as error:
            logger.warning("Could not mark %s as read: %s", message.id, error)

    return acknowledge


def receipts_for(
    client: GraphClient, config: WhatsAppConfig
) -> tuple[Acknowledge | None, float | None]:
    """The read receipts the pipeline sends, and how long it must let one hold a turn back.

    With this project's `GraphClient`, the acknowledge hands back the client's own request (no
    coroutine of ours around it: a frame less alive per message while the receipt is in
    flight), bounded by the client's aiohttp timeout to `READ_RECEIPT_WAIT_SECONDS`, retries
    included, so the pipeline needs no timer of its own (None). A client of another class (a
    subclass overriding `mark_as_read`, a stand-in) keeps `make_acknowledge` and the pipeline's
    timer: it may not take `within`, or honour it.
    """
    if not config.mark_as_read:
        return None, None
    if type(client).mark_as_read is not GraphClient.mark_as_read:
        return make_acknowledge(client, config), READ_RECEIPT_WAIT_SECONDS
    typing = config.typing_indicator

    def acknowledge(message: InboundMessage, expects_answer: bool) -> Awaitable[None]:
        return client.mark_as_read(
            message.business.phone_number_id,
            message.id,
            typing_indicator=typing and expects_answer,
            within=READ_RECEIPT_WAIT_SECONDS,
        )

    return acknowledge, None


class WebhookEndpoint:
    """The webhook's behaviour; call its coroutines on one event loop.

    Nothing bound to an event loop is created in `__init__` (the Graph client's session and the
    per-sender queues start on first use), so an endpoint may be built at import or start-up
    time, before the loop that serves it runs.
    """

    def __init__(
        self,
        config: WhatsAppConfig,
        deliver: Deliver | None = None,
        *,
        client: GraphClient | None = None,
        dedup: DedupStore | None = None,
        status_hook: StatusHook | None = None,
        pacer: Pacer | None = None,
        intake: Intake | None = None,
        outbox: Outbox | None = None,
    ) -> None:
        """Check the settings and wire the parts.

        Raises:
            ConfigError: an inconsistent setting (signature checks without an app secret, a
                `status_hook` that cannot be imported).
        """
        if config.validate_signature and not config.app_secret:
            raise ConfigError(
                "'app_secret' is required to check X-Hub-Signature-256 (set it, or "
                "WHATSAPP_APP_SECRET; or validate_signature: false behind a proxy that checks it)"
            )
        self.config = config
        self.meter: Metrics | None = (
            Metrics(counters=lambda: self.pipeline.counters) if config.metrics else None
        )
        self.client = client or make_graph_client(config)
        if self.meter is not None and self.client.metrics is None:
            self.client.metrics = self.meter
        self.pacer = pacer if pacer is not None else make_pacer(config)
        self.dedup = dedup or make_dedup_store(config)
        self.status_hook = (
            status_hook if status_hook is not None else load_status_hook(config.status_hook)
        )
        self.identities = make_identity_store(config)
        self.event_hook = load_event_hook(config.event_hook)
        self.intake = intake if intake is not None else make_intake(config)
        self.outbox = outbox if outbox is not None else make_outbox(config)
        self.outbound = Outbound(
            self.client,
            default_phone_number_id=config.phone_number_id,
            options=config.render_options(),
            pacer=self.pacer,
            identities=self.identities,
            reengagement=config.reengagement_template,
            status_hook=self._metered_status_hook(),
            outbox=self.outbox,
            on_paced=self.meter.paced if self.meter is not None else None,
            answered=make_answer_log(config),
            answered_ttl_seconds=config.dedup_ttl_seconds,
        )
        if self.outbox is not None:
            self.outbox.bind(self.outbound.send_waiting, self._answer_lost)
        try:  # already checked by from_mapping; a config built directly is checked here
            self._inbound = config.inbound_options()
        except ValueError as error:
            raise ConfigError(str(error)) from None
        self._deliver = deliver
        self._pipeline: InboundPipeline | None = None
        self._draining = False
        self._closed = False
        self._started = False
        self.counters: dict[str, int] = {
            "webhooks_refused_draining": 0,
            "webhook_faults": 0,
            "webhooks_refused_full": 0,
            "webhooks_refused_unavailable": 0,
        }
        logger.info(
            "WhatsApp channel: business number %s, Graph API %s (%s), de-duplication %s, queue %s.",
            config.phone_number_id,
            config.api_base_url,
            config.api_version,
            config.dedup,
            self.intake.mode,
        )

    def bind(self, deliver: Deliver) -> None:
        """Set what hands messages to the bot (when it is known after construction: Rasa)."""
        self._deliver = deliver

    @property
    def pipeline(self) -> InboundPipeline:
        """The de-duplicated, per-sender ordered processing of accepted messages."""
        if self._pipeline is None:
            acknowledge, acknowledge_wait = receipts_for(self.client, self.config)
            self._pipeline = InboundPipeline(
                dedup=self.dedup,
                deliver=self._deliver_to_bot,
                acknowledge=acknowledge,
                acknowledge_wait=acknowledge_wait,
                status_hook=self._failed_status_hook,
                translate=Translator(self._inbound, self.identities),
                event_hook=self.event_hook,
                intake=self.intake,
            )
        return self._pipeline

    @property
    def accepting(self) -> bool:
        return not (self._draining or self._closed)

    def verify(self, query: Mapping[str, str]) -> WebhookResponse:
        """Meta's GET verification request: 200 with `hub.challenge`, else 403."""
        return verify_subscription(query, self.config.verify_token)

    def screen(self, request: WebhookRequest) -> Acceptance:
        """The synchronous checks of a POST (size, signature, parsing): its 4xx, or its events.

        Bad input gets its 4xx whatever the endpoint's state, even once it is closed.
        """
        return accept_notification(
            request,
            app_secret=self.config.app_secret,
            validate_signature=self.config.validate_signature,
            default_phone_number_id=self.config.phone_number_id,
        )

    async def receive(self, request: WebhookRequest) -> WebhookResponse:
        """A webhook POST: checked and parsed now, processed in the background."""
        if self.meter is None:
            return await self._receive(request)
        started = time.perf_counter()
        answer = await self._receive(request)
        self.meter.webhook_answered(answer.status, time.perf_counter() - started)
        return answer

    async def start(self) -> None:
        """Begin taking queued work (`queue: redis`: every instance consumes, webhooks or not).

        Adapters call it when their server starts; `receive` and `health` call it too.
        """
        if self._started:  # both starts are once only: not two more coroutines per webhook
            return
        await self.pipeline.intake.start()
        if isinstance(self.outbox, RedisOutbox):
            await self.outbox.start()
        self._started = True

    async def _receive(self, request: WebhookRequest) -> WebhookResponse:
        try:
            acceptance = self.screen(request)
            if not acceptance.accepted or not acceptance.events:
                return acceptance.response
            if not self.accepting:
                self.counters["webhooks_refused_draining"] += 1
                logger.warning("Webhook refused with 503: the server is stopping.")
                return SHUTTING_DOWN
            await self.start()
            try:
                await self.pipeline.admit(acceptance.events)
            except QueueFull as error:
                self.counters["webhooks_refused_full"] += 1
                logger.warning("Webhook refused with 503: %s.", error)
                return TOO_MANY_PENDING
            except QueueUnavailable as error:
                self.counters["webhooks_refused_unavailable"] += 1
                logger.error("Webhook refused with 503: %s", error)
                return TEMPORARILY_UNAVAILABLE
            if self.meter is not None:
                for event in acceptance.events:
                    if isinstance(event, StatusUpdate):
                        self.meter.status_received(event.status)
            return acceptance.response
        except Exception:
            self.counters["webhook_faults"] += 1
            logger.exception("WhatsApp webhook failed; answering 503 so that Meta retries.")
            return TEMPORARILY_UNAVAILABLE

    async def health(self) -> Health:
        """Status and counters; 200 while accepting webhooks, else 503."""
        status = "closed" if self._closed else "draining" if self._draining else "ok"
        pipeline = self.pipeline
        if self.accepting:
            await self.start()
        queue = await pipeline.intake.stats() if not self._closed else {}
        if "queue_error" in queue and status == "ok":
            status = "queue unavailable"  # webhooks get 503 now: take this instance out
        outbox: dict[str, Any] = {}
        if self.outbox is not None:
            try:
                outbox["outbox_waiting"] = await self.outbox.waiting()
            except Exception as error:
                outbox["outbox_waiting"] = None
                outbox["outbox_error"] = f"unreachable: {error}"
            outbox.update(self.outbox.counters)
        body: dict[str, Any] = {
            "status": status,
            "queue": pipeline.intake.mode,
            "dedup": self.config.dedup,
            "pending": 0,
            **queue,
            **outbox,
            **pipeline.counters,
            **self.outbound.counters,
            **self.counters,
        }
        return Health(200 if status == "ok" else 503, body)

    def metrics_off(self) -> WebhookResponse:
        """What the metrics route answers while `metrics` is off: 404, as for no route at all."""
        return NOT_FOUND

    async def metrics(self, request: WebhookRequest | None = None) -> WebhookResponse:
        """The metrics route: Prometheus text format; 404 while `metrics` is off.

        With `metrics_token`, the request must carry `Authorization: Bearer <token>` (compared in
        constant time): 401 without the header, 403 with another token.
        """
        if self.meter is None:
            return NOT_FOUND
        token = self.config.metrics_token
        if token:
            header = request.header("Authorization") if request is not None else None
            if not header or not header.strip():
                return METRICS_TOKEN_MISSING
            scheme, _, given = header.strip().partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(
                given.strip().encode("utf-8"), token.encode("utf-8")
            ):
                return METRICS_TOKEN_WRONG
        report = await self.health()
        return WebhookResponse(200, self.meter.render(report.body), METRICS_CONTENT_TYPE)

    async def join(self) -> None:
        """Wait until everything accepted so far is processed (tests, benchmarks)."""
        if self._pipeline is not None:
            await self._pipeline.join()

    async def drain(self, timeout: float | None = None) -> bool:
        """Stop accepting (503 from now on) and finish what was accepted, within `timeout` s.

        `timeout` defaults to `drain_timeout_seconds`. True if everything finished in time.
        """
        self._draining = True
        limit = self.config.drain_timeout_seconds if timeout is None else timeout
        if self._pipeline is None and self.outbox is None:
            return True
        started = time.monotonic()
        finished = True
        if self._pipeline is not None:
            logger.info("Stopping: finishing the accepted messages first (at most %g s).", limit)
            finished = await self._pipeline.drain(limit)
        if self.outbox is not None:
            left = max(limit - (time.monotonic() - started), 0.0)
            finished = await self.outbox.drain(left) and finished
        return finished

    async def close(self) -> None:
        """Release connections (the Graph client, the de-duplication store). Idempotent."""
        if self._closed:
            return
        self._closed = True
        closers = [("queue", self.intake.close)]
        if self.outbox is not None:
            closers.append(("outbox", self.outbox.close))
        for name, closing in (
            *closers,
            ("Graph client", self.outbound.close),
            ("store", self.dedup.close),
            ("identity store", self.identities.close),
            ("pacing store", self.pacer.close),
            *([("answer log", self.outbound.answered.close)] if self.outbound.answered else []),
        ):
            try:
                await closing()
            except Exception:
                logger.exception("Closing the %s failed.", name)

    async def _answer_lost(self, parcel: Parcel, reason: str) -> None:
        """An answer the outbox gave up on: to the status hook, as a `failed` status."""
        await self.outbound.report_status(gone_status(parcel, reason))

    async def _deliver_to_bot(self, bot_input: BotInput) -> None:
        if self._deliver is None:
            raise RuntimeError("WebhookEndpoint has no bot: call bind(deliver) first")
        if self.meter is None:
            await self._deliver(bot_input)
            return
        started = time.perf_counter()
        try:
            await self._deliver(bot_input)
        finally:
            self.meter.turn_finished(time.perf_counter() - started)

    async def _failed_status_hook(self, status: StatusUpdate) -> None:
        """A failed status: 131047 gets the re-engagement template once; then the status hook."""
        await self.outbound.on_failed_status(status)
        await self.outbound.report_status(status)

    def _metered_status_hook(self) -> StatusHook | None:
        """The status hook, counting failed statuses by Meta code first when metrics are on."""
        metrics, hook = self.meter, self.status_hook
        if metrics is None:
            return hook

        def counted(status: StatusUpdate) -> Any:
            metrics.status_failed([error.code for error in status.errors])
            return hook(status) if hook is not None else None

        return counted
