"""Typed exceptions for the WhatsApp Cloud API (Graph API) and for talking to it.

Meta's advice is to branch on the error `code` (and `error_data.details`), not on the HTTP status
or the title: the throttling codes, for example, come back with HTTP 400, not 429. So the class of
a `GraphAPIError` is chosen by `code`; the HTTP status only decides for a body without a known code.
Codes and their meaning: https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes

Every class has a `retryable` class attribute that the retry policy (`retry.py`) reads:

| class | codes | retryable |
|---|---|---|
| `ThrottlingError` | 4, 80007, 130429 (and HTTP 429 without a code) | yes, with backoff |
| `PairRateLimitError` | 131056 (same recipient, too fast) | yes, after a longer wait |
| `ServiceUnavailableError` | 2, 131000, 131016, 131057, 133004 (and 5xx with no known code) | yes |
| `UnknownAPIError` | 1 ("API Unknown": bad request *or* server error) | once |
| `AuthenticationError` | 0, 190 | no: get a new token |
| `PermissionDeniedError` | 3, 10, 200-299, 131005 | no |
| `ReEngagementError` | 131047 (outside the 24-hour window) | no: send a template |
| `UndeliverableError` | 131026 | no |
| `InvalidRequestError` | 33, 100, 131008, 131009, 131021, 131051, 131053, 135000 | no |
| `TemplateError` | 132000-132069 | no |
| `PolicyError` | 368, 130472, 130497, 131031, 131048, 131049 | no |
| `MarketingOptOutError` (a `PolicyError`) | 131050 (the user stopped marketing messages) | no |
| `GraphAPIError` itself | anything else | no |

Code 1 is the one Meta documents as ambiguous ("Invalid request or possible server error"; "retry
once at most, then fix the request"), so it gets its own class, retried a single time.

Nothing here ever holds the access token: an error is built from the response only, and the client
redacts the token from a response body before it gets here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

ERROR_CODES_URL = "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes"

_MAX_TEXT_IN_MESSAGE = 300
"""A non-JSON error body (an HTML page from a proxy, say) is cut to this many characters."""


class WhatsAppError(Exception):
    """Root of every error this package raises about the WhatsApp Cloud API."""

    retryable: ClassVar[bool] = False
    """Whether trying the same request again later may succeed."""

    max_retries: ClassVar[int | None] = None
    """A cap on retries for this kind of error, below the policy's own; None means no extra cap."""


class GraphAPIError(WhatsAppError):
    """The Graph API answered with an error (any non-2xx response).

    Also the class for codes that none of the subclasses claims: those are not retried. Fields
    follow Meta's error envelope, `{"error": {"message", "type", "code", "error_subcode",
    "error_data": {"details"}, "fbtrace_id"}}`; see
    https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes
    """

    def __init__(
        self,
        *,
        http_status: int,
        code: int | None = None,
        error_subcode: int | None = None,
        message: str = "",
        type: str | None = None,
        details: str | None = None,
        fbtrace_id: str | None = None,
        raw: Mapping[str, Any] | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.http_status = http_status
        self.code = code
        self.error_subcode = error_subcode
        self.message = message
        self.type = type
        self.details = details
        self.fbtrace_id = fbtrace_id
        self.raw: Mapping[str, Any] = raw if raw is not None else {}
        """The `error` object as Meta sent it (or a stand-in for a body that had none)."""
        self.retry_after = retry_after
        """Seconds from a `Retry-After` header, if the response had one."""
        super().__init__(self._describe())

    def _describe(self) -> str:
        code = "no code" if self.code is None else f"code {self.code}"
        if self.error_subcode is not None:
            code += f", subcode {self.error_subcode}"
        text = (
            f"Graph API error ({code}, HTTP {self.http_status}): {self.message or '(no message)'}"
        )
        if self.details:
            text += f" - details: {self.details}"
        if self.fbtrace_id:
            text += f" [fbtrace_id {self.fbtrace_id}]"
        return text

    def __str__(self) -> str:
        return self._describe()

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(http_status={self.http_status}, code={self.code}, "
            f"error_subcode={self.error_subcode}, message={self.message!r}, "
            f"fbtrace_id={self.fbtrace_id!r})"
        )


class ThrottlingError(GraphAPIError):
    """A rate limit was hit (codes 4, 80007, 130429): retry later, with backoff.

    Meta sends these with HTTP 400, not 429. Retrying them aggressively makes things worse, which
    is why the retry policy always waits (equal jitter) and honours `Retry-After`.
    """

    retryable = True


class PairRateLimitError(ThrottlingError):
    """Code 131056: too many messages to the same recipient in a short time.

    Other recipients are unaffected. Meta allows about one message every six seconds to one user,
    so the retry policy waits at least `pair_rate_limit_min_delay` before trying again.
    """


class ServiceUnavailableError(GraphAPIError):
    """Temporary trouble on Meta's side (2, 131000, 131016, 131057, 133004, or a bare 5xx)."""

    retryable = True


class UnknownAPIError(GraphAPIError):
    """Code 1, "API Unknown": an invalid request or a possible server error.

    Meta's advice is to retry once at most and then fix the request, so it is retried one time.
    """

    retryable = True
    max_retries = 1


class AuthenticationError(GraphAPIError):
    """Codes 0 and 190: the access token is invalid or expired. Get a new token; never retried."""


class PermissionDeniedError(GraphAPIError):
    """Codes 3, 10, 200-299, 131005: the app lacks a permission, or it was removed."""


class ReEngagementError(GraphAPIError):
    """Code 131047: more than 24 hours since the user last wrote. Send a template instead."""


class UndeliverableError(GraphAPIError):
    """Code 131026: the recipient cannot get messages (not on WhatsApp, old client, no ToS)."""


class InvalidRequestError(GraphAPIError):
    """The request itself is wrong (100, 131008, 131009, ...): fix it, do not retry."""


class TemplateError(GraphAPIError):
    """Codes 132000-132069: template missing, paused, disabled or given the wrong parameters.

    132069 (a flow throttled for an hour) lands here too: no retry inside our time budget helps.
    """


class PolicyError(GraphAPIError):
    """The account or the recipient is restricted by a policy (368, 131031, 131048-131050, ...)."""


class MarketingOptOutError(PolicyError):
    """131050: the user stopped marketing messages from this business. Do not send them marketing
    templates again until they opt back in (a `user_preferences` webhook says when)."""


class GraphTransportError(WhatsAppError):
    """No usable HTTP response: a timeout, a refused or dropped connection, a DNS failure.

    Retried: a request that timed out may or may not have reached Meta (see `client.py`).
    """

    retryable = True

    def __init__(self, message: str, *, method: str, path: str) -> None:
        self.method = method
        self.path = path
        super().__init__(f"{method} {path}: {message}")


class MediaTooLargeError(WhatsAppError):
    """A media download was larger than the caller's cap; it was stopped, not retried."""

    def __init__(self, *, max_bytes: int, size: int | None) -> None:
        self.max_bytes = max_bytes
        self.size = size
        """The size announced by Content-Length, or the bytes read when the cap was crossed."""
        got = "more than that" if size is None else f"at least {size} bytes"
        super().__init__(f"media is larger than the cap of {max_bytes} bytes ({got})")


class UnexpectedResponseError(WhatsAppError):
    """A 2xx response whose body is not what the Graph API documents (no message id, not JSON).

    Not retried: the request was accepted, so sending it again could duplicate a message.
    """


_THROTTLING = frozenset({4, 80007, 130429})
_PAIR_RATE_LIMIT = frozenset({131056})
_SERVICE = frozenset({2, 131000, 131016, 131057, 133004})
_UNKNOWN = frozenset({1})
_AUTH = frozenset({0, 190})
_PERMISSION = frozenset({3, 10, 131005})
_RE_ENGAGEMENT = frozenset({131047})
_UNDELIVERABLE = frozenset({131026})
_INVALID = frozenset({33, 100, 131008, 131009, 131021, 131051, 131053, 135000})
_POLICY = frozenset({368, 130472, 130497, 131031, 131048, 131049})
_MARKETING_OPT_OUT = frozenset({131050})
_KNOWN_PERMANENT = frozenset(
    {131037, 131042, 131045, 133000, 133005, 133006, 133008, 133009, 133010, 133015, 133016, 134011}
)
"""Documented codes with no class of their own: never retried, even when they come with a 5xx."""

_BY_CODE: dict[frozenset[int], type[GraphAPIError]] = {
    _THROTTLING: ThrottlingError,
    _PAIR_RATE_LIMIT: PairRateLimitError,
    _SERVICE: ServiceUnavailableError,
    _UNKNOWN: UnknownAPIError,
    _AUTH: AuthenticationError,
    _PERMISSION: PermissionDeniedError,
    _RE_ENGAGEMENT: ReEngagementError,
    _UNDELIVERABLE: UndeliverableError,
    _INVALID: InvalidRequestError,
    _POLICY: PolicyError,
    _MARKETING_OPT_OUT: MarketingOptOutError,
    _KNOWN_PERMANENT: GraphAPIError,
}


def error_class_for(code: int | None, http_status: int) -> type[GraphAPIError]:
    """The exception class for a Graph API error `code`; the HTTP status decides only without one.

    A code we do not know, or no code at all, maps to `ServiceUnavailableError` on a 5xx, to
    `ThrottlingError` on a 429 (a proxy's, or the sandbox's), and to `GraphAPIError` otherwise.
    """
    if code is not None:
        for codes, cls in _BY_CODE.items():
            if code in codes:
                return cls
        if 200 <= code <= 299:
            return PermissionDeniedError
        if 132000 <= code <= 132069:
            return TemplateError
    if http_status >= 500:
        return ServiceUnavailableError
    if http_status == 429:
        return ThrottlingError
    return GraphAPIError


def graph_error_from_response(
    http_status: int, payload: object, *, retry_after: float | None = None
) -> GraphAPIError:
    """Build the typed error for a non-2xx Graph API response.

    `payload` is the decoded JSON body, or the body text (or bytes) when it was not JSON. Any
    shape is accepted: a missing `error` object, a `code` sent as a string, an HTML page. What
    cannot be read is left as None; the text of an odd body becomes the message, shortened.
    """
    error = _error_object(payload)
    if error is None:
        message = _body_text(payload)
        raw: Mapping[str, Any] = {"body": message} if message else {}
        cls = error_class_for(None, http_status)
        return cls(http_status=http_status, message=message, raw=raw, retry_after=retry_after)

    error_data = error.get("error_data")
    details = _as_str(error_data.get("details")) if isinstance(error_data, Mapping) else None
    if details is None:
        details = _as_str(error.get("error_user_msg"))
    code = _as_int(error.get("code"))
    cls = error_class_for(code, http_status)
    return cls(
        http_status=http_status,
        code=code,
        error_subcode=_as_int(error.get("error_subcode")),
        message=_as_str(error.get("message")) or _as_str(error.get("title")) or "",
        type=_as_str(error.get("type")),
        details=details,
        fbtrace_id=_as_str(error.get("fbtrace_id")),
        raw=error,
        retry_after=retry_after,
    )


def _error_object(payload: object) -> Mapping[str, Any] | None:
    if not isinstance(payload, Mapping):
        return None
    error = payload.get("error")
    if isinstance(error, Mapping):
        return error
    # Some proxies flatten the envelope; accept a bare error object with a code.
    if "code" in payload and ("message" in payload or "type" in payload):
        return payload
    return None


def _body_text(payload: object) -> str:
    if payload is None:
        return ""
    if isinstance(payload, bytes | bytearray):
        text = bytes(payload).decode("utf-8", "replace")
    elif isinstance(payload, str):
        text = payload
    else:
        text = repr(payload)
    text = " ".join(text.split())
    if len(text) > _MAX_TEXT_IN_MESSAGE:
        text = text[: _MAX_TEXT_IN_MESSAGE - 1] + "…"
    return text


def _as_int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return None
    return None


def _as_str(value: object) -> str | None:
    if value is None or isinstance(value, Mapping | list):
        return None
    return str(value)
