"""The floor of a WhatsApp turn, as a Rasa input channel: Rasa's REST channel plus the Graph API
requests that no WhatsApp channel can avoid (`bench_turn.py`'s third case).

A WhatsApp turn costs the Rasa process more than a REST turn for a reason of the platform, not of
the channel: REST writes its answers into its HTTP response, while a WhatsApp turn makes a request
of its own for the read receipt (with the typing indicator) and one per answer
(https://developers.facebook.com/docs/whatsapp/cloud-api/guides/mark-message-as-read,
https://developers.facebook.com/docs/whatsapp/cloud-api/messages/text-messages). This channel is
REST with exactly those requests added, made the plainest way (`session.post(url, json=body)` on
one shared aiohttp session, awaited in the request): what is left between it and the WhatsApp
channel is the channel's own work (signature, parsing, ordering, identity, rendering, pacing,
retries, the background turn).

`RawFloorInput` makes the same requests without aiohttp: a bare HTTP/1.1 request written to a
kept-alive connection in one write and its answer parsed by httptools (Sanic's parser). It is not a
client (no TLS, no timeouts, no error handling, plain HTTP to the loopback stand-in only): it
measures how little a Graph request can cost the Rasa process, against what aiohttp 3.9 (Rasa
3.6's pin) costs.

Loaded by `rasa run` from the benchmark's credentials as `bench._floor_channel.FloorInput` and
`bench._floor_channel.RawFloorInput` (the project root is on the path; `bench/` is a namespace
package).
"""

import asyncio
import json
from typing import Any, cast

import aiohttp
import httptools
from rasa.core.channels.channel import CollectingOutputChannel, InputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse
from yarl import URL


class FloorInput(InputChannel):  # type: ignore[misc]  # Rasa is untyped
    """`POST /webhooks/floor/webhook` with `{"sender", "message", "message_id"}`, like REST's."""

    @classmethod
    def name(cls) -> str:
        return "floor"

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> "FloorInput":
        values = credentials or {}
        return cls(values["graph_url"], values["phone_number_id"], values["access_token"])

    def __init__(self, graph_url: str, phone_number_id: str, access_token: str) -> None:
        self._messages_url = f"{graph_url}/v23.0/{phone_number_id}/messages"
        self._headers = {"Authorization": f"Bearer {access_token}"}
        # Never closed: `rasa run` is stopped with the benchmark, and it is a benchmark's channel.
        self._session: aiohttp.ClientSession | None = None

    async def _post(self, body: dict[str, Any]) -> None:
        if self._session is None:  # one shared session, made on the serving loop
            self._session = aiohttp.ClientSession()
        async with self._session.post(
            self._messages_url, json=body, headers=self._headers
        ) as answer:
            if answer.status != 200:
                raise RuntimeError(f"the Graph stand-in answered {answer.status}")
            await answer.json()  # decoded, as the WhatsApp channel decodes its answers

    def blueprint(self, on_new_message: Any) -> Blueprint:
        floor = Blueprint(f"{self.name()}_webhook", __name__)

        async def webhook(request: Request) -> HTTPResponse:
            sender, text = request.json["sender"], request.json["message"]
            receipt = {
                "messaging_product": "whatsapp",
                "status": "read",
                "message_id": request.json["message_id"],
                "typing_indicator": {"type": "text"},
            }
            await self._post(receipt)
            collector = CollectingOutputChannel()
            await on_new_message(UserMessage(text, collector, sender, input_channel=self.name()))
            for answer in collector.messages:
                body = {"type": "text", "text": {"body": answer.get("text") or ""}}
                await self._post({"messaging_product": "whatsapp", "to": sender, **body})
            return response.json(collector.messages)

        floor.add_route(webhook, "/webhook", methods=["POST"])
        return floor


class _Connection(asyncio.Protocol):
    """One kept-alive connection: the answer to the request in flight, parsed by httptools."""

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.answer: asyncio.Future[bytes] | None = None
        self.body: list[bytes] = []
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)  # a bad answer raises: uvloop then closes the connection

    def connection_lost(self, exc: Exception | None) -> None:
        """Closed by the stand-in (its keep-alive timeout) or after a bad answer: never reused,
        and a request in flight fails instead of waiting for ever."""
        self.closed = True
        answer, self.answer = self.answer, None
        if answer is not None and not answer.done():
            answer.set_exception(ConnectionError("the Graph stand-in closed the connection"))

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        answer, self.answer = self.answer, None
        body, self.body = b"".join(self.body), []
        if self.parser.get_status_code() != 200:
            if answer is not None:
                answer.set_exception(RuntimeError(f"the stand-in answered {body[:200]!r}"))
        elif answer is not None:
            answer.set_result(body)


class RawFloorInput(FloorInput):
    """The floor with its Graph requests written by hand on kept-alive connections (see above)."""

    @classmethod
    def name(cls) -> str:
        return "floor_raw"

    def __init__(self, graph_url: str, phone_number_id: str, access_token: str) -> None:
        super().__init__(graph_url, phone_number_id, access_token)
        url = URL(self._messages_url)
        self._address = (url.host or "127.0.0.1", url.port or 80)
        self._head = (
            f"POST {url.raw_path} HTTP/1.1\r\nHost: {url.host}:{url.port}\r\n"
            f"Authorization: {self._headers['Authorization']}\r\n"
            "Content-Type: application/json\r\nContent-Length: "
        ).encode()
        self._idle: list[_Connection] = []

    async def _post(self, body: dict[str, Any]) -> None:
        while self._idle and self._idle[-1].closed:
            self._idle.pop()
        if self._idle:
            connection = self._idle.pop()
        else:
            loop = asyncio.get_running_loop()
            _, connection = await loop.create_connection(_Connection, *self._address)
        data = json.dumps(body, separators=(",", ":")).encode()
        connection.answer = asyncio.get_running_loop().create_future()
        assert connection.transport is not None
        connection.transport.write(self._head + b"%d\r\n\r\n" % len(data) + data)
        json.loads(await connection.answer)  # failed: the connection is dropped, not reused
        if not connection.closed:
            self._idle.append(connection)
