"""Django REST Framework adapter: the WhatsApp webhook as an `APIView` over a `WebhookService`.

    # urls.py
    from connectors.whatsapp.adapters.drf_view import (
        WhatsAppHealthView, WhatsAppMetricsView, WhatsAppWebhookView,
    )

    urlpatterns = [
        path("whatsapp/webhook", WhatsAppWebhookView.as_view()),   # GET verification, POST
        path("whatsapp/health", WhatsAppHealthView.as_view()),
        path("whatsapp/metrics", WhatsAppMetricsView.as_view()),   # metrics: true (else 404)
    ]

Needs the `django` extra (`pip install -e ".[django]"`). The service is, in this order: the one
given to `as_view(service=...)`; the `WHATSAPP_SERVICE` setting (a `WebhookService`, or the
import path of one or of a function returning one); else one made once per process from the
`WHATSAPP_*` environment variables (`WebhookService.from_env`).

Meta is not a DRF client, so the views opt out of what DRF would do to one:

- No parsers: the signature is an HMAC of the raw body, so `request.body` is read first, and
  `request.data` never (reading it would consume the stream, and `request.body` then raises,
  https://github.com/encode/django-rest-framework/issues/2774).
- No authentication, permissions, throttling or versioning (Meta authenticates with the
  signature); CSRF exempt (DRF's `as_view` already is); content negotiation never refuses.
- Django caps bodies at `DATA_UPLOAD_MAX_MEMORY_SIZE` (2.5 MB by default): a larger one gets 413,
  like one over Meta's 3 MB limit. The example settings raise the cap to 3 MB.

Errors never become a 500: the core answers bad input (400, 401, 403, 413), DRF's own errors
keep their 4xx, and anything else is logged and answered 503 so Meta redelivers later.
"""

import logging
import threading
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.http import Http404, HttpResponse, JsonResponse
from rest_framework.exceptions import APIException
from rest_framework.request import Request
from rest_framework.views import APIView

from connectors.whatsapp.core.config import ConfigError
from connectors.whatsapp.core.importing import import_object
from connectors.whatsapp.core.webhook import (
    PAYLOAD_TOO_LARGE,
    TEMPORARILY_UNAVAILABLE,
    WebhookRequest,
    WebhookResponse,
)
from connectors.whatsapp.sync.service import WebhookService

logger = logging.getLogger(__name__)

SETTING = "WHATSAPP_SERVICE"

_lock = threading.Lock()
_services: dict[str, WebhookService] = {}
"""Services made by this module, by where they came from: the env, or a factory's path."""


def configured_service() -> WebhookService:
    """The service from the `WHATSAPP_SERVICE` setting, or else from the environment.

    Raises:
        ConfigError: the setting or the `WHATSAPP_*` variables are missing or invalid.
    """
    configured = getattr(settings, SETTING, None)
    if isinstance(configured, WebhookService):
        return configured
    if configured is not None and not (isinstance(configured, str) and configured.strip()):
        raise ConfigError(f"{SETTING} must be a WebhookService or an import path to one")
    key = configured.strip() if isinstance(configured, str) else ""
    with _lock:
        service = _services.get(key)
        if service is None or service.closed:
            service = _services[key] = _make_service(key)
    return service


def _make_service(path: str) -> WebhookService:
    if not path:
        return WebhookService.from_env()
    found = import_object(path, SETTING)
    if not isinstance(found, WebhookService) and callable(found):
        found = found()
    if not isinstance(found, WebhookService):
        raise ConfigError(f"{SETTING} {path!r} is not a WebhookService (nor makes one)")
    return found


def to_webhook_request(request: Request, body: bytes) -> WebhookRequest:
    return WebhookRequest(
        method=request.method,
        body=body,
        headers=dict(request.headers.items()),
        query=request.query_params.dict(),
    )


def to_django_response(answer: WebhookResponse) -> HttpResponse:
    return HttpResponse(
        answer.body, status=answer.status, content_type=answer.content_type, headers=answer.headers
    )


class _MetaFacingView(APIView):
    """An APIView with DRF's client-facing machinery turned off (see the module docstring)."""

    authentication_classes: list[Any] = []
    permission_classes: list[Any] = []
    throttle_classes: list[Any] = []
    parser_classes: list[Any] = []
    versioning_class = None

    service: WebhookService | None = None
    """Set with `as_view(service=...)`; None: `configured_service()`."""

    def get_service(self) -> WebhookService:
        return self.service if self.service is not None else configured_service()

    def perform_authentication(self, request: Request) -> None:
        """No user: Meta is authenticated by the signature (and django.contrib.auth is optional)."""

    def perform_content_negotiation(self, request: Request, force: bool = False) -> Any:
        """Never 406: whatever Meta accepts, it gets plain text."""
        return super().perform_content_negotiation(request, force=True)

    def handle_exception(self, exc: Exception) -> Any:
        """DRF's and Django's HTTP errors as DRF answers them; anything else: logged, 503."""
        if isinstance(exc, APIException | Http404 | PermissionDenied):
            return super().handle_exception(exc)
        if isinstance(exc, ConfigError):
            logger.error("WhatsApp webhook is not configured: %s", exc)
        else:
            logger.error(
                "WhatsApp webhook failed on %s %s.",
                self.request.method,
                self.request.path,
                exc_info=exc,
            )
        return to_django_response(TEMPORARILY_UNAVAILABLE)


class WhatsAppWebhookView(_MetaFacingView):
    """`GET`: Meta's verification request. `POST`: notifications, answered before processing."""

    def get(self, request: Request, *args: Any, **kwargs: Any) -> HttpResponse:
        return to_django_response(self.get_service().verify(request.query_params.dict()))

    def post(self, request: Request, *args: Any, **kwargs: Any) -> HttpResponse:
        service = self.get_service()
        try:
            body = request.body  # the raw bytes, before any parser
        except RequestDataTooBig:
            logger.warning("Webhook refused: body over DATA_UPLOAD_MAX_MEMORY_SIZE.")
            return to_django_response(PAYLOAD_TOO_LARGE)
        return to_django_response(service.receive(to_webhook_request(request, body)))


class WhatsAppHealthView(_MetaFacingView):
    """`GET`: the service's status and counters; 503 unless its loop answers."""

    def get(self, request: Request, *args: Any, **kwargs: Any) -> JsonResponse:
        report = self.get_service().health()
        return JsonResponse(report.body, status=report.status_code)


class WhatsAppMetricsView(_MetaFacingView):
    """`GET`: Prometheus metrics; 404 unless `metrics: true`, 401/403 with `metrics_token`."""

    def get(self, request: Request, *args: Any, **kwargs: Any) -> HttpResponse:
        return to_django_response(self.get_service().metrics(to_webhook_request(request, b"")))
