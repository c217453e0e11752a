"""Typed, immutable events parsed from a WhatsApp Cloud API webhook.

One webhook POST can carry many entries, changes, messages and statuses
(https://developers.facebook.com/docs/whatsapp/cloud-api/webhooks/components); `parsing.py` turns
each of them into one of the events below. Events are pure data: they keep the raw object they came
from (`raw`), so nothing Meta sends is lost, and they hold no client or framework reference.
"""

import dataclasses
import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

JSONObject = Mapping[str, Any]


class MessageKind(enum.Enum):
    """What an inbound message is, one value per shape Meta documents.

    https://developers.facebook.com/docs/whatsapp/cloud-api/webhooks/components#messages-object
    A type Meta adds later parses as `UNKNOWN`: parsing never raises on an unexpected shape.
    """

    TEXT = "text"
    BUTTON_REPLY = "button_reply"
    """`interactive.button_reply`: the user tapped a reply button."""
    LIST_REPLY = "list_reply"
    """`interactive.list_reply`: the user chose a row of a list."""
    FLOW_REPLY = "nfm_reply"
    """`interactive.nfm_reply`: the user completed a WhatsApp Flow."""
    TEMPLATE_BUTTON = "button"
    """`button`: the user tapped a quick-reply button of a template message."""
    IMAGE = "image"
    AUDIO = "audio"
    """Audio files and voice notes (`audio.voice` is true for voice notes)."""
    VIDEO = "video"
    DOCUMENT = "document"
    STICKER = "sticker"
    LOCATION = "location"
    CONTACTS = "contacts"
    REACTION = "reaction"
    ORDER = "order"
    SYSTEM = "system"
    UNSUPPORTED = "unsupported"
    """Meta's own `unsupported` type (and the older `unknown`): comes with `errors`."""
    EDIT = "edit"
    """`edit`: the user edited an earlier message; `text` is the new text (coexistence numbers:
    https://developers.facebook.com/documentation/business-messaging/whatsapp/webhooks/reference/messages/edit)."""
    REVOKE = "revoke"
    """`revoke`: the user deleted an earlier message; never for the bot."""
    CALL_PERMISSION_REPLY = "call_permission_reply"
    """`interactive.call_permission_reply`: an answer to a call permission request (Calling API)."""
    UNKNOWN = "unknown_to_us"
    """A type this version of the connector does not know."""


MEDIA_KINDS = frozenset(
    {
        MessageKind.IMAGE,
        MessageKind.AUDIO,
        MessageKind.VIDEO,
        MessageKind.DOCUMENT,
        MessageKind.STICKER,
    }
)


@dataclass(frozen=True, slots=True)
class ErrorDetail:
    """One item of an `errors` array (in messages, statuses or the change value).

    https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes
    """

    code: int | None
    title: str | None = None
    message: str | None = None
    details: str | None = None
    href: str | None = None


@dataclass(frozen=True, slots=True)
class BusinessNumber:
    """The business phone number a change was addressed to (`value.metadata`)."""

    phone_number_id: str
    display_phone_number: str | None = None


@dataclass(frozen=True, slots=True)
class Contact:
    """The sender's `contacts[]` entry: WhatsApp id, business-scoped user id and profile name.

    Since 2026 a contact may carry a business-scoped user id (`user_id`), a parent one for
    enterprise portfolios (`parent_user_id`, with `ENT`) and `profile.username`, and a user with
    a username may come with no `wa_id` at all
    (https://developers.facebook.com/documentation/business-messaging/whatsapp/business-scoped-user-ids).
    """

    wa_id: str | None
    user_id: str | None = None
    profile_name: str | None = None
    parent_user_id: str | None = None
    username: str | None = None
    raw: JSONObject = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class Reply:
    """The choice behind a button, list or template quick-reply answer.

    `id` is the reply id (or the template button's `payload`), `title` what the user saw.
    """

    id: str
    title: str | None = None
    description: str | None = None


@dataclass(frozen=True, slots=True)
class Media:
    """An image, audio, video, document or sticker the user sent. Download it by `id`."""

    id: str | None
    mime_type: str | None = None
    sha256: str | None = None
    caption: str | None = None
    filename: str | None = None
    voice: bool = False
    animated: bool = False
    url: str | None = None


@dataclass(frozen=True, slots=True)
class Location:
    """A shared location (a pin or a place with name and address)."""

    latitude: float
    longitude: float
    name: str | None = None
    address: str | None = None
    url: str | None = None


@dataclass(frozen=True, slots=True)
class Reaction:
    """An emoji reaction to one of our messages. An empty `emoji` means it was removed."""

    message_id: str | None
    emoji: str | None

    @property
    def removed(self) -> bool:
        return not self.emoji


@dataclass(frozen=True, slots=True)
class ReplyContext:
    """`context`: the message this one replies to, or the forwarding flags."""

    message_id: str | None = None
    from_: str | None = None
    forwarded: bool = False
    frequently_forwarded: bool = False
    referred_product: JSONObject | None = None


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """One message a user sent to the business.

    `sender` is the person who wrote, as Meta names them: the phone-based `from` (`wa_id`), or
    the business-scoped `from_user_id` when Meta sends only that
    (https://developers.facebook.com/docs/whatsapp/business-scoped-user-ids). Which conversation
    the message belongs to (the Rasa `sender_id`) is decided later, by the identity store
    (`identity.py`): a known person keeps their conversation whichever id they arrive with, and
    a group message (`group_id`) belongs to the group's conversation.
    """

    id: str
    kind: MessageKind
    type: str
    """Meta's `type` string, as sent (for example "interactive" for a button reply)."""
    sender: str
    business: BusinessNumber
    timestamp: int | None = None
    wa_id: str | None = None
    user_id: str | None = None
    parent_user_id: str | None = None
    """`from_parent_user_id` (or the contact's `parent_user_id`): an enterprise-wide BSUID."""
    group_id: str | None = None
    """Set for a message written in a group: the group is the conversation, `sender` the member."""
    contact: Contact | None = None
    text: str | None = None
    """The text body; for captioned media, the caption; for an edit, the new text."""
    original_message_id: str | None = None
    """For an edit or a revoke: the id of the message that was edited or deleted."""
    reply: Reply | None = None
    media: Media | None = None
    location: Location | None = None
    contacts: tuple[JSONObject, ...] = ()
    reaction: Reaction | None = None
    flow_response: JSONObject | None = None
    """`nfm_reply.response_json`, decoded (an empty mapping if it was not valid JSON)."""
    order: JSONObject | None = None
    system: JSONObject | None = None
    context: ReplyContext | None = None
    referral: JSONObject | None = None
    """Click-to-WhatsApp ad that started the conversation."""
    errors: tuple[ErrorDetail, ...] = ()
    raw: JSONObject = field(default_factory=dict, repr=False, compare=False)

    @property
    def profile_name(self) -> str | None:
        return self.contact.profile_name if self.contact else None

    @property
    def username(self) -> str | None:
        return self.contact.username if self.contact else None

    @property
    def conversation_hint(self) -> str:
        """The conversation before identity resolution: the group, else the person who wrote.

        Used to keep one conversation's messages in order (and as the `sender_id` when no
        identity store is configured).
        """
        return self.group_id or self.sender


@dataclass(frozen=True, slots=True)
class StatusUpdate:
    """A delivery status of a message the business sent: sent, delivered, read, failed, played.

    https://developers.facebook.com/docs/whatsapp/cloud-api/webhooks/components#statuses-object
    """

    message_id: str
    status: str
    recipient_id: str | None
    """`recipient_id` (a phone number, or the group id for a group message), else
    `recipient_user_id` (a BSUID, for a user known only by it)."""
    business: BusinessNumber
    timestamp: int | None = None
    errors: tuple[ErrorDetail, ...] = ()
    conversation: JSONObject | None = None
    pricing: JSONObject | None = None
    biz_opaque_callback_data: str | None = None
    recipient_user_id: str | None = None
    recipient_type: str | None = None
    """"group" for a message sent to a group (Meta leaves it out for one person)."""
    recipient_participant_id: str | None = None
    """For a group: the member this status is about."""
    pricing_category: str | None = None
    """`pricing.category` (marketing, utility, authentication, service, ...), per-message pricing
    since 2025-07-01; `pricing` keeps the whole object."""
    pricing_model: str | None = None
    """`pricing.pricing_model`: "PMP" (per message) or "CBP" (before 2025-07-01)."""
    billable: bool | None = None
    """`pricing.billable` (Meta plans to retire it; None when absent)."""
    raw: JSONObject = field(default_factory=dict, repr=False, compare=False)

    @property
    def failed(self) -> bool:
        return self.status == "failed"


@dataclass(frozen=True, slots=True)
class WebhookErrors:
    """Errors reported at the level of a change value (`value.errors`), not tied to one message."""

    business: BusinessNumber | None
    errors: tuple[ErrorDetail, ...]
    raw: JSONObject = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class SkippedChange:
    """Something well-formed that is not a message or a status: recognised and ignored.

    For example template status updates, account updates, message echoes, or a webhook for
    another product (`object` other than `whatsapp_business_account`).
    """

    object: str | None
    field: str | None
    reason: str
    # `dataclasses.field`: the attribute `field` above shadows the bare name for type checkers.
    raw: JSONObject = dataclasses.field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class UserPreference:
    """One item of a `user_preferences` webhook: a user stopped or resumed marketing messages.

    https://developers.facebook.com/documentation/business-messaging/whatsapp/webhooks/reference/user_preferences
    """

    business: BusinessNumber
    wa_id: str | None
    user_id: str | None
    category: str | None
    """"marketing_messages" today."""
    value: str | None
    """"stop" or "resume"."""
    detail: str | None = None
    timestamp: int | None = None
    raw: JSONObject = dataclasses.field(default_factory=dict, repr=False, compare=False)

    @property
    def opted_out(self) -> bool:
        return (self.value or "").lower() == "stop"


@dataclass(frozen=True, slots=True)
class PlatformEvent:
    """A change the channel recognises and never hands to the bot: offered to the event hook.

    `field` says which: the group webhooks (`group_lifecycle_update`,
    `group_participants_update`, `group_settings_update`, `group_status_update`), `standby`
    (Meta's Business Agent holds the conversation), `messaging_handovers`, `calls`.
    `group_id` is set where the change names one group.
    """

    field: str
    business: BusinessNumber | None
    group_id: str | None = None
    raw: JSONObject = dataclasses.field(default_factory=dict, repr=False, compare=False)


Event = (
    InboundMessage | StatusUpdate | WebhookErrors | SkippedChange | UserPreference | PlatformEvent
)
