"""`GraphClient`: the async WhatsApp Cloud API (Graph API) client, the only module doing HTTP.

Endpoints (https://developers.facebook.com/docs/whatsapp/cloud-api/reference):

- `POST {base}/{version}/{phone_number_id}/messages`: send a message, mark one as read
  (https://developers.facebook.com/docs/whatsapp/cloud-api/guides/mark-message-as-read).
- `GET {base}/{version}/{media_id}`, then `GET <url>` with the same bearer token: download media;
  `POST {base}/{version}/{phone_number_id}/media` (multipart): upload media
  (https://developers.facebook.com/docs/whatsapp/cloud-api/reference/media).

Behaviour worth knowing:

- One `aiohttp.ClientSession` per client, made lazily on the running event loop (never at import
  or in `__init__`) and reused for connection pooling. If the client is later used on another
  loop (the Flask adapter may run its own), the old session is closed and a new one is made.
  `await close()` releases it; a closed client can be used again and opens a fresh session.
  Close the client before closing the loop it ran on: once a loop is closed, the sockets of its
  session can no longer be closed cleanly and are left to the garbage collector.
  A session passed in by the caller is used as is and never closed here.
- Every non-2xx answer raises a typed `GraphAPIError` (see `errors.py`); timeouts and connection
  errors raise `GraphTransportError`. Retryable ones are retried under the `RetryPolicy`, with
  `Retry-After` honoured; each retry is logged at WARNING with the code and the attempt number.
- A POST that timed out may still have reached Meta, and the Cloud API offers no idempotency
  key, so a retry can deliver a message twice. We retry anyway: a lost bot answer is worse than
  a rare duplicate. Callers that cannot accept that pass `RetryPolicy(max_attempts=1)`.
- The access token is sent only in the `Authorization` header. It is never logged, never put in
  an exception, and redacted from error bodies before they become exceptions.
- Per request, as little as possible is rebuilt: the headers are made once per client, the
  messages URL once per business number, a JSON body is encoded once (no copy of the caller's
  body), and a small answer with a Content-Length is read in one call instead of chunk by chunk.
  An optional `metrics` observer (`core/metrics.py`) is told every attempt's kind, outcome,
  latency and Meta code, and every retry.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import math
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar
from urllib.parse import quote

import aiohttp
from yarl import URL

from connectors.whatsapp.core import defaults
from connectors.whatsapp.core.errors import (
    GraphAPIError,
    GraphTransportError,
    MediaTooLargeError,
    UnexpectedResponseError,
    WhatsAppError,
    graph_error_from_response,
)
from connectors.whatsapp.core.retry import RetryPolicy, parse_retry_after

logger = logging.getLogger(__name__)

DEFAULT_API_VERSION = defaults.API_VERSION
DEFAULT_BASE_URL = defaults.API_BASE_URL
DEFAULT_TIMEOUT = aiohttp.ClientTimeout(total=10, connect=5)
"""For API calls: small JSON bodies, so a slow answer is a failed one. Half the retry budget
(20 s), so that a call that times out is retried at least once. No `sock_read`: the total bounds
a small answer already, and a read timeout is one more timer per request, re-armed on every
chunk (each timer is objects alive across the round trip: see `_request_json`)."""
MIN_ATTEMPT_SECONDS = 0.1
"""A call with a deadline (`mark_as_read(within=...)`) is retried only if at least this much
time would be left for the retry: a request with a few milliseconds to live only times out."""
DEFAULT_MEDIA_TIMEOUT = aiohttp.ClientTimeout(total=300, connect=5, sock_read=30)
"""For media downloads and uploads (up to 100 MB): a long total, but no stall over 30 s."""
DEFAULT_MAX_MEDIA_BYTES = 100 * 1024 * 1024
"""Meta's largest media (documents) is 100 MB."""
DEFAULT_MEDIA_HOSTS = ("lookaside.fbsbx.com", "*.fbcdn.net", "*.whatsapp.net")
"""Where Meta serves media downloads: the URL from `GET /{media-id}` is on lookaside.fbsbx.com
(`/whatsapp_business/attachments/?mid=...`,
https://developers.facebook.com/docs/whatsapp/cloud-api/reference/media#download-media), and
Meta's CDNs are *.fbcdn.net and *.whatsapp.net. The bearer token goes to these (https only)
and to the configured `api_base_url`'s host, nowhere else."""

_MAX_JSON_BYTES = 1024 * 1024
"""A Graph API answer is a few hundred bytes; anything over this is not one."""
_MAX_ERROR_BODY_BYTES = 64 * 1024
_CHUNK_BYTES = 64 * 1024
_REDACTED = "[redacted]"

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[object]]


class GraphObserver(Protocol):
    """What the client reports about its requests (`core.metrics.Metrics` implements it)."""

    def graph_request(
        self, kind: str, outcome: str, seconds: float, code: int | None = None
    ) -> None: ...

    def graph_retry(self, kind: str) -> None: ...


@dataclass(frozen=True, slots=True)
class SendResult:
    """What the Cloud API answered to a sent message."""

    message_id: str
    """The `wamid` of the message (`messages[0].id`); status webhooks refer to it."""
    wa_id: str | None
    """The recipient's WhatsApp id (`contacts[0].wa_id`), if Meta returned one."""
    raw: Mapping[str, Any] = field(repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class MediaInfo:
    """`GET /{media_id}`: where to download a media file. The URL expires after about 5 minutes."""

    id: str
    url: str
    mime_type: str | None
    sha256: str | None
    file_size: int | None
    raw: Mapping[str, Any] = field(repr=False, compare=False)


class GraphClient:
    """Async client for the WhatsApp Cloud API. See the module docstring for its behaviour."""

    def __init__(
        self,
        *,
        access_token: str,
        api_version: str = DEFAULT_API_VERSION,
        base_url: str = DEFAULT_BASE_URL,
        timeout: aiohttp.ClientTimeout = DEFAULT_TIMEOUT,
        media_timeout: aiohttp.ClientTimeout = DEFAULT_MEDIA_TIMEOUT,
        retry: RetryPolicy | None = None,
        session: aiohttp.ClientSession | None = None,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        media_hosts: Iterable[str] = DEFAULT_MEDIA_HOSTS,
        metrics: GraphObserver | None = None,
    ) -> None:
        if not isinstance(access_token, str) or not access_token.strip():
            raise ValueError("access_token must be a non-empty string")
        version = api_version.strip().strip("/")
        if not version:
            raise ValueError("api_version must not be empty (for example 'v23.0')")
        base = URL(base_url.strip())
        if base.scheme not in ("http", "https") or not base.host:
            raise ValueError(f"base_url must be an http(s) URL, not {base_url!r}")
        self._token = access_token.strip()
        self._api_version = version
        self._base_url = str(base).rstrip("/")
        self._timeout = timeout
        self._media_timeout = media_timeout
        self._retry = retry if retry is not None else RetryPolicy()
        self._external_session = session
        self._sleep = sleep
        self._clock = clock
        self._session: aiohttp.ClientSession | None = None
        self._session_loop: asyncio.AbstractEventLoop | None = None
        self._media_hosts = tuple(host.strip().lower() for host in media_hosts if host.strip())
        self.metrics = metrics
        # Built once: every request sends the same headers, and a JSON POST the same plus its type.
        self._auth_headers = {
            "Authorization": f"Bearer {self._token}",
            "Accept": "application/json",
        }
        self._json_headers = {**self._auth_headers, "Content-Type": "application/json"}
        self._messages_urls: dict[str, URL] = {}
        self._bounded_timeouts: dict[
            tuple[aiohttp.ClientTimeout, float], aiohttp.ClientTimeout
        ] = {}

    def __repr__(self) -> str:
        return f"GraphClient(base_url={self._base_url!r}, api_version={self._api_version!r})"

    @property
    def base_url(self) -> str:
        return self._base_url

    @property
    def api_version(self) -> str:
        return self._api_version

    @property
    def retry_policy(self) -> RetryPolicy:
        return self._retry

    async def __aenter__(self) -> GraphClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the session this client made. The client stays usable: a new one opens on use."""
        session, loop = self._session, self._session_loop
        self._session = None
        self._session_loop = None
        if session is not None:
            await _close_session(session, loop)

    # -- endpoints -------------------------------------------------------------------------

    async def send_message(self, phone_number_id: str, body: Mapping[str, Any]) -> SendResult:
        """Send one Cloud API message body (as made by `builders.py`); return its `wamid`."""
        payload = body
        if "messaging_product" not in body:
            payload = {"messaging_product": "whatsapp", **body}
        data = await self._request_json(
            "POST", self._messages_url(phone_number_id), payload=payload, kind="message"
        )
        messages = data.get("messages")
        first = messages[0] if isinstance(messages, list) and messages else None
        message_id = first.get("id") if isinstance(first, Mapping) else None
        if not isinstance(message_id, str) or not message_id:
            raise UnexpectedResponseError(f"send answered without messages[0].id: {data!r}")
        contacts = data.get("contacts")
        contact = contacts[0] if isinstance(contacts, list) and contacts else None
        wa_id = contact.get("wa_id") if isinstance(contact, Mapping) else None
        return SendResult(
            message_id=message_id, wa_id=wa_id if isinstance(wa_id, str) else None, raw=data
        )

    async def mark_as_read(
        self,
        phone_number_id: str,
        message_id: str,
        typing_indicator: bool = False,
        *,
        within: float | None = None,
    ) -> None:
        """Mark an inbound message as read (blue ticks), optionally showing "typing…".

        The typing indicator lasts until we reply or for 25 seconds
        (https://developers.facebook.com/docs/whatsapp/cloud-api/typing-indicators).
        `within`: give up after that many seconds, retries included (a receipt must not hold
        the answer back): `GraphTransportError` once the time is up.
        """
        if not message_id:
            raise ValueError("message_id must not be empty")
        if within is not None and not (math.isfinite(within) and within > 0):
            raise ValueError(f"within must be a positive number of seconds, not {within!r}")
        payload: dict[str, Any] = {
            "messaging_product": "whatsapp",
            "status": "read",
            "message_id": message_id,
        }
        if typing_indicator:
            payload["typing_indicator"] = {"type": "text"}
        data = await self._request_json(
            "POST", self._messages_url(phone_number_id), payload=payload, kind="read", within=within
        )
        if data.get("success") is False:
            raise UnexpectedResponseError(f"mark_as_read answered success=false: {data!r}")

    async def get_media(self, media_id: str, *, phone_number_id: str | None = None) -> MediaInfo:
        """Look up a media id: its short-lived download URL, MIME type, hash and size.

        With `phone_number_id`, Meta checks that the media belongs to that number.
        """
        params = {"phone_number_id": phone_number_id} if phone_number_id else None
        data = await self._request_json(
            "GET", self._url(media_id), params=params, kind="media_lookup"
        )
        url = data.get("url")
        if not isinstance(url, str) or not url:
            raise UnexpectedResponseError(f"media lookup answered without a url: {data!r}")
        size = data.get("file_size")
        if isinstance(size, str) and size.isdigit():
            size = int(size)
        return MediaInfo(
            id=str(data.get("id") or media_id),
            url=url,
            mime_type=_str_or_none(data.get("mime_type")),
            sha256=_str_or_none(data.get("sha256")),
            file_size=size if isinstance(size, int) and not isinstance(size, bool) else None,
            raw=data,
        )

    async def download_media(self, url: str, max_bytes: int = DEFAULT_MAX_MEDIA_BYTES) -> bytes:
        """Download a media URL from `get_media` (bearer token needed); stop past `max_bytes`.

        Raises `MediaTooLargeError` as soon as the announced or the received size passes the cap.
        """
        target = URL(url)
        if target.scheme not in ("http", "https") or not target.host:
            raise ValueError("media url must be an http(s) URL")
        self._check_media_host(target)
        if max_bytes < 0:
            raise ValueError("max_bytes must be >= 0")

        async def attempt() -> bytes:
            session = await self._get_session()
            async with session.get(
                target, headers=self._auth_headers, timeout=self._media_timeout
            ) as response:
                if not 200 <= response.status < 300:
                    raise await self._error_from(response)
                if response.content_length is not None and response.content_length > max_bytes:
                    raise MediaTooLargeError(max_bytes=max_bytes, size=response.content_length)
                try:
                    return await _read_capped(response, max_bytes)
                except _BodyTooLarge as exc:
                    raise MediaTooLargeError(max_bytes=max_bytes, size=exc.size) from None

        return await self._with_retries("GET", target, attempt, "media_download")

    async def upload_media(
        self, phone_number_id: str, data: bytes, mime_type: str, filename: str
    ) -> str:
        """Upload a file for later sending by id; returns the media id."""
        if not data:
            raise ValueError("cannot upload empty media")
        if not mime_type:
            raise ValueError("mime_type must not be empty")

        def form() -> aiohttp.FormData:
            # A FormData is spent once sent, so every attempt builds its own.
            fields = aiohttp.FormData()
            fields.add_field("messaging_product", "whatsapp")
            fields.add_field("type", mime_type)
            fields.add_field("file", data, filename=filename or "file", content_type=mime_type)
            return fields

        result = await self._request_json(
            "POST",
            self._url(phone_number_id, "media"),
            form=form,
            timeout=self._media_timeout,
            kind="media_upload",
        )
        media_id = result.get("id")
        if not isinstance(media_id, str | int) or isinstance(media_id, bool) or media_id == "":
            raise UnexpectedResponseError(f"upload answered without an id: {result!r}")
        return str(media_id)

    def _check_media_host(self, target: URL) -> None:
        """The access token goes only to Meta's media hosts (https) or to the Graph API's host.

        Raises:
            UntrustedMediaURLError: any other host, or plain http to a media host.
        """
        base = URL(self._base_url)
        host = (target.host or "").lower().rstrip(".")
        same_host = host == (base.host or "").lower() and target.port == base.port
        if same_host and target.scheme in (base.scheme, "https"):
            return
        if target.scheme == "https" and any(_host_matches(host, p) for p in self._media_hosts):
            return
        raise UntrustedMediaURLError(
            f"refusing to send the access token to {target.scheme}://{host}: media is "
            f"downloaded over https from {', '.join(self._media_hosts) or 'no media host'} "
            f"or from {base.host} (the 'media_hosts' setting)"
        )

    # -- plumbing --------------------------------------------------------------------------

    def _url(self, *segments: str) -> URL:
        for segment in segments:
            if not isinstance(segment, str) or not segment.strip():
                raise ValueError("Graph API path ids must be non-empty strings")
        path = "/".join(quote(segment.strip(), safe="") for segment in segments)
        url: URL = URL(f"{self._base_url}/{self._api_version}/{path}", encoded=True)
        return url

    def _messages_url(self, phone_number_id: str) -> URL:
        """`{base}/{version}/{phone_number_id}/messages`, built once per business number."""
        url = self._messages_urls.get(phone_number_id)
        if url is None:
            url = self._url(phone_number_id, "messages")
            if len(self._messages_urls) < 1024:  # a process serves a handful of numbers
                self._messages_urls[phone_number_id] = url
        return url

    async def _get_session(self) -> aiohttp.ClientSession:
        if self._external_session is not None:
            if self._external_session.closed:
                raise RuntimeError("the aiohttp.ClientSession given to GraphClient is closed")
            return self._external_session
        loop = asyncio.get_running_loop()
        session = self._session
        if session is not None and not session.closed and self._session_loop is loop:
            return session
        if session is not None:
            # Made on another (perhaps closed) loop: it cannot be used here.
            await _close_session(session, self._session_loop)
        self._session = aiohttp.ClientSession(timeout=self._timeout)
        self._session_loop = loop
        return self._session

    def _request_json(
        self,
        method: str,
        url: URL,
        *,
        payload: Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
        form: Callable[[], aiohttp.FormData] | None = None,
        timeout: aiohttp.ClientTimeout | None = None,
        kind: str = "other",
        within: float | None = None,
    ) -> Awaitable[Mapping[str, Any]]:
        """The request with its retries, to be awaited: its JSON object answer.

        `within`: a deadline in seconds for all the attempts, each bounded by aiohttp's own
        timeout to the time left (no timer of ours beside aiohttp's).

        A plain function returning `_with_retries`' coroutine, and each attempt a partial of
        `_attempt_json` rather than a closure: what a request in flight keeps alive is one
        coroutine, a partial and its arguments instead of two coroutines, a function and eight
        cells. A read receipt is in flight for a whole round trip per message, and the objects
        alive meanwhile are what sets off the young garbage collections in a busy Rasa process
        (bench/README.md).
        """
        # Encoded once for every attempt, without copying the caller's body.
        data = json.dumps(payload, separators=(",", ":")).encode() if payload is not None else None
        headers = self._json_headers if data is not None else self._auth_headers
        # Real time (aiohttp's timeouts are), not `self._clock`, which tests may stop.
        deadline = None if within is None else time.monotonic() + within
        attempt = functools.partial(
            self._attempt_json,
            method,
            url,
            headers,
            params,
            data,
            form,
            timeout or self._timeout,
            deadline,
        )
        return self._with_retries(method, url, attempt, kind, deadline)

    async def _attempt_json(
        self,
        method: str,
        url: URL,
        headers: Mapping[str, str],
        params: Mapping[str, str] | None,
        data: bytes | None,
        form: Callable[[], aiohttp.FormData] | None,
        timeout: aiohttp.ClientTimeout,
        deadline: float | None,
    ) -> Mapping[str, Any]:
        if deadline is not None:
            timeout = self._timeout_until(timeout, deadline)
        session = await self._get_session()
        async with session.request(
            method,
            url,
            headers=headers,
            params=params,
            data=data if form is None else form(),
            timeout=timeout,
        ) as response:
            if not 200 <= response.status < 300:
                raise await self._error_from(response)
            try:
                body = await _read_capped(response, _MAX_JSON_BYTES)
            except _BodyTooLarge:
                raise UnexpectedResponseError(
                    f"HTTP {response.status} answer larger than {_MAX_JSON_BYTES} bytes"
                ) from None
            return _decode_object(body, response.status)

    def _timeout_until(
        self, timeout: aiohttp.ClientTimeout, deadline: float
    ) -> aiohttp.ClientTimeout:
        """`timeout` shortened to end by `deadline` (`time.monotonic`), made once per length.

        Raises:
            asyncio.TimeoutError: the deadline has passed.
        """
        left = deadline - time.monotonic()
        if left <= 0:
            raise asyncio.TimeoutError
        # Whole tens of milliseconds, so that receipts share a handful of timeouts.
        total = max(math.floor(left * 100) / 100, 0.01)
        if timeout.total is not None and timeout.total <= total:
            return timeout
        key = (timeout, total)
        bounded = self._bounded_timeouts.get(key)
        if bounded is None:
            bounded = aiohttp.ClientTimeout(
                total=total,
                connect=None if timeout.connect is None else min(timeout.connect, total),
                sock_read=timeout.sock_read,
                sock_connect=timeout.sock_connect,
            )
            if len(self._bounded_timeouts) < 256:
                self._bounded_timeouts[key] = bounded
        return bounded

    async def _with_retries(
        self,
        method: str,
        url: URL,
        attempt: Callable[[], Awaitable[T]],
        kind: str = "other",
        deadline: float | None = None,
    ) -> T:
        started = self._clock()
        attempts = 0
        metrics = self.metrics
        while True:
            attempts += 1
            began = time.perf_counter()
            try:
                try:
                    result = await attempt()
                except (asyncio.TimeoutError, aiohttp.ClientError) as exc:
                    raise GraphTransportError(
                        _describe_transport(exc), method=method, path=url.path
                    ) from exc
                if metrics is not None:
                    metrics.graph_request(kind, "ok", time.perf_counter() - began)
                return result
            except WhatsAppError as exc:
                if metrics is not None:
                    if isinstance(exc, GraphAPIError):
                        metrics.graph_request(
                            kind, "graph_error", time.perf_counter() - began, exc.code
                        )
                    else:
                        metrics.graph_request(kind, "transport_error", time.perf_counter() - began)
                delay = self._retry.delay_for(attempts, exc, None, self._clock() - started)
                if (
                    delay is not None
                    and deadline is not None
                    and time.monotonic() + delay + MIN_ATTEMPT_SECONDS > deadline
                ):
                    delay = None  # too little time left for another attempt to be answered
                if delay is None:
                    if attempts > 1:
                        logger.warning(
                            "Graph API %s %s: giving up after %d attempts (%s)",
                            method,
                            url.path,
                            attempts,
                            _code_of(exc),
                        )
                    raise
                logger.warning(
                    "Graph API %s %s failed (%s), attempt %d of %d; retrying in %.2f s",
                    method,
                    url.path,
                    _code_of(exc),
                    attempts,
                    self._retry.max_attempts,
                    delay,
                )
                if metrics is not None:
                    metrics.graph_retry(kind)
                await self._sleep(delay)

    async def _error_from(self, response: aiohttp.ClientResponse) -> GraphAPIError:
        body = await _read_capped(response, _MAX_ERROR_BODY_BYTES, truncate=True)
        text = body.decode("utf-8", "replace").replace(self._token, _REDACTED)
        payload: object
        try:
            payload = json.loads(text)
        except ValueError:
            payload = text
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        return graph_error_from_response(response.status, payload, retry_after=retry_after)


async def _close_session(
    session: aiohttp.ClientSession, loop: asyncio.AbstractEventLoop | None
) -> None:
    """Close a session on the loop it was made on.

    Its connections belong to that loop: closing them from another one fails on aiohttp 3.12+
    ("attached to a different loop"). A loop still open (running in another thread, or stopped)
    closes the session the next time it runs; a closed loop took its connections with it, so
    the session is only detached.
    """
    if session.closed:
        return
    current = asyncio.get_running_loop()
    if loop is None or loop is current:
        await session.close()
    elif not loop.is_closed():
        asyncio.run_coroutine_threadsafe(session.close(), loop)
    else:
        session.detach()


class _BodyTooLarge(Exception):
    def __init__(self, size: int) -> None:
        super().__init__(size)
        self.size = size


async def _read_capped(
    response: aiohttp.ClientResponse, limit: int, *, truncate: bool = False
) -> bytes:
    """Read the body in chunks, stopping past `limit` bytes.

    Past the limit: raise `_BodyTooLarge` with the bytes read so far, or with `truncate`, return
    the first `limit` bytes. A body whose Content-Length is within the limit (every Graph API
    answer) is read in one call.
    """
    length = response.content_length
    if length is not None and length <= limit:
        return await response.read()
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(_CHUNK_BYTES):
        size += len(chunk)
        if size > limit:
            if truncate:
                chunks.append(chunk[: len(chunk) - (size - limit)])
                return b"".join(chunks)
            raise _BodyTooLarge(size)
        chunks.append(chunk)
    return b"".join(chunks)


def _decode_object(body: bytes, status: int) -> Mapping[str, Any]:
    try:
        data = json.loads(body)
    except ValueError:
        snippet = body[:200].decode("utf-8", "replace")
        raise UnexpectedResponseError(f"HTTP {status} answer is not JSON: {snippet!r}") from None
    if not isinstance(data, dict):
        raise UnexpectedResponseError(f"HTTP {status} answer is not a JSON object: {data!r}")
    return data


def _describe_transport(exc: BaseException) -> str:
    if isinstance(exc, asyncio.TimeoutError) and not str(exc):
        return "timed out"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _code_of(exc: WhatsAppError) -> str:
    if isinstance(exc, GraphAPIError):
        return f"code {exc.code}, HTTP {exc.http_status}"
    if exc.__cause__ is not None:
        return _describe_transport(exc.__cause__)
    return type(exc).__name__


class UntrustedMediaURLError(WhatsAppError, ValueError):
    """A media URL outside Meta's media hosts and the Graph API's: the token is not sent there."""


def _host_matches(host: str, pattern: str) -> bool:
    """`*.fbcdn.net` matches any subdomain of fbcdn.net (not fbcdn.net itself); else exact."""
    if pattern.startswith("*."):
        return host.endswith(pattern[1:]) and len(host) > len(pattern) - 1
    return host == pattern


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None
