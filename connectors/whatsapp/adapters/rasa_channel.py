"""The Rasa channel: `connectors.whatsapp.WhatsAppInput` in credentials.yml.

Routes (Rasa mounts them under `/webhooks/whatsapp/`):

- `GET /webhooks/whatsapp/`: health, with counters;
- `GET /webhooks/whatsapp/webhook`: Meta's verification request;
- `POST /webhooks/whatsapp/webhook`: notifications, answered before the bot runs.

All decisions are the core's (`webhook`, `processing`, `rendering`); this module only converts
Sanic's requests and Rasa's messages, and wires the Graph client's lifetime to the server's.
"""

import logging
import os
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from rasa.core.channels.channel import InputChannel, OutputChannel, UserMessage
from rasa.shared.exceptions import RasaException
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from connectors.whatsapp.core.client import GraphClient
from connectors.whatsapp.core.config import ConfigError, WhatsAppConfig
from connectors.whatsapp.core.dedup import DedupStore
from connectors.whatsapp.core.inbound import BotInput, intent_names
from connectors.whatsapp.core.processing import InboundPipeline, StatusHook
from connectors.whatsapp.core.rendering import RenderOptions, render_bot_message
from connectors.whatsapp.core.webhook import (
    SHUTTING_DOWN,
    TEMPORARILY_UNAVAILABLE,
    WebhookRequest,
    WebhookResponse,
    accept_notification,
    verify_subscription,
)
from connectors.whatsapp.sync.service import (
    load_status_hook,
    make_acknowledge,
    make_dedup_store,
    make_graph_client,
    send_body,
)

logger = logging.getLogger(__name__)

CHANNEL_NAME = "whatsapp"


class WhatsAppConfigError(RasaException):
    """Stops `rasa run` with a message naming the credentials key at fault."""


class WhatsAppOutput(OutputChannel):
    """Sends Rasa's bot messages through the Graph API, from one business number.

    A Graph API failure never raises into Rasa: Rasa would drop the whole turn (tracker not saved).
    Retryable errors are retried by the client; what still fails is logged with Meta's code and the
    recipient, and the next message goes on.
    """

    @classmethod
    def name(cls) -> str:
        return CHANNEL_NAME

    def __init__(
        self, client: GraphClient, phone_number_id: str, options: RenderOptions | None = None
    ) -> None:
        self.client = client
        self.phone_number_id = phone_number_id
        self.options = options or RenderOptions()

    async def send_response(self, recipient_id: str, message: dict[str, Any]) -> None:
        """Render the whole bot message at once (text, buttons, media, custom...) and send it."""
        bodies = render_bot_message(message, to=recipient_id, options=self.options)
        for body in bodies:
            await self._send(recipient_id, body)

    async def send_text_message(self, recipient_id: str, text: str, **kwargs: Any) -> None:
        await self.send_response(recipient_id, {"text": text})

    async def send_image_url(self, recipient_id: str, image: str, **kwargs: Any) -> None:
        await self.send_response(recipient_id, {"image": image})

    async def send_attachment(self, recipient_id: str, attachment: Any, **kwargs: Any) -> None:
        await self.send_response(recipient_id, {"attachment": attachment})

    async def send_text_with_buttons(
        self, recipient_id: str, text: str, buttons: list[dict[str, Any]], **kwargs: Any
    ) -> None:
        await self.send_response(recipient_id, {"text": text, "buttons": buttons})

    async def send_quick_replies(
        self, recipient_id: str, text: str, quick_replies: list[dict[str, Any]], **kwargs: Any
    ) -> None:
        await self.send_response(recipient_id, {"text": text, "quick_replies": quick_replies})

    async def send_elements(
        self, recipient_id: str, elements: list[dict[str, Any]], **kwargs: Any
    ) -> None:
        await self.send_response(recipient_id, {"elements": elements})

    async def send_custom_json(
        self, recipient_id: str, json_message: dict[str, Any], **kwargs: Any
    ) -> None:
        await self.send_response(recipient_id, {"custom": json_message})

    async def _send(self, recipient_id: str, body: Mapping[str, Any]) -> None:
        await send_body(self.client, self.phone_number_id, recipient_id, body)


class WhatsAppInput(InputChannel):
    """Receives WhatsApp Cloud API webhooks and hands each message to Rasa."""

    @classmethod
    def name(cls) -> str:
        return CHANNEL_NAME

    @classmethod
    def from_credentials(cls, credentials: Mapping[str, Any] | None) -> "WhatsAppInput":
        try:
            config = WhatsAppConfig.from_mapping(credentials, os.environ)
            intent_names(config.intents)
            status_hook = load_status_hook(config.status_hook)
        except (ConfigError, ValueError) as error:
            raise WhatsAppConfigError(f"{cls.__name__} in credentials.yml: {error}") from None
        return cls(config, status_hook=status_hook)

    def __init__(
        self,
        config: WhatsAppConfig,
        *,
        client: GraphClient | None = None,
        dedup: DedupStore | None = None,
        status_hook: StatusHook | None = None,
    ) -> None:
        self.config = config
        self.client = client or make_graph_client(config)
        self.dedup = dedup or make_dedup_store(config)
        self.render_options = config.render_options()
        self.status_hook = status_hook
        self.pipeline: InboundPipeline | None = None

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        # A unique name per class, so a subclass can be registered beside this one.
        webhook = Blueprint(f"whatsapp_webhook_{type(self).__name__}", __name__)
        pipeline = self.pipeline = self._make_pipeline(on_new_message)

        @webhook.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json(
                {"status": "ok", "pending": pipeline.queues.pending, **pipeline.counters}
            )

        @webhook.route("/webhook", methods=["GET"])
        async def verify(request: Request) -> HTTPResponse:
            query = {key: request.args.get(key) for key in request.args}
            return _to_sanic(verify_subscription(query, self.config.verify_token))

        @webhook.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            try:
                acceptance = accept_notification(
                    WebhookRequest(
                        method="POST",
                        body=request.body or b"",
                        headers=dict(request.headers),
                    ),
                    app_secret=self.config.app_secret,
                    validate_signature=self.config.validate_signature,
                    default_phone_number_id=self.config.phone_number_id,
                )
                if not acceptance.accepted:
                    return _to_sanic(acceptance.response)
                if not pipeline.accepting:
                    # Stopping: a 200 now would lose the message; Meta redelivers a 503 later.
                    logger.warning("Webhook refused with 503: the server is stopping.")
                    return _to_sanic(SHUTTING_DOWN)
                pipeline.accept(acceptance.events)
                return _to_sanic(acceptance.response)
            except Exception:
                logger.exception("WhatsApp webhook failed; answering 503 so that Meta retries.")
                return _to_sanic(TEMPORARILY_UNAVAILABLE)

        @webhook.listener("before_server_stop")
        async def finish_accepted_messages(*_: Any) -> None:
            timeout = self.config.drain_timeout_seconds
            logger.info("Stopping: finishing the accepted messages first (at most %g s).", timeout)
            await pipeline.drain(timeout)

        @webhook.listener("after_server_stop")
        async def close_connections(*_: Any) -> None:
            await self.client.close()
            await self.dedup.close()

        return webhook

    def get_output_channel(self) -> OutputChannel:
        """The channel for proactive messages (trigger_intent, reminders): the default number."""
        return WhatsAppOutput(self.client, self.config.phone_number_id, self.render_options)

    def _make_pipeline(
        self, on_new_message: Callable[[UserMessage], Awaitable[Any]]
    ) -> InboundPipeline:
        async def deliver(bot_input: BotInput) -> None:
            business = bot_input.message.business
            output = WhatsAppOutput(self.client, business.phone_number_id, self.render_options)
            await on_new_message(
                UserMessage(
                    bot_input.text,
                    output,
                    bot_input.sender_id,
                    input_channel=self.name(),
                    message_id=bot_input.message_id,
                    metadata=bot_input.metadata,
                )
            )

        return InboundPipeline(
            dedup=self.dedup,
            deliver=deliver,
            acknowledge=make_acknowledge(self.client, self.config),
            status_hook=self.status_hook,
            intents=intent_names(self.config.intents),
            caption_as_text=self.config.media_caption_as_text,
        )


def _to_sanic(answer: WebhookResponse) -> HTTPResponse:
    return response.text(
        answer.body, status=answer.status, content_type=answer.content_type, headers=answer.headers
    )
