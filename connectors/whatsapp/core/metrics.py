"""Prometheus metrics of one webhook endpoint, in the text format, with `prometheus_client`.

Each `WebhookEndpoint` with `metrics: true` owns one `Metrics`, over its own `CollectorRegistry`
(never the process-global one), so that several endpoints in a process, or in a test run, do not
collide and each route shows only its own numbers. The adapters serve `render()` on their metrics
route (README, "Metrics"); the endpoint decides who may read it (`metrics_token`).

Labels are bounded by construction, as Prometheus asks
(https://prometheus.io/docs/practices/naming/#labels): HTTP status codes, fixed kinds and
outcomes, and Meta's error codes (a number from Meta's table, never free text). Phone numbers,
message ids, user ids and error messages never become label values: every distinct value is a
new time series kept forever by the server. A value outside a label's known set is counted as
`other`, and `BoundedLabel` caps the distinct Meta codes a process reports.

Counters that the pipeline already keeps (`InboundPipeline.counters`) are read at scrape time
rather than counted twice; the queue gauges are read at scrape time from the endpoint's health
(the intake is the authority on what it holds).
"""

import threading
from collections.abc import Callable, Iterable, Iterator, Mapping

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
"""The Prometheus text exposition format that every Prometheus version reads
(https://prometheus.io/docs/instrumenting/exposition_formats/); `generate_latest` writes it."""

GRAPH_KINDS = ("message", "read", "media_lookup", "media_download", "media_upload")
"""What a Graph API request was for (`whatsapp_graph_requests_total{kind}`)."""
GRAPH_OUTCOMES = ("ok", "graph_error", "transport_error")
STATUS_KINDS = ("sent", "delivered", "read", "failed", "played", "deleted", "warning")
"""Meta's status values (https://developers.facebook.com/docs/whatsapp/cloud-api/webhooks/components#statuses-object)."""
MESSAGE_OUTCOMES = {
    "accepted": "accepted",
    "duplicates": "duplicate",
    "delivered": "delivered",
    "not_for_bot": "not_for_bot",
}
"""Pipeline counter name -> `whatsapp_messages_total{outcome}`."""
QUEUE_GAUGES = {
    "pending": ("whatsapp_queue_depth", "Accepted messages not processed yet (queued or running)."),
    "claimed": ("whatsapp_queue_claimed", "Queue entries claimed by an instance, not finished."),
    "dead_letters": ("whatsapp_queue_dead_letters", "Messages set aside after max_attempts."),
    "outbox_waiting": ("whatsapp_outbox_waiting", "Answers waiting in the outbox for a retry."),
}
"""Health body key -> gauge. Keys the intake does not report are simply not exported."""

OTHER = "other"
MAX_CODES = 100
"""Distinct Meta error codes reported per label before the rest count as `other`."""

WEBHOOK_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
"""Meta wants the 200 fast (our target: a median under 250 ms, none over 1 s)."""
GRAPH_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0)
TURN_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class BoundedLabel:
    """Label values from an open set (Meta's codes), capped at `limit` distinct values."""

    def __init__(self, limit: int = MAX_CODES) -> None:
        self._limit = limit
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, code: int | None) -> str:
        if code is None or isinstance(code, bool) or not isinstance(code, int):
            return "none"
        value = str(code)
        with self._lock:
            if value in self._seen:
                return value
            if len(self._seen) >= self._limit:
                return OTHER
            self._seen.add(value)
        return value


class Metrics:
    """The metrics of one endpoint. Recording methods are cheap and never raise."""

    def __init__(
        self,
        *,
        counters: Callable[[], Mapping[str, int]] | None = None,
    ) -> None:
        """`counters`: read at scrape time, the pipeline's message counters."""
        self.registry = CollectorRegistry(auto_describe=True)
        self._codes = BoundedLabel()
        self._gauges: Mapping[str, float] = {}
        registry = self.registry
        self.webhooks = Counter(
            "whatsapp_webhooks",
            "Webhook POSTs, by the HTTP status we answered.",
            ["status"],
            registry=registry,
        )
        self.webhook_seconds = Histogram(
            "whatsapp_webhook_answer_seconds",
            "Time from receiving a webhook POST to its answer (checks, parsing, queueing).",
            buckets=WEBHOOK_BUCKETS,
            registry=registry,
        )
        self.statuses = Counter(
            "whatsapp_statuses",
            "Delivery statuses received, by kind (sent, delivered, read, failed, ...).",
            ["status"],
            registry=registry,
        )
        self.failed_statuses = Counter(
            "whatsapp_failed_statuses",
            "Failed statuses (de-duplicated), by Meta error code.",
            ["code"],
            registry=registry,
        )
        self.graph_requests = Counter(
            "whatsapp_graph_requests",
            "Graph API requests (each attempt), by kind and outcome.",
            ["kind", "outcome"],
            registry=registry,
        )
        self.graph_errors = Counter(
            "whatsapp_graph_errors",
            "Graph API error answers, by Meta error code.",
            ["code"],
            registry=registry,
        )
        self.graph_retries = Counter(
            "whatsapp_graph_retries",
            "Graph API requests retried after a retryable failure, by kind.",
            ["kind"],
            registry=registry,
        )
        self.graph_seconds = Histogram(
            "whatsapp_graph_request_seconds",
            "Graph API latency of one attempt, by kind.",
            ["kind"],
            buckets=GRAPH_BUCKETS,
            registry=registry,
        )
        self.turn_seconds = Histogram(
            "whatsapp_bot_turn_seconds",
            "Time the bot took for one message, answers sent included.",
            buckets=TURN_BUCKETS,
            registry=registry,
        )
        self.paced_seconds = Counter(
            "whatsapp_pacing_wait_seconds",
            "Time sends waited for the business number's rate (max_messages_per_second).",
            registry=registry,
        )
        registry.register(_ScrapeTimeCollector(self, counters))

    # -- recording (called on the hot path: keep them small) -------------------------------

    def webhook_answered(self, status: int, seconds: float) -> None:
        self.webhooks.labels(str(status) if 100 <= status < 600 else OTHER).inc()
        self.webhook_seconds.observe(seconds)

    def status_received(self, status: str) -> None:
        self.statuses.labels(status if status in STATUS_KINDS else OTHER).inc()

    def status_failed(self, codes: Iterable[int | None]) -> None:
        for code in codes or (None,):
            self.failed_statuses.labels(self._codes(code)).inc()

    def graph_request(
        self, kind: str, outcome: str, seconds: float, code: int | None = None
    ) -> None:
        """One attempt of a Graph API request; `code` is Meta's when it answered an error."""
        kind = kind if kind in GRAPH_KINDS else OTHER
        self.graph_requests.labels(kind, outcome).inc()
        self.graph_seconds.labels(kind).observe(seconds)
        if outcome == "graph_error":
            self.graph_errors.labels(self._codes(code)).inc()

    def graph_retry(self, kind: str) -> None:
        self.graph_retries.labels(kind if kind in GRAPH_KINDS else OTHER).inc()

    def turn_finished(self, seconds: float) -> None:
        self.turn_seconds.observe(seconds)

    def paced(self, seconds: float) -> None:
        if seconds > 0:
            self.paced_seconds.inc(seconds)

    # -- exposition --------------------------------------------------------------------------

    def render(self, gauges: Mapping[str, object] | None = None) -> str:
        """The Prometheus text format; `gauges`: the endpoint's health body, read now."""
        self._gauges = {
            key: float(value)
            for key, value in (gauges or {}).items()
            if key in QUEUE_GAUGES
            and isinstance(value, int | float)
            and not isinstance(value, bool)
        }
        return generate_latest(self.registry).decode("utf-8")


class _ScrapeTimeCollector(Collector):
    """What is read when Prometheus scrapes: the pipeline's counters and the queue gauges."""

    def __init__(self, metrics: Metrics, counters: Callable[[], Mapping[str, int]] | None) -> None:
        self._metrics = metrics
        self._counters = counters

    def describe(self) -> Iterable[Metric]:
        return []  # the families depend on what the intake reports: collected at scrape time

    def collect(self) -> Iterator[Metric]:
        counters = self._counters() if self._counters is not None else {}
        messages = CounterMetricFamily(
            "whatsapp_messages",
            "Inbound messages, by outcome: accepted (queued), duplicate (a redelivery, skipped), "
            "delivered (handed to the bot), not_for_bot (reactions, system and unsupported).",
            labels=["outcome"],
        )
        for name, outcome in MESSAGE_OUTCOMES.items():
            messages.add_metric([outcome], float(counters.get(name, 0)))
        yield messages
        for key, value in self._metrics._gauges.items():
            name, documentation = QUEUE_GAUGES[key]
            yield GaugeMetricFamily(name, documentation, value=value)
