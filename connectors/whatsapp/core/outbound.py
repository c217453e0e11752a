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
failure reaches here; with an outbox (`outbox_retry_seconds` > 0) such an answer then waits there
and is retried for minutes, in order per recipient, without holding the bot's turn.
"""

import hashlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from connectors.whatsapp.core.client import GraphClient, SendResult
from connectors.whatsapp.core.errors import ReEngagementError, WhatsAppError
from connectors.whatsapp.core.events import StatusUpdate
from connectors.whatsapp.core.identity import IdentityStore, KeyValueStore
from connectors.whatsapp.core.importing import call_hook
from connectors.whatsapp.core.outbox import Outbox
from connectors.whatsapp.core.pacing import Pacer
from connectors.whatsapp.core.rendering import (
    RenderOptions,
    render_bot_message,
    render_group_message,
)
from connectors.whatsapp.core.window import ReengagementTemplate, is_reengagement, refusal_status

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Address:
    """Where a conversation's messages go: the id the renderer puts in the body.

    `to` is a phone number (sent as `to`), a BSUID (sent as `recipient`: a BSUID in `to` gets a
    200 from Meta and is then silently dropped) or, with `group`, a group id (`recipient_type:
    "group"`).
    """

    to: str
    group: bool = False
    phone: str | None = None
    """The person's phone number, if known (authentication templates need one)."""
    outside_window: bool = False
    """The person's last message is known and more than 24 hours old."""


class PhoneNumberRequiredError(WhatsAppError, ValueError):
    """A send that needs the person's phone number (an authentication template) has none."""


NEEDS_PHONE_NUMBER = "needs_phone_number"
"""A key a custom message may carry (`true`) to be sent to the person's phone number only, as
Meta requires for authentication templates; it is removed before sending."""


class Outbound:
    """Renders bot messages and sends them from a business number; never raises on a failure."""

    def __init__(
        self,
        client: GraphClient,
        *,
        default_phone_number_id: str,
        options: RenderOptions | None = None,
        pacer: Pacer | None = None,
        identities: IdentityStore | None = None,
        reengagement: ReengagementTemplate | None = None,
        status_hook: Callable[[StatusUpdate], Any] | None = None,
        outbox: Outbox | None = None,
        on_paced: Callable[[float], None] | None = None,
        answered: KeyValueStore | None = None,
        answered_ttl_seconds: float = 7 * 24 * 3600,
    ) -> None:
        self.client = client
        self.pacer = pacer
        """Waits before each send for the number's rate and the recipient's (`core/pacing.py`)."""
        self.default_phone_number_id = default_phone_number_id
        self.options = options or RenderOptions()
        self.identities = identities
        """Who a conversation is (phone, BSUID, group), their window, menus, sent ids."""
        self.reengagement = reengagement
        """Sent instead of a free-form message outside the 24-hour window, or once after 131047."""
        self.status_hook = status_hook
        """Given a 131047 refusal that no template could answer."""
        self.outbox = outbox
        """Where answers that failed for a retryable reason wait (`core/outbox.py`), if set."""
        self.on_paced = on_paced
        """Told how long pacing held each send back (the metrics' pacing wait), if set."""
        self.answered = answered
        """With `queue: redis`: which answers of a turn were sent (`answer_key`), so that a turn
        run again (its instance was killed after sending, or it raised and is retried) does not
        send them twice."""
        self._answered_ttl = answered_ttl_seconds
        self.clock: Callable[[], float] = time.time
        self.counters: dict[str, int] = {
            "answers_sent": 0,
            "send_failures": 0,
            "templates_sent": 0,
            "answers_queued": 0,
        }

    async def address(self, conversation_id: str) -> Address:
        """The address of a conversation, from the identity store when there is one.

        A person last seen with a phone number gets `to`; one whose latest message came with a
        BSUID only (a username user) gets `recipient`; a group, the group. Without a store, or
        for a conversation it never saw, the id is used as given (`builders.address` puts a
        BSUID-shaped id in `recipient`).
        """
        if self.identities is None:
            return Address(to=conversation_id)
        found = await self.identities.recipient(conversation_id)
        if found.group:
            return Address(to=conversation_id, group=True)
        if found.phone and not (found.phone_withheld and found.user_id):
            to = found.phone
        else:
            to = found.user_id or found.phone or conversation_id
        return Address(
            to=to,
            phone=found.phone,
            outside_window=found.outside_window(self.clock()),
        )

    async def send(
        self,
        conversation_id: str,
        message: Mapping[str, Any],
        *,
        phone_number_id: str | None = None,
        answer_key: str | None = None,
    ) -> list[SendResult | None]:
        """Render one bot message for `conversation_id` and send each body, in order.

        `answer_key` names this answer of a turn ("<inbound wamid>:<answer number>"): with an
        `answered` store, a body already sent under it (by an earlier run of the same turn) is
        not sent again. Returns one entry per body: the send's result, or None where it failed
        (logged) or had been sent before.
        """
        sender = phone_number_id or self.default_phone_number_id
        address = await self.address(conversation_id)
        message, needs_phone = _needs_phone(message)
        if needs_phone:
            if address.phone is None:
                self.counters["send_failures"] += 1
                logger.error(
                    "Not sent to %s: %s",
                    conversation_id,
                    PhoneNumberRequiredError(
                        "this message needs the person's phone number (authentication "
                        "templates do), and they are known only by their business-scoped user id"
                    ),
                )
                return []
            address = Address(to=address.phone, phone=address.phone)
        if address.group:
            bodies, menu = render_group_message(message, to=address.to, options=self.options)
            if menu and self.identities is not None:
                await self.identities.remember_menu(conversation_id, menu)
        elif address.outside_window and self.reengagement is not None and not _is_template(message):
            logger.info(
                "%s last wrote more than 24 hours ago: sending the template %r instead.",
                conversation_id,
                self.reengagement.name,
            )
            bodies = [self.reengagement.body(_message_text(message), address.to)]
        else:
            bodies = render_bot_message(message, to=address.to, options=self.options)
        results: list[SendResult | None] = []
        log = self.answered if answer_key is not None else None
        for number, body in enumerate(bodies):
            sent_key = f"{answer_key}:{number}"
            if log is not None and await log.get(sent_key) is not None:
                logger.info(
                    "Answer %s was sent by an earlier run of its turn: not again.", sent_key
                )
                results.append(None)
                continue
            result = await self.deliver_body(sender, conversation_id, body)
            results.append(result)
            if log is not None and result is not None:
                await log.set(sent_key, result.message_id, self._answered_ttl)
            if result is not None:
                text = _message_text(message) or _body_text(body)
                await self._remember_sent(result, conversation_id, sender, body, text)
        return results

    async def send_waiting(
        self, phone_number_id: str, conversation_id: str, body: Mapping[str, Any]
    ) -> SendResult | None:
        """The outbox's send of an answer that waited: paced and remembered like any, and a
        131047 refusal (the 24-hour window closed while it waited) answered with the template,
        as a fresh send's would be: the template's result, then. None when it could not be:
        no template configured, or the answer was one (logged and given to the status hook).

        Raises the Graph client's errors, the template's included, for the outbox to retry the
        answer (retryable) or give it up.
        """
        try:
            result = await self.send_paced(phone_number_id, conversation_id, body)
        except ReEngagementError as error:
            template = await self._template_instead(phone_number_id, conversation_id, body, error)
            if template is None:
                return None
            result = await self.send_paced(phone_number_id, conversation_id, template)
            self.counters["templates_sent"] += 1
            return result
        await self._remember_sent(result, conversation_id, phone_number_id, body, _body_text(body))
        return result

    async def _remember_sent(
        self,
        result: SendResult,
        conversation_id: str,
        phone_number_id: str,
        body: Mapping[str, Any],
        text: str,
    ) -> None:
        """Keep a free-form message's id: a later `failed` status with 131047 gets the template
        (`on_failed_status`). Templates are not kept (one is never answered with another), nor
        messages to a group (no 24-hour window there)."""
        if self.identities is None or body.get("type") == "template":
            return
        if body.get("recipient_type") == "group":
            return
        await self.identities.remember_sent(
            result.message_id, conversation_id, phone_number_id, {"text": text}
        )

    async def on_failed_status(self, status: StatusUpdate) -> None:
        """A `failed` status: a free-form message refused with 131047 gets the template, once.

        The message id must be one this process (or, with Redis, any instance) sent in the last
        two days; a template is never answered with a template, and one bot message that went
        out as several bodies is answered with one template.
        """
        if not is_reengagement(status) or self.identities is None:
            return
        sent = await self.identities.take_sent(status.message_id)
        if sent is None:
            return
        text = sent.message.get("text")
        text = text if isinstance(text, str) else ""
        if self.reengagement is None:
            logger.error(
                "Message %s to %s was refused outside the 24-hour window (131047) and no "
                "reengagement_template is configured.",
                status.message_id,
                sent.conversation_id,
            )
            return
        digest = hashlib.sha256(f"{sent.conversation_id}\0{text}".encode("utf-8", "surrogatepass"))
        once = "reengaged:" + digest.hexdigest()
        if await self.identities.store.get(once):
            return
        await self.identities.store.set(once, "1", 3600)
        address = await self.address(sent.conversation_id)
        body = self.reengagement.body(text, address.to)
        logger.warning(
            "Message %s to %s was refused outside the 24-hour window (131047): sending the "
            "template %r instead.",
            status.message_id,
            sent.conversation_id,
            self.reengagement.name,
        )
        await self._send_template(sent.phone_number_id, sent.conversation_id, body)

    async def deliver_body(
        self, phone_number_id: str, conversation_id: str, body: Mapping[str, Any]
    ) -> SendResult | None:
        """Send one Cloud API body; on failure log Meta's code and the recipient, return None.

        With an outbox, an answer that failed for a retryable reason waits there (and so do later
        answers to the same recipient, so that none overtakes it): None is returned at once.
        """
        if self.outbox is not None and await self._outbox_holds(conversation_id):
            await self._to_outbox(phone_number_id, conversation_id, body, None)
            return None
        try:
            result = await self.send_paced(phone_number_id, conversation_id, body)
        except ReEngagementError as error:
            return await self._refused_outside_window(phone_number_id, conversation_id, body, error)
        except WhatsAppError as error:
            if self.outbox is not None and error.retryable:
                await self._to_outbox(phone_number_id, conversation_id, body, error)
                return None
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

    async def _outbox_holds(self, conversation_id: str) -> bool:
        assert self.outbox is not None
        try:
            return await self.outbox.holds(conversation_id)
        except Exception as error:  # Redis down: send directly rather than not at all
            logger.warning("Outbox unreachable (%s); sending to %s now.", error, conversation_id)
            return False

    async def _to_outbox(
        self,
        phone_number_id: str,
        conversation_id: str,
        body: Mapping[str, Any],
        error: WhatsAppError | None,
    ) -> None:
        assert self.outbox is not None
        if await self.outbox.put(phone_number_id, conversation_id, body, error):
            self.counters["answers_queued"] += 1
            logger.warning(
                "A %s message to %s waits in the outbox (%s).",
                body.get("type"),
                conversation_id,
                error or "an earlier answer to them waits",
            )
            return
        self.counters["send_failures"] += 1
        logger.error(
            "Could not send a %s message to %s from %s, and the outbox is full or unreachable: %s",
            body.get("type"),
            conversation_id,
            phone_number_id,
            error or "an earlier answer to them waits",
        )

    async def _refused_outside_window(
        self,
        phone_number_id: str,
        conversation_id: str,
        body: Mapping[str, Any],
        error: ReEngagementError,
    ) -> SendResult | None:
        """131047 at once (HTTP 400): the template instead, once; without one, the status hook."""
        template = await self._template_instead(phone_number_id, conversation_id, body, error)
        if template is None:
            return None
        return await self._send_template(phone_number_id, conversation_id, template)

    async def _template_instead(
        self,
        phone_number_id: str,
        conversation_id: str,
        body: Mapping[str, Any],
        error: ReEngagementError,
    ) -> Mapping[str, Any] | None:
        """The re-engagement template to send for `body`, refused with 131047; None (logged, and
        given to the status hook) without one, or when `body` was a template already."""
        self.counters["send_failures"] += 1
        recipient = str(body.get("to") or body.get("recipient") or conversation_id)
        if self.reengagement is None or body.get("type") == "template":
            logger.error(
                "Meta refused a %s message to %s from %s: the 24-hour window is closed "
                "(131047) and %s: %s",
                body.get("type"),
                conversation_id,
                phone_number_id,
                "no reengagement_template is configured"
                if self.reengagement is None
                else "it was already a template",
                error,
            )
            await self.report_status(
                refusal_status(
                    recipient=recipient, phone_number_id=phone_number_id, message=str(error)
                )
            )
            return None
        logger.warning(
            "Meta refused a %s message to %s (131047, outside the 24-hour window): sending the "
            "template %r instead.",
            body.get("type"),
            conversation_id,
            self.reengagement.name,
        )
        return self.reengagement.body(_body_text(body), recipient)

    async def _send_template(
        self, phone_number_id: str, conversation_id: str, body: Mapping[str, Any]
    ) -> SendResult | None:
        try:
            result = await self.client.send_message(phone_number_id, body)
        except WhatsAppError as error:
            self.counters["send_failures"] += 1
            logger.error(
                "Could not send the re-engagement template to %s from %s: %s",
                conversation_id,
                phone_number_id,
                error,
            )
            recipient = str(body.get("to") or body.get("recipient") or conversation_id)
            await self.report_status(
                refusal_status(
                    recipient=recipient, phone_number_id=phone_number_id, message=str(error)
                )
            )
            return None
        self.counters["templates_sent"] += 1
        return result

    async def send_paced(
        self, phone_number_id: str, conversation_id: str, body: Mapping[str, Any]
    ) -> SendResult:
        """One body, after the pacer's wait (counted in the metrics): answers and outbox retries.

        Raises the Graph client's errors: the callers decide (log, outbox, template).
        """
        if self.pacer is not None:
            waited = await self.pacer.wait(phone_number_id, conversation_id)
            if waited > 0 and self.on_paced is not None:
                self.on_paced(waited)
        return await self.client.send_message(phone_number_id, body)

    async def report_status(self, status: StatusUpdate) -> None:
        """Hand a failed status (or a refusal standing for one) to the status hook, if any."""
        if self.status_hook is None:
            return
        try:
            await call_hook(self.status_hook, status)
        except Exception:
            logger.exception("The status hook failed.")

    async def close(self) -> None:
        """Release what sending holds (the Graph client's connections)."""
        await self.client.close()


def _needs_phone(message: Mapping[str, Any]) -> tuple[Mapping[str, Any], bool]:
    """The message without its `needs_phone_number` marker, and whether it had one."""
    custom = message.get("custom")
    if not isinstance(custom, Mapping) or NEEDS_PHONE_NUMBER not in custom:
        return message, False
    stripped = {key: value for key, value in custom.items() if key != NEEDS_PHONE_NUMBER}
    return {**message, "custom": stripped}, custom.get(NEEDS_PHONE_NUMBER) is True


def _is_template(message: Mapping[str, Any]) -> bool:
    """A bot message that is itself a template (sent as given, in or outside the window)."""
    custom = message.get("custom")
    items = custom if isinstance(custom, list) else [custom]
    return any(isinstance(item, Mapping) and item.get("type") == "template" for item in items)


def _message_text(message: Mapping[str, Any]) -> str:
    text = message.get("text")
    return text if isinstance(text, str) else ""


def _body_text(body: Mapping[str, Any]) -> str:
    """What a body says: its text, interactive body or media caption."""
    kind = body.get("type")
    part = body.get(kind) if isinstance(kind, str) else None
    if not isinstance(part, Mapping):
        return ""
    if kind == "text":
        text = part.get("body")
    elif kind == "interactive":
        inner = part.get("body")
        text = inner.get("text") if isinstance(inner, Mapping) else None
    else:
        text = part.get("caption")
    return text if isinstance(text, str) else ""
