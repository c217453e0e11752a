"""Flask adapter: the WhatsApp webhook as a Blueprint over a `WebhookService`.

Routes (relative to where the blueprint is registered):

- `GET /webhook`: Meta's verification request;
- `POST /webhook`: notifications, answered as soon as they are checked (200) while the answer
  backend runs on the service's background loop;
- `GET /health`: status and counters as JSON; 503 when the service's loop is not answering or
  the service is closed;
- `GET /metrics`: Prometheus metrics (404 unless `metrics: true`; `metrics_token` asks for a
  bearer token).

Every decision is the service's; this module only converts Flask's request and response. The
body is read raw, up to Meta's 3 MB limit, before anything parses it: the signature is computed
over those exact bytes.

Errors never become a 500. The core answers bad input itself (400, 401, 403, 413); Flask's own
HTTP errors keep their 4xx status; any other exception is a fault on our side, not in Meta's
request, so it is logged with its traceback and answered 503: Meta redelivers the webhook later,
and de-duplication makes sure a message is still processed only once.
"""

import functools
import logging
import os
from collections.abc import Callable, Mapping
from typing import ParamSpec

from flask import Blueprint, Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from connectors.whatsapp.core.limits import WEBHOOK_MAX_BODY_BYTES
from connectors.whatsapp.core.webhook import (
    TEMPORARILY_UNAVAILABLE,
    WebhookRequest,
    WebhookResponse,
)
from connectors.whatsapp.sync.service import WebhookService

logger = logging.getLogger(__name__)

EXTENSION_KEY = "whatsapp"
"""`app.extensions[EXTENSION_KEY]` is the app's `WebhookService`."""

P = ParamSpec("P")


def never_500(view: Callable[P, Response]) -> Callable[P, Response]:
    """Answer 503 (logged) instead of letting an unexpected exception become a 500.

    Flask's HTTP exceptions (404, 405, 413 from `MAX_CONTENT_LENGTH`, a client that disconnects
    mid-body...) pass through with their own 4xx status.
    """

    @functools.wraps(view)
    def guarded(*args: P.args, **kwargs: P.kwargs) -> Response:
        try:
            return view(*args, **kwargs)
        except HTTPException:
            raise
        except Exception:
            logger.exception("WhatsApp webhook failed on %s %s.", request.method, request.path)
            return to_flask_response(TEMPORARILY_UNAVAILABLE)

    return guarded


def to_webhook_request(max_body_bytes: int = WEBHOOK_MAX_BODY_BYTES) -> WebhookRequest:
    """The current Flask request as the core's `WebhookRequest`; the body read raw.

    At most `max_body_bytes + 1` bytes are read, so the core can tell an oversized body (413)
    without this process buffering an unbounded one.
    """
    body = request.stream.read(max_body_bytes + 1) if request.method == "POST" else b""
    return WebhookRequest(
        method=request.method,
        body=body,
        headers=dict(request.headers.items()),
        query=request.args.to_dict(),
    )


def to_flask_response(answer: WebhookResponse) -> Response:
    return Response(
        answer.body, status=answer.status, content_type=answer.content_type, headers=answer.headers
    )


def whatsapp_blueprint(
    service: WebhookService, *, name: str = "whatsapp", url_prefix: str | None = None
) -> Blueprint:
    """The webhook and health routes over `service`; register it on any Flask app."""
    blueprint = Blueprint(name, __name__, url_prefix=url_prefix)

    @blueprint.get("/webhook")
    @never_500
    def verify() -> Response:
        return to_flask_response(service.verify(request.args.to_dict()))

    @blueprint.post("/webhook")
    @never_500
    def receive() -> Response:
        return to_flask_response(service.receive(to_webhook_request()))

    @blueprint.get("/metrics")
    @never_500
    def metrics() -> Response:
        return to_flask_response(service.metrics(to_webhook_request()))

    @blueprint.get("/health")
    @never_500
    def health() -> Response:
        report = service.health()
        answer = jsonify(report.body)
        answer.status_code = report.status_code
        return answer

    return blueprint


def create_app(
    service: WebhookService | None = None, *, environ: Mapping[str, str] | None = None
) -> Flask:
    """A Flask app serving the WhatsApp webhook at `/webhook` and its health at `/health`.

    Without `service`, one is made from `WHATSAPP_*` variables (`WebhookService.from_env`), with
    the backend that `WHATSAPP_BACKEND` names (echo by default).

    Raises:
        ConfigError: a setting is missing or invalid; the message names the variable.
    """
    if service is None:
        service = WebhookService.from_env(os.environ if environ is None else environ)
    app = Flask(__name__)
    app.register_blueprint(whatsapp_blueprint(service))
    app.extensions[EXTENSION_KEY] = service
    return app
