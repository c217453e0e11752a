"""The webhook endpoint's decisions, free of any web framework.

An adapter turns its framework's request into a `WebhookRequest`, asks this module what to answer,
and turns the `WebhookResponse` back. The rules (https://developers.facebook.com/docs/graph-api/webhooks/getting-started):

- GET: `hub.mode == "subscribe"` and the verify token matches (constant time): 200 with the
  `hub.challenge` echoed verbatim as plain text; anything else 403.
- POST: over 3 MB: 413; no `X-Hub-Signature-256`: 401; a wrong one: 403 (nothing is parsed before
  the signature is checked); not a webhook body: 400; otherwise 200 and the parsed events, to be
  processed in the background so that Meta gets its 200 fast.
"""

import hmac
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

from connectors.whatsapp.core.events import Event
from connectors.whatsapp.core.limits import WEBHOOK_MAX_BODY_BYTES
from connectors.whatsapp.core.parsing import InvalidWebhook, parse_webhook_body
from connectors.whatsapp.core.signature import SIGNATURE_HEADER, SignatureCheck, check_signature

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 10


@dataclass(frozen=True, slots=True)
class WebhookRequest:
    """What the core needs of an HTTP request. Header names are matched case-insensitively."""

    method: str
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    query: Mapping[str, str] = field(default_factory=dict)

    def header(self, name: str) -> str | None:
        # Frameworks' header maps (Sanic's and aiohttp's CIMultiDict, Django's, Werkzeug's) find
        # any case at once; a plain dict is then scanned.
        value = self.headers.get(name)
        if value is not None:
            return value
        wanted = name.lower()
        for key, value in self.headers.items():
            if key.lower() == wanted:
                return value
        return None


@dataclass(frozen=True, slots=True)
class WebhookResponse:
    """What to answer. `body` is plain text unless `content_type` says otherwise."""

    status: int
    body: str = ""
    content_type: str = "text/plain; charset=utf-8"

    @property
    def headers(self) -> dict[str, str]:
        """Extra headers: `Retry-After` on a 503, so Meta waits a little before redelivering."""
        return {"Retry-After": str(RETRY_AFTER_SECONDS)} if self.status == 503 else {}


@dataclass(frozen=True, slots=True)
class Acceptance:
    """The answer to a POST, and the events to process when it was accepted (status 200)."""

    response: WebhookResponse
    events: tuple[Event, ...] = ()

    @property
    def accepted(self) -> bool:
        return self.response.status == 200


OK = WebhookResponse(200, "EVENT_RECEIVED")
PAYLOAD_TOO_LARGE = WebhookResponse(413, "payload too large")
"""Meta's webhook payloads are at most 3 MB (https://developers.facebook.com/docs/whatsapp/cloud-api/webhooks/overview)."""
SHUTTING_DOWN = WebhookResponse(503, "shutting down, retry later")
"""Answer to a valid webhook once the server is stopping: Meta redelivers it later, elsewhere."""
TOO_MANY_PENDING = WebhookResponse(503, "too many messages waiting, retry later")
"""Answer beyond `max_pending` accepted messages: Meta redelivers later instead of memory (or
Redis) growing without bound."""
TEMPORARILY_UNAVAILABLE = WebhookResponse(503, "temporarily unavailable")
"""Answer to a request that failed on our side (a bug, not bad input): Meta redelivers it, and
de-duplication keeps a message that got through from being processed twice."""


def verify_subscription(query: Mapping[str, str], verify_token: str) -> WebhookResponse:
    """Answer Meta's GET verification request.

    Meta sends `hub.mode=subscribe`, `hub.verify_token` and `hub.challenge` when the callback URL is
    saved in the App Dashboard. PHP-style `hub_mode` names are accepted too.
    """
    mode = query.get("hub.mode") or query.get("hub_mode") or ""
    token = query.get("hub.verify_token") or query.get("hub_verify_token") or ""
    challenge = query.get("hub.challenge") or query.get("hub_challenge")
    token_matches = hmac.compare_digest(token.encode("utf-8"), verify_token.encode("utf-8"))
    if mode != "subscribe" or not token_matches:
        logger.warning("Webhook verification refused: wrong hub.mode or hub.verify_token.")
        return WebhookResponse(403, "verification failed")
    return WebhookResponse(200, challenge or "")


def accept_notification(
    request: WebhookRequest,
    *,
    app_secret: str | None,
    validate_signature: bool = True,
    max_body_bytes: int = WEBHOOK_MAX_BODY_BYTES,
    default_phone_number_id: str | None = None,
) -> Acceptance:
    """Decide what to answer to a webhook POST, and parse it only once it is trusted.

    `default_phone_number_id` stands in for a missing `value.metadata.phone_number_id`.
    """
    if len(request.body) > max_body_bytes:
        logger.warning("Webhook refused: body of %d bytes is over the limit.", len(request.body))
        return Acceptance(PAYLOAD_TOO_LARGE)
    if validate_signature:
        if not app_secret:
            raise ValueError("validate_signature is on but no app_secret is configured")
        check = check_signature(request.body, request.header(SIGNATURE_HEADER), app_secret)
        if check is SignatureCheck.MISSING:
            logger.warning("Webhook refused: no %s header.", SIGNATURE_HEADER)
            return Acceptance(WebhookResponse(401, f"missing {SIGNATURE_HEADER}"))
        if check is SignatureCheck.INVALID:
            logger.warning("Webhook refused: %s does not match the body.", SIGNATURE_HEADER)
            return Acceptance(WebhookResponse(403, "invalid signature"))
    try:
        events = parse_webhook_body(request.body, default_phone_number_id=default_phone_number_id)
    except InvalidWebhook as error:
        logger.warning("Webhook refused: %s", error)
        return Acceptance(WebhookResponse(400, f"not a webhook: {error}"))
    return Acceptance(OK, tuple(events))
