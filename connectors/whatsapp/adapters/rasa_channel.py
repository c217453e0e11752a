"""The Rasa channel: `connectors.whatsapp.WhatsAppInput` in credentials.yml.

Routes (Rasa mounts them under `/webhooks/whatsapp/`):

- `GET /webhooks/whatsapp/`: health (`WebhookEndpoint.health`);
- `GET /webhooks/whatsapp/metrics`: Prometheus metrics (`WebhookEndpoint.metrics`; 404 unless
  `metrics: true`);
- `GET /webhooks/whatsapp/webhook`: Meta's verification request;
- `POST /webhooks/whatsapp/webhook`: notifications, answered before the bot runs.

Conversion only: Sanic's request becomes a `WebhookRequest`, the core's `WebhookEndpoint` decides,
its `WebhookResponse` becomes Sanic's. Bot messages go out through the endpoint's `Outbound`.
"""

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from rasa.core.channels.channel import InputChannel, OutputChannel, UserMessage
from rasa.shared.exceptions import RasaException
from sanic import Blueprint, Sanic, response
from sanic.exceptions import SanicException
from sanic.request import Request
from sanic.response import HTTPResponse

from connectors.whatsapp.adapters.rasa_replay import saved_answers
from connectors.whatsapp.core.client import GraphClient
from connectors.whatsapp.core.config import ConfigError, WhatsAppConfig
from connectors.whatsapp.core.dedup import DedupStore
from connectors.whatsapp.core.endpoint import WebhookEndpoint
from connectors.whatsapp.core.inbound import BotInput
from connectors.whatsapp.core.outbound import Outbound
from connectors.whatsapp.core.processing import StatusHook
from connectors.whatsapp.core.queue import turn_attempt
from connectors.whatsapp.core.rendering import RenderOptions
from connectors.whatsapp.core.turn_sender import TurnSender, wait_for_answers
from connectors.whatsapp.core.webhook import (
    TEMPORARILY_UNAVAILABLE,
    WebhookRequest,
    WebhookResponse,
)

logger = logging.getLogger(__name__)

CHANNEL_NAME = "whatsapp"


class WhatsAppConfigError(RasaException):
    """Stops `rasa run` with a message naming the credentials key at fault."""


class WhatsAppOutput(OutputChannel):
    """Sends Rasa's bot messages through the Graph API, from one business number.

    A Graph API failure never raises into Rasa: Rasa would drop the whole turn (tracker not saved).
    `Outbound` logs what fails with Meta's code and the recipient, and the next message goes on.

    The channel's own output for a user's turn is `queued` until the turn ends: each message is
    handed to a `TurnSender` and sent, in order, while Rasa's turn goes on (`core/turn_sender.py`
    says why); the channel awaits `flush()` after the turn, and from then on the same output sends
    directly (Rasa keeps it for the reminders the turn scheduled). A direct send (after the turn,
    `get_output_channel()` for trigger_intent, one built in custom code) is done when
    `send_response` returns, and one from the channel first waits for the conversation's answers
    still going out, so that it never overtakes them.
    """

    @classmethod
    def name(cls) -> str:
        return CHANNEL_NAME

    def __init__(
        self,
        outbound: Outbound | GraphClient,
        phone_number_id: str | None = None,
        options: RenderOptions | None = None,
        *,
        queued: bool = False,
        unsent: dict[str, TurnSender] | None = None,
        turn_id: str | None = None,
    ) -> None:
        """Send through `outbound`, from `phone_number_id` (else the endpoint's default number).

        `WhatsAppOutput(client, phone_number_id, options)`, the first layout's form, still works:
        a bare `GraphClient` gets an `Outbound` of its own (without the endpoint's identity
        store, outbox or pacing: prefer `WhatsAppInput(...).get_output_channel()`).
        """
        if isinstance(outbound, GraphClient):
            if not phone_number_id:
                raise ValueError(
                    "WhatsAppOutput(client, ...) needs the phone_number_id to send from"
                )
            outbound = Outbound(outbound, default_phone_number_id=phone_number_id, options=options)
        self.outbound = outbound
        self.phone_number_id = phone_number_id or outbound.default_phone_number_id
        self._unsent = unsent
        """The channel's conversations whose turn answers are still going out (`TurnSender`)."""
        self._sender = (
            TurnSender(outbound, self.phone_number_id, unsent=unsent, turn_id=turn_id)
            if queued
            else None
        )

    async def send_response(self, recipient_id: str, message: dict[str, Any]) -> None:
        """Render the whole bot message at once (text, buttons, media, custom...) and send it
        (while queued: queue it, sent in order while the turn goes on)."""
        if self._sender is not None:
            self._sender.enqueue(recipient_id, message)
            return
        if self._unsent is not None:
            await wait_for_answers(self._unsent, recipient_id)
        await self.outbound.send(recipient_id, message, phone_number_id=self.phone_number_id)

    async def flush(self) -> None:
        """Wait until every message queued so far was sent; later sends go out directly."""
        sender, self._sender = self._sender, None
        if sender is not None:
            await sender.flush()

    def discard(self) -> None:
        """Drop the queued messages not sent yet (the turn was stopped); later sends go out
        directly."""
        sender, self._sender = self._sender, None
        if sender is not None:
            sender.discard()

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


class WhatsAppInput(InputChannel):
    """Receives WhatsApp Cloud API webhooks and hands each message to Rasa."""

    @classmethod
    def name(cls) -> str:
        return CHANNEL_NAME

    @classmethod
    def from_credentials(cls, credentials: Mapping[str, Any] | None) -> "WhatsAppInput":
        try:
            return cls(WhatsAppConfig.from_mapping(credentials, os.environ))
        except ConfigError as error:
            raise WhatsAppConfigError(f"{cls.__name__} in credentials.yml: {error}") from None

    def __init__(
        self,
        config: WhatsAppConfig,
        *,
        client: GraphClient | None = None,
        dedup: DedupStore | None = None,
        status_hook: StatusHook | None = None,
    ) -> None:
        """The channel over a `WebhookEndpoint` built from `config` (parts may be given)."""
        self.config = config
        self.endpoint = WebhookEndpoint(config, client=client, dedup=dedup, status_hook=status_hook)
        self._unsent_answers: dict[str, TurnSender] = {}
        """Conversations whose last turn's answers are still going out (`core/turn_sender.py`)."""

    @property
    def pipeline(self) -> Any:
        """The endpoint's processing pipeline (tests and benchmarks wait on it)."""
        return self.endpoint.pipeline

    @property
    def client(self) -> GraphClient:
        """The endpoint's Graph API client (an attribute of the channel before the endpoint)."""
        return self.endpoint.client

    @property
    def dedup(self) -> DedupStore:
        """The endpoint's de-duplication store (an attribute of the channel before the endpoint)."""
        return self.endpoint.dedup

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        # A unique name per class, so a subclass can be registered beside this one.
        webhook = Blueprint(f"whatsapp_webhook_{type(self).__name__}", __name__)
        endpoint = self.endpoint
        log_level = logging.getLogger().level  # Rasa's --log-level; the model is not loaded yet
        outbound = endpoint.outbound
        unsent = self._unsent_answers

        app: Sanic | None = None  # once started: a re-run asks its agent's tracker store

        async def deliver(bot_input: BotInput) -> None:
            output = WhatsAppOutput(
                outbound,
                bot_input.message.business.phone_number_id,
                queued=True,
                unsent=unsent,
                turn_id=bot_input.message_id,
            )
            try:
                if turn_attempt() > 1 and await _answered_before(app, bot_input, output):
                    return
                await on_new_message(
                    UserMessage(
                        bot_input.text,
                        output,
                        bot_input.sender_id,
                        input_channel=CHANNEL_NAME,
                        message_id=bot_input.message_id,
                        metadata=bot_input.metadata,
                    )
                )
            except asyncio.CancelledError:  # stopped (shutdown): what it did not send goes too
                output.discard()
                raise
            finally:  # the turn ends once its answers went out, whatever became of the turn
                await output.flush()

        endpoint.bind(deliver)

        @webhook.exception(Exception)
        async def never_500(request: Request, error: Exception) -> HTTPResponse:
            """Sanic's own HTTP errors keep their 4xx; a fault of ours is logged and answered 503
            (Retry-After), never a 500: Meta redelivers, de-duplication prevents a double."""
            if isinstance(error, SanicException):
                return response.text(str(error), status=error.status_code)
            logger.exception("WhatsApp channel failed on %s %s.", request.method, request.path)
            return _to_sanic(TEMPORARILY_UNAVAILABLE)

        @webhook.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            report = await endpoint.health()
            return response.json(report.body, status=report.status_code)

        @webhook.route("/metrics", methods=["GET"])
        async def metrics(request: Request) -> HTTPResponse:
            neutral = WebhookRequest("GET", headers=request.headers)
            return _to_sanic(await endpoint.metrics(neutral))

        @webhook.route("/webhook", methods=["GET"])
        async def verify(request: Request) -> HTTPResponse:
            query = {key: request.args.get(key) for key in request.args}
            return _to_sanic(endpoint.verify(query))

        @webhook.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            neutral = WebhookRequest("POST", request.body or b"", request.headers)
            return _to_sanic(await endpoint.receive(neutral))

        @webhook.listener("after_server_start")
        async def start_taking_work(started: Sanic, *_: Any) -> None:
            nonlocal app
            app = started
            _restore_log_level(log_level)
            # queue: redis: every instance consumes from the start, webhooks or not.
            await endpoint.start()

        @webhook.listener("before_server_stop")
        async def finish_accepted_messages(*_: Any) -> None:
            await endpoint.drain()

        @webhook.listener("after_server_stop")
        async def close_connections(*_: Any) -> None:
            await endpoint.close()

        return webhook

    def get_output_channel(self) -> OutputChannel:
        """The channel for proactive messages (trigger_intent, `/execute`): the default number.

        Its sends wait for a conversation's answers still going out, then go out at once.
        """
        return WhatsAppOutput(self.endpoint.outbound, unsent=self._unsent_answers)


async def _answered_before(app: Sanic | None, bot_input: BotInput, output: OutputChannel) -> bool:
    """On a re-run: if Rasa saved this message's turn already, send its saved answers again (the
    ones Meta took are skipped by their answer keys) and say so; else False, and Rasa runs it.

    `adapters/rasa_replay.py` says why. Rasa's app factory keeps the agent at `app.ctx.agent`.
    """
    agent = getattr(app.ctx, "agent", None) if app is not None else None
    answers = await saved_answers(agent, bot_input.sender_id, bot_input.message_id)
    if answers is None:
        return False
    logger.info(
        "Message %s from %s is in the conversation already (its turn ran before its instance "
        "stopped): sending its %d saved answer(s) again, not running the bot twice.",
        bot_input.message_id,
        bot_input.sender_id,
        len(answers),
    )
    for answer in answers:
        await output.send_response(bot_input.sender_id, answer)
    return True


def _restore_log_level(level: int) -> None:
    """Give back the log level Rasa set, if loading the model made the root logger quieter.

    Rasa loads the model in `before_server_start`. A model with `LogisticRegressionClassifier`
    imports skops, which imports `numpy.distutils`, whose import sets the root logger to WARNING
    (setuptools' `distutils.log` is the root logger). Every INFO line after that would vanish:
    the channel's (a template sent outside the 24-hour window, draining on shutdown, outbox
    retries) and Rasa's own "Rasa server is up and running". Only a quieter level is undone.
    """
    root = logging.getLogger()
    if level != logging.NOTSET and root.level > level:
        root.setLevel(level)


def _to_sanic(answer: WebhookResponse) -> HTTPResponse:
    return response.text(
        answer.body, status=answer.status, content_type=answer.content_type, headers=answer.headers
    )
