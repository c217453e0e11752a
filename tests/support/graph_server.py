"""The suite's one fake Graph API: the sandbox's own Graph API app, on 127.0.0.1, with test hooks.

The answers are the sandbox's (`sandbox/graph.py`): the same validation of every message body
(`sandbox/validation.py`, the suite's one message-validity oracle), the same ids, media store,
media URLs and error envelopes. This module only adds what a test needs around them: a record of
every request, answers scripted ahead of the sandbox (errors, odd bodies, latency, dropped
connections), and a sandbox set up for tests (no contacts, no 24-hour window, no rate limits, its
status webhooks kept here instead of sent to a bot).

Async tests:

    from tests.support.graph_server import GraphServer, meta_error, ok, slow, drop

    async with GraphServer() as graph:              # checks Bearer tests.conftest.ACCESS_TOKEN
        client = GraphClient(access_token=ACCESS_TOKEN, base_url=graph.base_url)
        graph.script("/messages", [meta_error(130429), ok()])   # first answers, then the sandbox
        await client.send_message(PHONE_NUMBER_ID, body)
        requests = await graph.wait_for(2, timeout=5)     # for senders that work in the background
        assert requests[-1].json["to"] == "15550001111"

Sync tests (Flask, Django): `with GraphServer() as graph:` runs the same server on its own loop in
a background thread; use `graph.wait_for_sync(n)` there.

API, kept small on purpose:

- `GraphServer(access_token=ACCESS_TOKEN, phone_number_id=PHONE_NUMBER_ID, **sandbox_settings)`:
  the bearer token and business number the sandbox expects (a wrong token gets Meta's code 190
  with HTTP 401, and no scripted answer is used up); any other `SandboxConfig` field changes the
  sandbox (for example `throughput_per_second=80` to meet the rate limit).
- `graph.base_url` (`http://127.0.0.1:<port>`); `graph.requests`: every `RecordedRequest`
  (method, path, raw_path, query, headers, body, json, form, peer, time), in arrival order;
  `graph.sent_messages`: the JSON bodies POSTed to `/messages`, read receipts left out;
  `graph.sandbox`: the sandbox itself (its state, faults, settings); `graph.webhooks`: the status
  webhooks the sandbox sent (a message to a number it has no contact for is `failed`, 131026).
- `graph.script(match, [answers...], method=None)`: `match` is a path suffix (`"/messages"`,
  `"/media"`) or a function of the `RecordedRequest`. Matching requests take the answers in
  order; once they run out, the sandbox answers again. Scripts are tried in the order they were
  added. Answers: `ok(json=None)` (None: the sandbox's answer), `meta_error(code, http_status=400,
  message=..., subcode=..., details=..., retry_after=...)`, `raw(status, body, content_type)`
  for odd bodies (`chunked=True`: no Content-Length), `slow(seconds, then=None)` to answer late,
  `drop()` to close the connection without any answer.
- `graph.add_media(data, mime_type) -> media_id`; `graph.media_url(media_id)` (signed, valid for
  the sandbox's 5 minutes); `MEDIA_DOWNLOAD_PATH` is the path such a URL starts with.
- `await graph.wait_for(n, timeout=5)` / `graph.wait_for_sync(n, timeout=5)`: wait until `n`
  requests have arrived, return them all; an AssertionError lists what came if they do not.

Two answers differ from the sandbox run on its own, because tests call the Graph API without
having gone through the sandbox's chat: a read receipt for a message id the sandbox never
delivered is taken (the test posted that message's webhook itself), and a path no route knows gets
Meta's error instead of a bare 404: code 100 subcode 33 for an object id that does not exist (the
sandbox routes only its own numeric media ids), else code 2500 ("Unknown path components").
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import socket
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

from sandbox.config import SandboxConfig
from sandbox.context import SANDBOX, Sandbox
from sandbox.errors import ERROR_TITLES, GraphError, unknown_object
from sandbox.media import url_signature
from sandbox.server import create_app
from sandbox.state import ChatEntry
from tests.conftest import ACCESS_TOKEN, PHONE_NUMBER_ID

MEDIA_DOWNLOAD_PATH = "/_media/"
"""Where the sandbox serves media downloads (`sandbox/graph.py`, `download_media`)."""
_WEBHOOK_SINK = "/_tests/webhook"
_UNDELIVERED_CHAT = "tests"
"""The conversation a read receipt's unknown message is filed under."""


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
    """Answer as the sandbox would (after `delay`)."""
    chunked: bool = False
    """Send the body with chunked encoding, without a Content-Length."""


def ok(json: Any = None, *, status: int = 200) -> Answer:
    """A success: `json` as given, or the sandbox's answer for the request when None."""
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
    """Meta's error envelope, as the sandbox writes it
    (https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes)."""
    error = GraphError(
        code,
        message or f"(#{code}) {ERROR_TITLES.get(code, 'Graph API error')}",
        details=details,
        status=http_status,
        error_subcode=subcode,
        error_type=type,
    )
    envelope = error.body()
    envelope["error"]["fbtrace_id"] = fbtrace_id
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
    return Answer(status=http_status, json=envelope, headers=headers)


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
    """Wait `seconds` before answering with `then` (the sandbox's answer if None)."""
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
    """The raw body (empty for a multipart body: see `form`)."""
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
class _Script:
    match: Callable[[RecordedRequest], bool]
    answers: deque[Answer]


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class GraphServer:
    """The server. Use `async with` in async tests, `with` (own thread) in sync ones."""

    def __init__(
        self,
        *,
        access_token: str = ACCESS_TOKEN,
        phone_number_id: str = PHONE_NUMBER_ID,
        **sandbox_settings: Any,
    ) -> None:
        self.access_token = access_token
        self.requests: list[RecordedRequest] = []
        self.webhooks: list[Any] = []
        self._settings: dict[str, Any] = {
            "access_token": access_token,
            "phone_number_id": phone_number_id,
            "contacts": (),
            "groups": (),
            "enforce_service_window": False,
            "throughput_per_second": 0.0,
            "pair_interval": 0.0,
            "status_delays": (0.0, 0.0, 0.0),
            "webhook_retry_delays": (),
            **sandbox_settings,
        }
        self._scripts: list[_Script] = []
        self._lock = threading.Lock()
        self._sandbox: Sandbox | None = None
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

    @property
    def sandbox(self) -> Sandbox:
        if self._sandbox is None:
            raise RuntimeError("GraphServer is not running")
        return self._sandbox

    async def start(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self._port = sock.getsockname()[1]
        config = SandboxConfig(
            host="127.0.0.1",
            port=self._port,
            webhook_url=self.base_url + _WEBHOOK_SINK,
            **self._settings,
        )
        app = create_app(config)
        app.middlewares.insert(0, self._middleware)
        app.router.add_post(_WEBHOOK_SINK, self._webhook_sink)
        self._sandbox = app[SANDBOX]
        runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=1)
        await runner.setup()
        site = web.SockSite(runner, sock, shutdown_timeout=1)
        await site.start()
        self._runner = runner

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

    def add_media(self, data: bytes, mime_type: str) -> str:
        """Store a file in the sandbox, as a user's photo would be; return its media id."""
        return self.sandbox.state.store_media(data, mime_type, None).id

    def media_url(self, media_id: str) -> str:
        """The download URL the sandbox hands out for `media_id` (it need not exist)."""
        expires = int(self.sandbox.state.clock() + self.sandbox.config.media_url_ttl)
        signature = url_signature(self.sandbox.url_secret, media_id, expires)
        return f"{self.base_url}{MEDIA_DOWNLOAD_PATH}{media_id}?ext={expires}&hash={signature}"

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

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path == _WEBHOOK_SINK:
            return await handler(request)
        recorded = await _record(request)
        self.requests.append(recorded)
        if recorded.bearer == self.access_token:
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
            self._know_read_message(recorded)
        try:
            return await handler(request)
        except web.HTTPNotFound:
            return await _render(request, _unknown_path(request))

    def _scripted(self, recorded: RecordedRequest) -> Answer | None:
        with self._lock:
            for script in self._scripts:
                if script.answers and script.match(recorded):
                    return script.answers.popleft()
        return None

    def _know_read_message(self, recorded: RecordedRequest) -> None:
        """Let a read receipt name a message the test delivered itself (see the module doc)."""
        body = recorded.json
        if not (isinstance(body, dict) and body.get("status") == "read"):
            return
        message_id = body.get("message_id")
        state = self.sandbox.state
        if isinstance(message_id, str) and message_id.strip() and message_id not in state.entries:
            entry = ChatEntry(
                message_id, _UNDELIVERED_CHAT, "user", "text", {}, state.clock(), "delivered"
            )
            state.add_entry(entry)

    async def _webhook_sink(self, request: web.Request) -> web.Response:
        self.webhooks.append(await request.json())
        return web.json_response({})


async def _record(request: web.Request) -> RecordedRequest:
    body = b""
    decoded: Any = None
    form: dict[str, FormField] = {}
    if request.content_type.startswith("multipart/"):
        # Parsed here with aiohttp's own reader, which keeps the result for the sandbox's routes.
        for name, value in (await request.post()).items():
            if isinstance(value, web.FileField):
                data = value.file.read()
                value.file.seek(0)
                form[name] = FormField(data, value.filename, value.content_type)
            else:
                form[name] = FormField(value.encode("utf-8") if isinstance(value, str) else value)
    else:
        body = await request.read()
    if request.content_type == "application/json":
        try:
            decoded = json.loads(body)
        except ValueError:
            decoded = None
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


def _unknown_path(request: web.Request) -> Answer:
    """Meta's answer where the sandbox has no route: an object id that does not exist (the sandbox
    only routes its own numeric media ids), else code 2500."""
    segments = [segment for segment in request.rel_url.raw_path.split("/") if segment]
    if request.method in ("GET", "DELETE") and len(segments) == 2:
        error = unknown_object(unquote(segments[1]), request.method.lower())
        return Answer(status=error.status, json=error.body())
    return meta_error(2500, message=f"Unknown path components: {request.path}")


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
