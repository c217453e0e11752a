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

Loaded by `rasa run` from the benchmark's credentials as `bench._floor_channel.FloorInput`
(the project root is on the path; `bench/` is a namespace package).
"""

from typing import Any

import aiohttp
from rasa.core.channels.channel import CollectingOutputChannel, InputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse


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
        self._session: aiohttp.ClientSession | None = None

    async def _post(self, body: dict[str, Any]) -> None:
        if self._session is None:  # one shared session, made on the serving loop
            self._session = aiohttp.ClientSession()
        async with self._session.post(
            self._messages_url, json=body, headers=self._headers
        ) as answer:
            await answer.read()

    def blueprint(self, on_new_message: Any) -> Blueprint:
        floor = Blueprint("floor_webhook", __name__)

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
