"""GraphClient against a real HTTP server on 127.0.0.1 (tests/support/graph_server.py)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from connectors.whatsapp.core.client import GraphClient, MediaInfo, SendResult
from connectors.whatsapp.core.errors import (
    AuthenticationError,
    GraphAPIError,
    GraphTransportError,
    InvalidRequestError,
    MediaTooLargeError,
    PolicyError,
    ReEngagementError,
    ServiceUnavailableError,
    TemplateError,
    ThrottlingError,
    UndeliverableError,
    UnexpectedResponseError,
)
from connectors.whatsapp.core.retry import RetryPolicy
from tests.conftest import ACCESS_TOKEN, PHONE_NUMBER_ID
from tests.support.graph_server import (
    MEDIA_DOWNLOAD_PATH,
    GraphServer,
    drop,
    meta_error,
    ok,
    raw,
    slow,
)
from tests.support.http import client_session

TO = "5511987654321"
TEXT = {"messaging_product": "whatsapp", "to": TO, "type": "text", "text": {"body": "Olá"}}
MESSAGES_PATH = f"/v23.0/{PHONE_NUMBER_ID}/messages"


class FakeTime:
    """An injected sleep that only records, and a clock that the sleeps move forward."""

    def __init__(self) -> None:
        self.now = 0.0
        self.delays: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.delays.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


@pytest.fixture
async def graph() -> AsyncIterator[GraphServer]:
    async with GraphServer() as server:
        yield server


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


def make_client(graph: GraphServer, fake_time: FakeTime, **kwargs: Any) -> GraphClient:
    options: dict[str, Any] = {
        "access_token": ACCESS_TOKEN,
        "base_url": graph.base_url,
        "retry": RetryPolicy(random=lambda: 0.0),
        "sleep": fake_time.sleep,
        "clock": fake_time.clock,
    }
    options.update(kwargs)
    return GraphClient(**options)


# -- success paths ---------------------------------------------------------------------------------


async def test_send_message_posts_the_body_with_the_bearer_token(
    graph: GraphServer, fake_time: FakeTime
) -> None:
    async with make_client(graph, fake_time) as client:
        result = await client.send_message(PHONE_NUMBER_ID, TEXT)

    assert isinstance(result, SendResult)
    assert result.message_id.startswith("wamid.")
    assert result.wa_id == TO
    assert result.raw["messages"][0]["id"] == result.message_id
    [request] = graph.requests
    assert request.method == "POST"
    assert request.path == MESSAGES_PATH
    assert request.headers["Authorization"] == f"Bearer {ACCESS_TOKEN}"
    assert request.headers["Content-Type"].startswith("application/json")
    assert request.json == TEXT
    assert graph.sent_messages == [TEXT]


async def test_messaging_product_is_filled_in(graph: GraphServer, fake_time: FakeTime) -> None:
    body = {"to": TO, "type": "text", "text": {"body": "hi"}}
    async with make_client(graph, fake_time) as client:
        await client.send_message(PHONE_NUMBER_ID, body)
    assert graph.requests[0].json == {"messaging_product": "whatsapp", **body}
    assert "messaging_product" not in body


async def test_api_version_and_base_url_with_a_trailing_slash(
    graph: GraphServer, fake_time: FakeTime
) -> None:
    async with make_client(
        graph, fake_time, base_url=graph.base_url + "/", api_version="v21.0"
    ) as client:
        await client.send_message(PHONE_NUMBER_ID, TEXT)
    assert graph.requests[0].path == f"/v21.0/{PHONE_NUMBER_ID}/messages"


@pytest.mark.parametrize("typing", [False, True])
async def test_mark_as_read(graph: GraphServer, fake_time: FakeTime, typing: bool) -> None:
    async with make_client(graph, fake_time) as client:
        await client.mark_as_read(PHONE_NUMBER_ID, "wamid.IN1", typing)

    expected: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "status": "read",
        "message_id": "wamid.IN1",
    }
    if typing:
        expected["typing_indicator"] = {"type": "text"}
    [request] = graph.requests
    assert (request.method, request.path, request.json) == ("POST", MESSAGES_PATH, expected)
    assert graph.sent_messages == []


async def test_mark_as_read_answered_success_false_is_an_error(
    graph: GraphServer, fake_time: FakeTime
) -> None:
    graph.script("/messages", [ok({"success": False})])
    async with make_client(graph, fake_time) as client:
        with pytest.raises(UnexpectedResponseError):
            await client.mark_as_read(PHONE_NUMBER_ID, "wamid.IN1")


# -- errors: typed, retried or not -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "status", "cls"),
    [
        (131047, 400, ReEngagementError),
        (131026, 400, UndeliverableError),
        (100, 400, InvalidRequestError),
        (190, 401, AuthenticationError),
        (368, 403, PolicyError),
        (132001, 404, TemplateError),
        (131045, 500, GraphAPIError),
    ],
)
async def test_permanent_errors_are_raised_at_once(
    graph: GraphServer, fake_time: FakeTime, code: int, status: int, cls: type[GraphAPIError]
) -> None:
    graph.script("/messages", [meta_error(code, status, details="why", subcode=7)])
    async with make_client(graph, fake_time) as client:
        with pytest.raises(cls) as caught:
            await client.send_message(PHONE_NUMBER_ID, TEXT)

    assert type(caught.value) is cls
    assert (caught.value.code, caught.value.http_status) == (code, status)
    assert caught.value.details == "why"
    assert caught.value.error_subcode == 7
    assert caught.value.fbtrace_id == "AGraphServerTrace"
    assert len(graph.requests) == 1
    assert fake_time.delays == []


async def test_throttling_sent_with_http_400_is_retried_then_succeeds(
    graph: GraphServer, fake_time: FakeTime
) -> None:
    graph.script("/messages", [meta_error(130429), meta_error(4), meta_error(80007)])
    async with make_client(graph, fake_time) as client:
        result = await client.send_message(PHONE_NUMBER_ID, TEXT)

    assert result.message_id.startswith("wamid.")
    assert len(graph.requests) == 4
    assert all(request.json == TEXT for request in graph.requests)
    # Equal jitter with random() == 0: half of 0.5, 1, 2.
    assert fake_time.delays == [0.25, 0.5, 1.0]


async def test_retry_after_header_is_honoured(graph: GraphServer, fake_time: FakeTime) -> None:
    graph.script("/messages", [meta_error(130429, retry_after=3), meta_error(4, retry_after="0")])
    async with make_client(graph, fake_time) as client:
        await client.send_message(PHONE_NUMBER_ID, TEXT)
    assert fake_time.delays == [3.0, 0.5]


async def test_retry_after_past_the_time_budget_gives_up(
    graph: GraphServer, fake_time: FakeTime
) -> None:
    graph.script("/messages", [meta_error(130429, retry_after=15)] * 2)
    async with make_client(graph, fake_time) as client:
        with pytest.raises(ThrottlingError) as caught:
            await client.send_message(PHONE_NUMBER_ID, TEXT)
    # Waited 15 s once; a second 15 s wait would end past the 20 s budget.
    assert fake_time.delays == [15.0]
    assert len(graph.requests) == 2
    assert caught.value.retry_after == 15.0


async def test_pair_rate_limit_waits_longer(graph: GraphServer, fake_time: FakeTime) -> None:
    graph.script("/messages", [meta_error(131056)])
    async with make_client(graph, fake_time) as client:
        await client.send_message(PHONE_NUMBER_ID, TEXT)
    assert fake_time.delays == [6.0]


async def test_server_errors_are_retried(graph: GraphServer, fake_time: FakeTime) -> None:
    graph.script(
        "/messages",
        [meta_error(131000, 500), raw(502, "<html>Bad Gateway</html>"), raw(503, b"")],
    )
    async with make_client(graph, fake_time) as client:
        result = await client.send_message(PHONE_NUMBER_ID, TEXT)
    assert result.wa_id == TO
    assert len(graph.requests) == 4


async def test_retries_stop_after_max_attempts(graph: GraphServer, fake_time: FakeTime) -> None:
    graph.script("/messages", [meta_error(2, 503)] * 10)
    async with make_client(graph, fake_time) as client:
        with pytest.raises(ServiceUnavailableError) as caught:
            await client.send_message(PHONE_NUMBER_ID, TEXT)
    assert caught.value.code == 2
    assert len(graph.requests) == 4
    assert len(fake_time.delays) == 3


async def test_code_1_is_retried_only_once(graph: GraphServer, fake_time: FakeTime) -> None:
    graph.script("/messages", [meta_error(1)] * 5)
    async with make_client(graph, fake_time) as client:
        with pytest.raises(GraphAPIError) as caught:
            await client.send_message(PHONE_NUMBER_ID, TEXT)
    assert caught.value.code == 1
    assert len(graph.requests) == 2


async def test_no_retry_policy_sends_once(graph: GraphServer, fake_time: FakeTime) -> None:
    graph.script("/messages", [meta_error(130429)])
    async with make_client(graph, fake_time, retry=RetryPolicy(max_attempts=1)) as client:
        with pytest.raises(ThrottlingError):
            await client.send_message(PHONE_NUMBER_ID, TEXT)
    assert len(graph.requests) == 1


async def test_a_wrong_token_gets_code_190_and_is_not_retried(
    graph: GraphServer, fake_time: FakeTime
) -> None:
    async with make_client(graph, fake_time, access_token="EAAwrong") as client:
        with pytest.raises(AuthenticationError) as caught:
            await client.send_message(PHONE_NUMBER_ID, TEXT)
    assert (caught.value.code, caught.value.http_status) == (190, 401)
    assert len(graph.requests) == 1


async def test_a_2xx_that_is_not_json_is_not_retried(
    graph: GraphServer, fake_time: FakeTime
) -> None:
    graph.script("/messages", [raw(200, "<html>ok</html>")])
    async with make_client(graph, fake_time) as client:
        with pytest.raises(UnexpectedResponseError, match="not JSON"):
            await client.send_message(PHONE_NUMBER_ID, TEXT)
    assert len(graph.requests) == 1


async def test_a_send_answered_without_a_message_id(
    graph: GraphServer, fake_time: FakeTime
) -> None:
    graph.script("/messages", [ok({"messaging_product": "whatsapp", "messages": []})])
    async with make_client(graph, fake_time) as client:
        with pytest.raises(UnexpectedResponseError, match=r"messages\[0\]\.id"):
            await client.send_message(PHONE_NUMBER_ID, TEXT)


# -- transport failures ----------------------------------------------------------------------------


async def test_a_timeout_is_retried_and_the_post_sent_again(
    graph: GraphServer, fake_time: FakeTime
) -> None:
    graph.script("/messages", [slow(2.0)])
    timeout = aiohttp.ClientTimeout(total=0.3)
    async with make_client(graph, fake_time, timeout=timeout) as client:
        result = await client.send_message(PHONE_NUMBER_ID, TEXT)
    assert result.wa_id == TO
    # The timed-out POST may have been delivered: it is sent again on purpose.
    assert [request.json for request in graph.requests] == [TEXT, TEXT]
    assert fake_time.delays == [0.25]


async def test_timeouts_end_in_a_transport_error(graph: GraphServer, fake_time: FakeTime) -> None:
    graph.script("/messages", [slow(2.0)] * 4)
    timeout = aiohttp.ClientTimeout(total=0.3)
    async with make_client(graph, fake_time, timeout=timeout) as client:
        with pytest.raises(GraphTransportError, match="timed out") as caught:
            await client.send_message(PHONE_NUMBER_ID, TEXT)
    assert isinstance(caught.value.__cause__, asyncio.TimeoutError)
    assert caught.value.method == "POST"
    assert caught.value.path == MESSAGES_PATH
    assert len(graph.requests) == 4


async def test_a_read_receipt_within_a_deadline_is_abandoned_when_slow(
    graph: GraphServer,
) -> None:
    # Real time: the deadline bounds the request itself (aiohttp's timeout), not a sleep.
    graph.script("/messages", [slow(2.0)] * 4)
    async with GraphClient(access_token=ACCESS_TOKEN, base_url=graph.base_url) as client:
        started = asyncio.get_running_loop().time()
        with pytest.raises(GraphTransportError, match="timed out"):
            await client.mark_as_read(PHONE_NUMBER_ID, "wamid.IN1", True, within=0.3)
        took = asyncio.get_running_loop().time() - started
    assert 0.25 <= took < 1.0
    # The first attempt used the whole 0.3 s: no time was left to try again.
    assert len(graph.requests) == 1


async def test_a_receipts_deadline_is_real_time_whatever_clock_the_client_is_given(
    graph: GraphServer, fake_time: FakeTime
) -> None:
    # The injected clock only moves with the injected sleeps: a deadline read on it would never
    # come, and each attempt would get the whole `within` again.
    graph.script("/messages", [slow(2.0)] * 4)
    async with make_client(graph, fake_time) as client:
        started = asyncio.get_running_loop().time()
        with pytest.raises(GraphTransportError, match="timed out"):
            await client.mark_as_read(PHONE_NUMBER_ID, "wamid.IN1", within=0.3)
        took = asyncio.get_running_loop().time() - started
    assert took < 1.0
    assert len(graph.requests) == 1


@pytest.mark.parametrize("within", [0, -1, float("inf"), float("nan")])
async def test_a_deadline_that_is_not_a_positive_number_is_refused(
    graph: GraphServer, fake_time: FakeTime, within: float
) -> None:
    async with make_client(graph, fake_time) as client:
        with pytest.raises(ValueError, match="within"):
            await client.mark_as_read(PHONE_NUMBER_ID, "wamid.IN1", within=within)
    assert graph.requests == []


async def test_a_read_receipt_is_retried_while_its_deadline_leaves_time(
    graph: GraphServer, fake_time: FakeTime
) -> None:
    graph.script("/messages", [meta_error(2, 503)])
    async with make_client(graph, fake_time) as client:
        await client.mark_as_read(PHONE_NUMBER_ID, "wamid.IN1", within=2.0)
    assert len(graph.requests) == 2
    assert fake_time.delays == [0.25]


async def test_a_retry_that_would_pass_the_deadline_is_not_made(
    graph: GraphServer, fake_time: FakeTime
) -> None:
    graph.script("/messages", [meta_error(2, 503)])
    async with make_client(graph, fake_time) as client:
        with pytest.raises(ServiceUnavailableError):
            await client.mark_as_read(PHONE_NUMBER_ID, "wamid.IN1", within=0.2)
    assert len(graph.requests) == 1
    assert fake_time.delays == []


async def test_a_dropped_connection_is_retried(graph: GraphServer, fake_time: FakeTime) -> None:
    graph.script("/messages", [drop(), drop()])
    async with make_client(graph, fake_time) as client:
        result = await client.send_message(PHONE_NUMBER_ID, TEXT)
    assert result.message_id.startswith("wamid.")
    assert len(graph.requests) == 3


async def test_dropped_connections_end_in_a_transport_error(
    graph: GraphServer, fake_time: FakeTime
) -> None:
    graph.script("/messages", [drop()] * 4)
    async with make_client(graph, fake_time) as client:
        with pytest.raises(GraphTransportError) as caught:
            await client.send_message(PHONE_NUMBER_ID, TEXT)
    assert isinstance(caught.value.__cause__, aiohttp.ClientError)
    assert len(graph.requests) == 4


async def test_a_refused_connection_is_a_transport_error(fake_time: FakeTime) -> None:
    async with GraphServer() as server:
        base_url = server.base_url
    client = GraphClient(
        access_token=ACCESS_TOKEN,
        base_url=base_url,
        retry=RetryPolicy(max_attempts=2, random=lambda: 0.0),
        sleep=fake_time.sleep,
    )
    async with client:
        with pytest.raises(GraphTransportError):
            await client.send_message(PHONE_NUMBER_ID, TEXT)
    assert fake_time.delays == [0.25]


# -- logging and secrecy ---------------------------------------------------------------------------


async def test_retries_are_logged_and_the_token_never_shows(
    graph: GraphServer, fake_time: FakeTime, caplog: pytest.LogCaptureFixture
) -> None:
    # A server that echoes the token back in its error message.
    echo = f"Invalid OAuth access token {ACCESS_TOKEN}"
    graph.script("/messages", [meta_error(130429, message=echo), drop(), *[meta_error(1, 500)] * 4])
    caplog.set_level(logging.DEBUG)
    async with make_client(graph, fake_time) as client:
        with pytest.raises(GraphAPIError) as caught:
            await client.send_message(PHONE_NUMBER_ID, TEXT)

    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "code 130429" in warnings[0].getMessage()
    assert "attempt 1 of 4" in warnings[0].getMessage()
    assert "attempt 2 of 4" in warnings[1].getMessage()
    assert "ServerDisconnectedError" in warnings[1].getMessage()
    assert ACCESS_TOKEN not in caplog.text
    assert "Authorization" not in caplog.text
    assert ACCESS_TOKEN not in str(caught.value)
    assert ACCESS_TOKEN not in repr(client)


async def test_an_echoed_token_is_redacted_from_the_error(
    graph: GraphServer, fake_time: FakeTime
) -> None:
    graph.script("/messages", [meta_error(190, 401, message=f"bad token {ACCESS_TOKEN}")])
    async with make_client(graph, fake_time) as client:
        with pytest.raises(AuthenticationError) as caught:
            await client.send_message(PHONE_NUMBER_ID, TEXT)
    assert caught.value.message == "bad token [redacted]"
    assert ACCESS_TOKEN not in str(caught.value.raw)


# -- the session -----------------------------------------------------------------------------------


async def test_one_session_and_one_connection_serve_many_calls(
    graph: GraphServer, fake_time: FakeTime
) -> None:
    async with make_client(graph, fake_time) as client:
        for _ in range(3):
            await client.send_message(PHONE_NUMBER_ID, TEXT)
        await client.mark_as_read(PHONE_NUMBER_ID, "wamid.IN1")
    assert len({request.peer for request in graph.requests}) == 1


async def test_close_then_use_again_opens_a_new_session(
    graph: GraphServer, fake_time: FakeTime
) -> None:
    client = make_client(graph, fake_time)
    await client.send_message(PHONE_NUMBER_ID, TEXT)
    await client.close()
    await client.close()  # closing twice is harmless
    await client.send_message(PHONE_NUMBER_ID, TEXT)
    await client.close()

    first, second = graph.requests
    assert first.peer != second.peer  # the first connection was closed with its session


async def test_a_given_session_is_used_and_left_open(
    graph: GraphServer, fake_time: FakeTime
) -> None:
    async with client_session() as session:
        async with make_client(graph, fake_time, session=session) as client:
            await client.send_message(PHONE_NUMBER_ID, TEXT)
        assert not session.closed
        await make_client(graph, fake_time, session=session).send_message(PHONE_NUMBER_ID, TEXT)
    assert len({request.peer for request in graph.requests}) == 1
    with pytest.raises(RuntimeError, match="closed"):
        await client.send_message(PHONE_NUMBER_ID, TEXT)


def test_the_client_follows_a_new_event_loop() -> None:
    # The Flask adapter may drive the client from loops of its own. The server runs in its own
    # thread here, so that each loop below is the only one running in this thread.
    with GraphServer() as graph:
        client = GraphClient(access_token=ACCESS_TOKEN, base_url=graph.base_url)
        first_loop, second_loop = asyncio.new_event_loop(), asyncio.new_event_loop()
        try:
            first = first_loop.run_until_complete(client.send_message(PHONE_NUMBER_ID, TEXT))
            # The session of the first loop is closed, and a new one made on the second loop.
            second = second_loop.run_until_complete(client.send_message(PHONE_NUMBER_ID, TEXT))
            second_loop.run_until_complete(client.close())
            first_loop.run_until_complete(asyncio.sleep(0))  # lets the old transports finish
        finally:
            first_loop.close()
            second_loop.close()
        requests = graph.wait_for_sync(2)
    assert first.message_id != second.message_id
    assert requests[0].peer != requests[1].peer


def test_the_client_survives_asyncio_run_per_call() -> None:
    # Each asyncio.run() makes a loop and closes it; the next call must not reuse its session.
    with GraphServer() as graph:
        client = GraphClient(access_token=ACCESS_TOKEN, base_url=graph.base_url)

        async def send_and_close() -> SendResult:
            async with client:
                return await client.send_message(PHONE_NUMBER_ID, TEXT)

        results = [asyncio.run(send_and_close()) for _ in range(2)]
        # Without close(), the old loop's session is dropped and a new one made.
        results.append(asyncio.run(client.send_message(PHONE_NUMBER_ID, TEXT)))
        results.append(asyncio.run(client.send_message(PHONE_NUMBER_ID, TEXT)))
        asyncio.run(client.close())
    assert len({result.message_id for result in results}) == 4


def test_creating_a_client_needs_no_event_loop() -> None:
    client = GraphClient(access_token=ACCESS_TOKEN)
    assert client.base_url == "https://graph.facebook.com"
    assert client.api_version == "v23.0"
    assert ACCESS_TOKEN not in repr(client)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"access_token": ""},
        {"access_token": "  "},
        {"access_token": ACCESS_TOKEN, "base_url": "ftp://example.org"},
        {"access_token": ACCESS_TOKEN, "base_url": "not a url"},
        {"access_token": ACCESS_TOKEN, "api_version": "/"},
    ],
)
def test_bad_settings_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        GraphClient(**kwargs)


async def test_empty_ids_are_refused_before_any_request(
    graph: GraphServer, fake_time: FakeTime
) -> None:
    async with make_client(graph, fake_time) as client:
        with pytest.raises(ValueError):
            await client.send_message("", TEXT)
        with pytest.raises(ValueError):
            await client.mark_as_read(PHONE_NUMBER_ID, "")
        with pytest.raises(ValueError):
            await client.get_media(" ")
    assert graph.requests == []


async def test_ids_cannot_escape_their_path_segment(
    graph: GraphServer, fake_time: FakeTime
) -> None:
    async with make_client(graph, fake_time) as client:
        with pytest.raises(InvalidRequestError):
            await client.get_media("../../me?fields=x")
    [request] = graph.requests
    assert request.raw_path == "/v23.0/..%2F..%2Fme%3Ffields%3Dx"
    assert request.query == {}


# -- media -----------------------------------------------------------------------------------------


async def test_get_and_download_media(graph: GraphServer, fake_time: FakeTime) -> None:
    data = bytes(range(256)) * 100
    media_id = graph.add_media(data, "image/jpeg")
    async with make_client(graph, fake_time) as client:
        info = await client.get_media(media_id)
        downloaded = await client.download_media(info.url)

    assert isinstance(info, MediaInfo)
    assert info.id == media_id
    assert info.mime_type == "image/jpeg"
    assert info.file_size == len(data)
    assert info.sha256 is not None and len(info.sha256) == 64
    assert downloaded == data
    lookup, download = graph.requests
    assert (lookup.method, lookup.path) == ("GET", f"/v23.0/{media_id}")
    assert download.headers["Authorization"] == f"Bearer {ACCESS_TOKEN}"


async def test_get_media_can_check_the_owning_number(
    graph: GraphServer, fake_time: FakeTime
) -> None:
    media_id = graph.add_media(b"x", "text/plain")
    async with make_client(graph, fake_time) as client:
        await client.get_media(media_id, phone_number_id=PHONE_NUMBER_ID)
    assert graph.requests[0].query == {"phone_number_id": PHONE_NUMBER_ID}


async def test_unknown_media_id(graph: GraphServer, fake_time: FakeTime) -> None:
    async with make_client(graph, fake_time) as client:
        with pytest.raises(InvalidRequestError) as caught:
            await client.get_media("123")
    assert (caught.value.code, caught.value.error_subcode) == (100, 33)


async def test_a_media_url_that_is_gone(graph: GraphServer, fake_time: FakeTime) -> None:
    # A 404 without Graph's JSON envelope (the sandbox's own answer has one).
    graph.script(MEDIA_DOWNLOAD_PATH + "999", [raw(404, "Not Found", "text/plain")])
    async with make_client(graph, fake_time) as client:
        with pytest.raises(GraphAPIError) as caught:
            await client.download_media(graph.media_url("999"))
    assert caught.value.http_status == 404
    assert caught.value.code is None
    assert len(graph.requests) == 1


async def test_upload_media_then_fetch_it_back(graph: GraphServer, fake_time: FakeTime) -> None:
    data = b"%PDF-1.4\r\n--not-a-boundary\r\n\x00\xff" * 50
    async with make_client(graph, fake_time) as client:
        media_id = await client.upload_media(PHONE_NUMBER_ID, data, "application/pdf", "menu.pdf")
        info = await client.get_media(media_id)
        assert await client.download_media(info.url) == data

    upload = graph.requests[0]
    assert (upload.method, upload.path) == ("POST", f"/v23.0/{PHONE_NUMBER_ID}/media")
    assert upload.form["messaging_product"].text == "whatsapp"
    assert upload.form["type"].text == "application/pdf"
    assert upload.form["file"].filename == "menu.pdf"
    assert upload.form["file"].content_type == "application/pdf"
    assert upload.form["file"].value == data
    assert info.mime_type == "application/pdf"


async def test_an_upload_is_rebuilt_for_each_attempt(
    graph: GraphServer, fake_time: FakeTime
) -> None:
    graph.script("/media", [meta_error(131000, 500)])
    async with make_client(graph, fake_time) as client:
        media_id = await client.upload_media(PHONE_NUMBER_ID, b"abc", "text/plain", "a.txt")
    assert media_id
    assert [request.form["file"].value for request in graph.requests] == [b"abc", b"abc"]


async def test_upload_refuses_empty_media(graph: GraphServer, fake_time: FakeTime) -> None:
    async with make_client(graph, fake_time) as client:
        with pytest.raises(ValueError):
            await client.upload_media(PHONE_NUMBER_ID, b"", "text/plain", "a.txt")


async def test_download_over_the_cap_by_content_length(
    graph: GraphServer, fake_time: FakeTime
) -> None:
    media_id = graph.add_media(b"x" * 5000, "video/mp4")
    async with make_client(graph, fake_time) as client:
        with pytest.raises(MediaTooLargeError) as caught:
            await client.download_media(graph.media_url(media_id), max_bytes=4999)
        assert await client.download_media(graph.media_url(media_id), max_bytes=5000)
    assert (caught.value.max_bytes, caught.value.size) == (4999, 5000)
    assert len(graph.requests) == 2  # not retried


async def test_download_over_the_cap_while_streaming(
    graph: GraphServer, fake_time: FakeTime
) -> None:
    body = b"y" * (300 * 1024)
    graph.script(MEDIA_DOWNLOAD_PATH + "1", [raw(200, body, "video/mp4", chunked=True)] * 2)
    async with make_client(graph, fake_time) as client:
        url = graph.media_url("1")
        with pytest.raises(MediaTooLargeError) as caught:
            await client.download_media(url, max_bytes=100 * 1024)
        assert await client.download_media(url, max_bytes=len(body)) == body
    assert caught.value.size is not None and caught.value.size > 100 * 1024
    assert len(graph.requests) == 2


async def test_download_refuses_a_non_http_url(graph: GraphServer, fake_time: FakeTime) -> None:
    async with make_client(graph, fake_time) as client:
        with pytest.raises(ValueError):
            await client.download_media("file:///etc/passwd")
