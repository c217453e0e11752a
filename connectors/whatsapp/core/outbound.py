"""Bot answers out: a Rasa-style bot message rendered and sent through the Graph API.

Every adapter sends through `Outbound`: the Rasa channel's `WhatsAppOutput` (turn answers,
trigger_intent, reminders) and the sync service's answer backends. One place therefore decides,
for each conversation, where a message goes and what becomes of a failure:

1. `address`: which ids a conversation's messages are sent to (`to` or `recipient`);
2. `render_bot_message`: the Cloud API bodies, with every limit applied;
3. `deliver_body`: one send; a failure is logged with Meta's code and the recipient and never
   raised, because raising into Rasa would drop the rest of the turn (the tracker would not be
   saved: docs/rasa-3.6-internals.md section 9.4).

The client has already retried what can be retried (throttling, 5xx, timeouts) by the time a
failure reaches here.
"""

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from connectors.whatsapp.core.client import GraphClient, SendResult
from connectors.whatsapp.core.errors import WhatsAppError
from connectors.whatsapp.core.pacing import Pacer
from connectors.whatsapp.core.rendering import RenderOptions, render_bot_message

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Address:
    """Where a conversation's messages go: the id the renderer puts in the body."""

    to: str


class Outbound:
    """Renders bot messages and sends them from a business number; never raises on a failure."""

    def __init__(
        self,
        client: GraphClient,
        *,
        default_phone_number_id: str,
        options: RenderOptions | None = None,
        pacer: Pacer | None = None,
    ) -> None:
        self.client = client
        self.pacer = pacer
        """Waits before each send for the number's rate and the recipient's (`core/pacing.py`)."""
        self.default_phone_number_id = default_phone_number_id
        self.options = options or RenderOptions()
        self.counters: dict[str, int] = {"answers_sent": 0, "send_failures": 0}

    def address(self, conversation_id: str) -> Address:
        """The address of a conversation (a phone number, a business-scoped user id, ...)."""
        return Address(to=conversation_id)

    async def send(
        self,
        conversation_id: str,
        message: Mapping[str, Any],
        *,
        phone_number_id: str | None = None,
    ) -> list[SendResult | None]:
        """Render one bot message for `conversation_id` and send each body, in order.

        Returns one entry per body: the send's result, or None where it failed (logged).
        """
        sender = phone_number_id or self.default_phone_number_id
        address = self.address(conversation_id)
        bodies = render_bot_message(message, to=address.to, options=self.options)
        return [await self.deliver_body(sender, conversation_id, body) for body in bodies]

    async def deliver_body(
        self, phone_number_id: str, conversation_id: str, body: Mapping[str, Any]
    ) -> SendResult | None:
        """Send one Cloud API body; on failure log Meta's code and the recipient, return None."""
        try:
            if self.pacer is not None:
                await self.pacer.wait(phone_number_id, conversation_id)
            result = await self.client.send_message(phone_number_id, body)
        except WhatsAppError as error:
            self.counters["send_failures"] += 1
            logger.error(
                "Could not send a %s message to %s from %s: %s",
                body.get("type"),
                conversation_id,
                phone_number_id,
                error,
            )
            return None
        self.counters["answers_sent"] += 1
        return result

    async def close(self) -> None:
        """Release what sending holds (the Graph client's connections)."""
        await self.client.close()
