"""A real, scripted Graph API server on 127.0.0.1 for tests: no mocks, real HTTP.

Async tests:

    from tests.support.graph_server import GraphServer, meta_error, ok, slow, drop

    async with GraphServer() as graph:              # checks Bearer tests.conftest.ACCESS_TOKEN
        client = GraphClient(access_token=ACCESS_TOKEN, base_url=graph.base_url)
        graph.script("/messages", [meta_error(130429), ok()])   # first answers, then the defaults
        await client.send_message(PHONE_NUMBER_ID, body)
        requests = await graph.wait_for(2, timeout=5)     # for senders that work in the background
        assert requests[-1].json["to"] == "15550001111"

Sync tests (Flask, Django): `with GraphServer() as graph:` runs the same server on its own loop in
a background thread; use `graph.wait_for_sync(n)` there.

API, kept small on purpose:

- `GraphServer(access_token=ACCESS_TOKEN)`: the expected bearer token (None: accept any). A wrong
  or missing one gets Meta's code 190 with HTTP 401, and no scripted answer is used up.
- `graph.base_url` (`http://127.0.0.1:<port>`); `graph.requests`: every `RecordedRequest`
  (method, path, raw_path, query, headers, body, json, form, peer, time), in arrival order;
  `graph.sent_messages`: the JSON bodies POSTed to `/messages`, read receipts left out.
- `graph.script(match, [answers...], method=None)`: `match` is a path suffix (`"/messages"`,
  `"/media"`) or a function of the `RecordedRequest`. Matching requests take the answers in
  order; once they run out, the defaults apply again. Scripts are tried in the order they were
  added. Answers: `ok(json=None)` (None: the default answer), `meta_error(code, http_status=400,
  message=..., subcode=..., details=..., retry_after=...)`, `raw(status, body, content_type)`
  for odd bodies (`chunked=True`: no Content-Length), `slow(seconds, then=None)` to answer late,
  `drop()` to close the connection without any answer.
- `graph.add_media(data, mime_type) -> media_id`; `graph.media_url(media_id)`.
- `await graph.wait_for(n, timeout=5)` / `graph.wait_for_sync(n, timeout=5)`: wait until `n`
  requests have arrived, return them all; an AssertionError lists what came if they do not.

Default answers, shaped like Meta's
(https://developers.facebook.com/docs/whatsapp/cloud-api/reference/messages):

- `POST /{version}/{phone_number_id}/messages`: `{"messaging_product": "whatsapp", "contacts":
  [{"input": to, "wa_id": to}], "messages": [{"id": "wamid.graph-<n>"}]}`; a read receipt
  (`"status": "read"`) gets `{"success": true}`; a body without `to` gets code 100.
- `POST /{version}/{phone_number_id}/media` (multipart `file`, `type`, `messaging_product`):
  stores the file and answers `{"id": <media id>}`.
- `GET /{version}/{media_id}`: `{"messaging_product", "url", "mime_type", "sha256", "file_size",
  "id"}` for a known media id (added or uploaded), code 100 subcode 33 otherwise.
- `GET` of a media url: the bytes, with the media's Content-Type.
- Anything else: code 2500 "Unknown path components", HTTP 400.
"""

from __future__ import annotations

import asyncio
import dataclasses
import email.message
import hashlib
import itertools
import json
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

from tests.conftest import ACCESS_TOKEN

_DOWNLOAD_PATH = "/whatsapp_business/attachments/"
_TITLES = {
    0: "AuthException",
    1: "An unknown error occurred",
    2: "Service temporarily unavailable",
    4: "Application request limit reached",
    10: "Application does not have permission for this action",
    100: "Invalid parameter",
    190: "Invalid OAuth access token - Cannot parse access token",
    131000: "Something went wrong",
    131026: "Message Undeliverable",
    131047: "Re-engagement message",
    130429: "Rate limit hit",
    131056: "(Business Account, Consumer Account) pair rate limit hit",
}


@dataclass(frozen=True, slots=True)
class Answer:
    """What the server does with one request. Build these with the helpers below."""

    status: int = 200
    json: Any = None
    body: bytes | None = None
    content_type: str = "application/json"
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0
    drop: bool = False
    default: bool = False
    """Answer as the server would without a script (after `delay`)."""
    chunked: bool = False
    """Send the body with chunked encoding, without a Content-Length."""


def ok(json: Any = None, *, status: int = 200) -> Answer:
    """A success: `json` as given, or the default answer for the request when None."""
    if json is None:
        return Answer(status=status, default=True)
    return Answer(status=status, json=json)


def meta_error(
    code: int,
    http_status: int = 400,
    *,
    message: str | None = None,
    subcode: int | None = None,
    details: str | None = None,
    retry_after: float | str | None = None,
    type: str = "OAuthException",
    fbtrace_id: str = "AGraphServerTrace",
) -> Answer:
    """Meta's error envelope
    (https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes)."""
    error: dict[str, Any] = {
        "message": message or f"(#{code}) {_TITLES.get(code, 'Graph API error')}",
        "type": type,
        "code": code,
        "fbtrace_id": fbtrace_id,
    }
    if details is not None:
        error["error_data"] = {"messaging_product": "whatsapp", "details": details}
    if subcode is not None:
        error["error_subcode"] = subcode
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
    return Answer(status=http_status, json={"error": error}, headers=headers)


def raw(
    status: int,
    body: bytes | str,
    content_type: str = "text/html",
    headers: Mapping[str, str] | None = None,
    *,
    chunked: bool = False,
) -> Answer:
    """Any body at all: an HTML error page, broken JSON, an empty body; `chunked` to stream it
    without a Content-Length."""
    data = body.encode("utf-8") if isinstance(body, str) else body
    return Answer(
        status=status, body=data, content_type=content_type, headers=headers or {}, chunked=chunked
    )


def slow(seconds: float, then: Answer | None = None) -> Answer:
    """Wait `seconds` before answering with `then` (the default answer if None)."""
    return dataclasses.replace(then or ok(), delay=seconds)


def drop() -> Answer:
    """Close the connection without answering."""
    return Answer(drop=True)


@dataclass(frozen=True, slots=True)
class FormField:
    """One part of a multipart body."""

    value: bytes
    filename: str | None = None
    content_type: str | None = None

    @property
    def text(self) -> str:
        return self.value.decode("utf-8", "replace")


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request the server received (also those it rejected)."""

    method: str
    path: str
    """The decoded path, e.g. `/v23.0/106540352242922/messages`."""
    raw_path: str
    """The path as sent, still percent-encoded, without the query."""
    query: Mapping[str, str]
    headers: CIMultiDictProxy[str]
    body: bytes
    json: Any
    """The decoded JSON body, or None."""
    form: Mapping[str, FormField]
    """The parts of a multipart body, by name."""
    peer: tuple[str, int] | None
    """The client's address and port: the same port means the same (kept-alive) connection."""
    time: float
    """`time.monotonic()` when it arrived."""

    @property
    def bearer(self) -> str | None:
        value = self.headers.get("Authorization", "")
        return value[len("Bearer ") :] if value.startswith("Bearer ") else None


@dataclass(slots=True)
class _Media:
    data: bytes
    mime_type: str


@dataclass(slots=True)
class _Script:
    match: Callable[[RecordedRequest], bool]
    answers: deque[Answer]


class GraphServer:
    """The server. Use `async with` in async tests, `with` (own thread) in sync ones."""

    def __init__(self, *, access_token: str | None = ACCESS_TOKEN) -> None:
        self.access_token = access_token
        self.requests: list[RecordedRequest] = []
        self._scripts: list[_Script] = []
        self._media: dict[str, _Media] = {}
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._thread: threading.Thread | None = None
        self._thread_loop: asyncio.AbstractEventLoop | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        if self._port is None:
            raise RuntimeError("GraphServer is not running")
        return f"http://127.0.0.1:{self._port}"

    async def start(self) -> None:
        app = web.Application(client_max_size=200 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=1)
        await runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        site = web.SockSite(runner, sock, shutdown_timeout=1)
        await site.start()
        self._runner = runner
        self._port = sock.getsockname()[1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> GraphServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def __enter__(self) -> GraphServer:
        loop = asyncio.new_event_loop()
        started = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.start())
            except BaseException as exc:
                failure.append(exc)
                started.set()
                return
            started.set()
            loop.run_forever()
            loop.run_until_complete(self.stop())
            loop.close()

        self._thread = threading.Thread(target=run, name="graph-server", daemon=True)
        self._thread_loop = loop
        self._thread.start()
        started.wait(10)
        if failure:
            raise failure[0]
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._thread_loop is not None and self._thread is not None:
            self._thread_loop.call_soon_threadsafe(self._thread_loop.stop)
            self._thread.join(10)
        self._thread = None
        self._thread_loop = None

    # -- scripting and inspection --------------------------------------------------------------

    def script(
        self,
        match: str | Callable[[RecordedRequest], bool],
        answers: Iterable[Answer],
        *,
        method: str | None = None,
    ) -> None:
        """Answer the next requests that match with `answers`, in order."""
        matcher = _path_suffix(match) if isinstance(match, str) else match
        if method is not None:
            matcher = _with_method(matcher, method.upper())
        with self._lock:
            self._scripts.append(_Script(matcher, deque(answers)))

    def add_media(self, data: bytes, mime_type: str, media_id: str | None = None) -> str:
        """Make a media id known to `GET /{media_id}` and its download url."""
        media_id = media_id or f"{next(self._ids):016d}"
        with self._lock:
            self._media[media_id] = _Media(data, mime_type)
        return media_id

    def media_url(self, media_id: str) -> str:
        return f"{self.base_url}{_DOWNLOAD_PATH}?mid={media_id}&ext=1&hash=graphserver"

    @property
    def sent_messages(self) -> list[Any]:
        """JSON bodies POSTed to `.../messages`, without read receipts."""
        return [
            request.json
            for request in list(self.requests)
            if request.method == "POST"
            and request.path.endswith("/messages")
            and isinstance(request.json, dict)
            and request.json.get("status") != "read"
        ]

    async def wait_for(self, n: int, timeout: float = 5.0) -> list[RecordedRequest]:
        """Wait until `n` requests have arrived; return all of them."""
        deadline = time.monotonic() + timeout
        while len(self.requests) < n:
            if time.monotonic() >= deadline:
                raise AssertionError(self._not_arrived(n, timeout))
            await asyncio.sleep(0.01)
        return list(self.requests)

    def wait_for_sync(self, n: int, timeout: float = 5.0) -> list[RecordedRequest]:
        """`wait_for` for sync tests (server running in its thread)."""
        deadline = time.monotonic() + timeout
        while len(self.requests) < n:
            if time.monotonic() >= deadline:
                raise AssertionError(self._not_arrived(n, timeout))
            time.sleep(0.01)
        return list(self.requests)

    def _not_arrived(self, n: int, timeout: float) -> str:
        seen = [f"{r.method} {r.path}" for r in self.requests]
        return f"expected {n} requests within {timeout} s, got {len(seen)}: {seen}"

    # -- handling ------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        recorded = await _record(request)
        self.requests.append(recorded)
        if self.access_token is not None and recorded.bearer != self.access_token:
            return await _render(request, meta_error(190, 401, fbtrace_id="AGraphServerAuth"))
        answer = self._scripted(recorded)
        if answer is not None:
            if answer.delay:
                await asyncio.sleep(answer.delay)
            if answer.drop:
                if request.transport is not None:
                    request.transport.close()
                raise asyncio.CancelledError
            if not answer.default:
                return await _render(request, answer)
        return await _render(request, self._default(recorded))

    def _scripted(self, recorded: RecordedRequest) -> Answer | None:
        with self._lock:
            for script in self._scripts:
                if script.answers and script.match(recorded):
                    return script.answers.popleft()
        return None

    def _default(self, request: RecordedRequest) -> Answer:
        parts = [unquote(part) for part in request.raw_path.split("/") if part]
        if request.method == "GET" and request.path == _DOWNLOAD_PATH:
            media = self._media.get(request.query.get("mid", ""))
            if media is None:
                return raw(404, b"Not Found", "text/plain")
            return raw(200, media.data, media.mime_type)
        if request.method == "POST" and len(parts) == 3 and parts[2] == "messages":
            return self._message_answer(request)
        if request.method == "POST" and len(parts) == 3 and parts[2] == "media":
            return self._upload_answer(request)
        if request.method == "GET" and len(parts) == 2:
            media_id = parts[1]
            media = self._media.get(media_id)
            if media is None:
                return meta_error(
                    100,
                    subcode=33,
                    message=f"Unsupported get request. Object with ID '{media_id}' does not exist,"
                    " cannot be loaded due to missing permissions, or does not support this"
                    " operation.",
                )
            return ok(
                {
                    "messaging_product": "whatsapp",
                    "url": self.media_url(media_id),
                    "mime_type": media.mime_type,
                    "sha256": hashlib.sha256(media.data).hexdigest(),
                    "file_size": len(media.data),
                    "id": media_id,
                }
            )
        return meta_error(2500, message=f"Unknown path components: {request.path}")

    def _message_answer(self, request: RecordedRequest) -> Answer:
        body = request.json
        if not isinstance(body, dict):
            return meta_error(100, message="(#100) Invalid parameter")
        if body.get("status") == "read":
            return ok({"success": True})
        to = body.get("to")
        if not isinstance(to, str) or not to:
            return meta_error(100, message="(#100) The parameter to is required.")
        return ok(
            {
                "messaging_product": "whatsapp",
                "contacts": [{"input": to, "wa_id": to}],
                "messages": [{"id": f"wamid.graph-{next(self._ids)}"}],
            }
        )

    def _upload_answer(self, request: RecordedRequest) -> Answer:
        file = request.form.get("file")
        if file is None or request.form.get("messaging_product", FormField(b"")).text != "whatsapp":
            return meta_error(100, message="(#100) The parameter file is required.")
        mime_type = request.form.get("type", FormField(b"")).text or file.content_type or ""
        media_id = self.add_media(file.value, mime_type)
        return ok({"id": media_id})


async def _record(request: web.Request) -> RecordedRequest:
    body = await request.read()
    decoded: Any = None
    form: dict[str, FormField] = {}
    if request.content_type == "application/json":
        try:
            decoded = json.loads(body)
        except ValueError:
            decoded = None
    elif request.content_type.startswith("multipart/"):
        boundary = _boundary(request.headers.get("Content-Type", ""))
        if boundary:
            form = _parse_multipart(body, boundary)
    peer = request.transport.get_extra_info("peername") if request.transport else None
    return RecordedRequest(
        method=request.method,
        path=request.path,
        raw_path=request.rel_url.raw_path,
        query={key: value for key, value in request.query.items()},
        headers=CIMultiDictProxy(CIMultiDict(request.headers)),
        body=body,
        json=decoded,
        form=form,
        peer=(peer[0], peer[1]) if isinstance(peer, tuple) else None,
        time=time.monotonic(),
    )


def _path_suffix(suffix: str) -> Callable[[RecordedRequest], bool]:
    return lambda request: request.path.endswith(suffix)


def _with_method(
    inner: Callable[[RecordedRequest], bool], method: str
) -> Callable[[RecordedRequest], bool]:
    return lambda request: request.method == method and inner(request)


async def _render(request: web.Request, answer: Answer) -> web.StreamResponse:
    body = answer.body if answer.body is not None else json.dumps(answer.json).encode("utf-8")
    if not answer.chunked:
        response = web.Response(status=answer.status, body=body, headers=dict(answer.headers))
        response.content_type = answer.content_type
        return response
    stream = web.StreamResponse(status=answer.status, headers=dict(answer.headers))
    stream.content_type = answer.content_type
    stream.enable_chunked_encoding()
    await stream.prepare(request)
    for start in range(0, len(body), 16 * 1024):
        await stream.write(body[start : start + 16 * 1024])
    await stream.write_eof()
    return stream


def _boundary(content_type: str) -> str | None:
    message = email.message.Message()
    message["Content-Type"] = content_type
    boundary = message.get_param("boundary")
    return boundary if isinstance(boundary, str) else None


def _parse_multipart(body: bytes, boundary: str) -> dict[str, FormField]:
    fields: dict[str, FormField] = {}
    for segment in body.split(b"--" + boundary.encode("latin-1"))[1:]:
        if segment.startswith(b"--"):
            break
        segment = segment.removeprefix(b"\r\n").removesuffix(b"\r\n")
        head, _, content = segment.partition(b"\r\n\r\n")
        part = email.message.Message()
        for line in head.decode("latin-1").split("\r\n"):
            name, sep, value = line.partition(":")
            if sep:
                part[name.strip()] = value.strip()
        field_name = part.get_param("name", header="content-disposition")
        if not isinstance(field_name, str):
            continue
        fields[field_name] = FormField(
            value=content,
            filename=part.get_filename(),
            content_type=part.get("Content-Type"),
        )
    return fields
