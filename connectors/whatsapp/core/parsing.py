"""Webhook body -> typed events, for every entry, change, message, status and error it carries.

Meta batches: one POST may hold several `entry[]`, each with several `changes[]`, each with several
`messages[]`, `statuses[]` and `errors[]`
(https://developers.facebook.com/docs/whatsapp/cloud-api/webhooks/components). All of them are
parsed, never just the first.

Parsing is total over JSON: a body that is not a webhook at all (not UTF-8 JSON, not an object,
no `entry` list) raises `InvalidWebhook`; anything else never raises. A field of an unexpected
type (a string where an object is expected, `null`, a list where a string is...) is treated as
absent, a message or status without the ids it needs is skipped with a logged warning, and a type
Meta adds later parses as `MessageKind.UNKNOWN`. Meta keeps adding fields and types; a crash on a
shape we did not foresee would make Meta retry the same body for days.
"""

import json
import logging
import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from connectors.whatsapp.core.events import (
    MEDIA_KINDS,
    BusinessNumber,
    Contact,
    ErrorDetail,
    Event,
    InboundMessage,
    JSONObject,
    Location,
    Media,
    MessageKind,
    PlatformEvent,
    Reaction,
    Reply,
    ReplyContext,
    SkippedChange,
    StatusUpdate,
    UserPreference,
    WebhookErrors,
)

logger = logging.getLogger(__name__)

WHATSAPP_OBJECT = "whatsapp_business_account"
"""The `object` of every WhatsApp Business Account webhook; other products share the endpoint."""
MESSAGES_FIELD = "messages"
"""The only change `field` carrying user messages and delivery statuses.

Others (`message_template_status_update`, `account_update`, `smb_message_echoes`, ...) are
reported as `SkippedChange`:
https://developers.facebook.com/docs/whatsapp/cloud-api/webhooks/components#webhooks-fields
"""

USER_PREFERENCES_FIELD = "user_preferences"
STANDBY_FIELD = "standby"
NOTICE_FIELDS = frozenset(
    {
        "group_lifecycle_update",
        "group_participants_update",
        "group_settings_update",
        "group_status_update",
        STANDBY_FIELD,
        "messaging_handovers",
        "calls",
    }
)
"""Changes recognised and never handed to the bot: each becomes one `PlatformEvent`.

Groups: https://developers.facebook.com/documentation/business-messaging/whatsapp/groups
(webhooks for the Groups API); `standby` and `messaging_handovers`: Meta's Business Agent holds
the conversation (the standby webhooks page, 2026-08-04), so its messages are not ours to
answer; `calls`: the Calling API.
"""

_DIGITS = re.compile(r"[0-9]{1,20}")
_PHONE_NUMBER_ID = re.compile(r"[0-9]{1,32}")
"""A business phone number id as Meta gives it: ASCII digits (15 or 16 of them in practice).
It goes into Graph API URL paths, so nothing else is accepted."""
"""Timestamps and error codes as Meta sends them (strings of ASCII digits), bounded in length."""
_MAX_ID_INT = 10**30
# What `json.loads` makes, tested first: an exact type check is several times cheaper than the
# `Mapping` ABC's (about 15 checks per webhook); any other mapping still passes.
_OBJECT = (dict, Mapping)
_ARRAY = (list, tuple)
"""Ids sent as numbers are accepted up to this size (str() of a huge int raises in Python 3.10+)."""

_MESSAGE_KINDS: Mapping[str, MessageKind] = {
    "text": MessageKind.TEXT,
    "button": MessageKind.TEMPLATE_BUTTON,
    "image": MessageKind.IMAGE,
    "audio": MessageKind.AUDIO,
    "video": MessageKind.VIDEO,
    "document": MessageKind.DOCUMENT,
    "sticker": MessageKind.STICKER,
    "location": MessageKind.LOCATION,
    "contacts": MessageKind.CONTACTS,
    "reaction": MessageKind.REACTION,
    "order": MessageKind.ORDER,
    "system": MessageKind.SYSTEM,
    "unsupported": MessageKind.UNSUPPORTED,
    # The type Meta used before `unsupported`; it comes with the same `errors` (code 131051).
    "unknown": MessageKind.UNSUPPORTED,
    "edit": MessageKind.EDIT,
    "revoke": MessageKind.REVOKE,
}
_INTERACTIVE_KINDS: Mapping[str, MessageKind] = {
    "button_reply": MessageKind.BUTTON_REPLY,
    "list_reply": MessageKind.LIST_REPLY,
    "nfm_reply": MessageKind.FLOW_REPLY,
    "call_permission_reply": MessageKind.CALL_PERMISSION_REPLY,
}


class InvalidWebhook(ValueError):
    """The body is not a webhook at all: not UTF-8 JSON, not an object, or no `entry` list.

    `reason` says which, in words fit for a log line or a 400 response.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def parse_webhook_body(body: bytes, *, default_phone_number_id: str | None = None) -> list[Event]:
    """Decode a raw POST body (UTF-8 JSON) and parse it; see `parse_webhook`.

    Check the signature on these same bytes first: decoding and re-encoding changes them.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidWebhook(f"body is not UTF-8: {exc.reason} at byte {exc.start}") from None
    try:
        payload = _DECODER.decode(text)
    except RecursionError:
        raise InvalidWebhook("body is not JSON: nested too deeply") from None
    except ValueError as exc:
        # JSONDecodeError, NaN/Infinity, and integers over Python's digit limit are all ValueErrors.
        raise InvalidWebhook(f"body is not JSON: {exc}") from None
    return parse_webhook(payload, default_phone_number_id=default_phone_number_id)


def parse_webhook(payload: object, *, default_phone_number_id: str | None = None) -> list[Event]:
    """Turn a decoded webhook into events, in the order Meta sent them.

    Raises `InvalidWebhook` only when `payload` is not an object or has no `entry` list; a
    webhook for another product (`object` other than `whatsapp_business_account`) is one
    `SkippedChange`. Meta always sends `value.metadata.phone_number_id` and `field`; where a
    hand-made payload leaves them out, `default_phone_number_id` (the configured number) stands in
    for the first, and a change carrying messages or statuses is taken as a `messages` change.
    """
    if not isinstance(payload, _OBJECT):
        raise InvalidWebhook(f"webhook is not a JSON object but {_json_type(payload)}")
    entries = payload.get("entry")
    if not isinstance(entries, _ARRAY):
        raise InvalidWebhook("webhook has no 'entry' list")
    obj = _string(payload.get("object"))
    if obj != WHATSAPP_OBJECT:
        return [
            SkippedChange(
                object=obj,
                field=None,
                reason=f"object is {obj!r}, not {WHATSAPP_OBJECT!r}",
                raw=payload,
            )
        ]
    events: list[Event] = []
    for entry_index, entry in enumerate(entries):
        if not isinstance(entry, _OBJECT):
            logger.warning("webhook entry[%d] is not an object; ignored", entry_index)
            continue
        changes = entry.get("changes")
        if not isinstance(changes, _ARRAY):
            logger.warning("webhook entry[%d] has no 'changes' list; ignored", entry_index)
            continue
        for change_index, change in enumerate(changes):
            where = f"entry[{entry_index}].changes[{change_index}]"
            if not isinstance(change, _OBJECT):
                logger.warning("webhook %s is not an object; ignored", where)
                continue
            _parse_change(obj, change, where, default_phone_number_id, events.append)
    return events


def _parse_change(
    obj: str,
    change: JSONObject,
    where: str,
    default_phone_number_id: str | None,
    emit: Callable[[Event], None],
) -> None:
    """Emit the events of one change, in order (`emit`: the webhook's list's `append`, which
    costs less per change than a generator and `extend`)."""
    raw_field = change.get("field")
    value = change.get("value")
    if raw_field is not None and not isinstance(raw_field, str):
        # A number or a list is not a field name: reading it as `messages` would hand the bot
        # whatever the change holds.
        logger.warning(
            "webhook %s has a 'field' that is %s, not a string; ignored",
            where,
            _json_type(raw_field),
        )
        emit(SkippedChange(object=obj, field=None, reason="'field' is not a string", raw=change))
        return
    field = raw_field
    if (
        field is None
        and isinstance(value, _OBJECT)
        and ("messages" in value or "statuses" in value)
    ):
        # Tolerated: hand-made payloads (and some proxies) leave `field` out; Meta never does.
        field = MESSAGES_FIELD
    if field not in (MESSAGES_FIELD, USER_PREFERENCES_FIELD) and field not in NOTICE_FIELDS:
        emit(
            SkippedChange(
                object=obj,
                field=field,
                reason=f"field {field!r} is not handled",
                raw=change,
            )
        )
        return
    if not isinstance(value, _OBJECT):
        logger.warning("webhook %s has no 'value' object; ignored", where)
        return
    metadata = value.get("metadata")
    raw_number = metadata.get("phone_number_id") if isinstance(metadata, _OBJECT) else None
    business = _business(metadata)
    if raw_number is not None and business is None:
        # Present but not Meta's shape (digits): it would end up in a Graph API URL.
        logger.warning(
            "webhook %s has a malformed metadata.phone_number_id (%s); change ignored",
            where,
            _describe_value(raw_number),
        )
        emit(
            SkippedChange(
                object=obj,
                field=field,
                reason="value.metadata.phone_number_id is not a string of digits",
                raw=change,
            )
        )
        return
    if field in NOTICE_FIELDS:
        emit(PlatformEvent(field=field, business=business, group_id=_group_of(value), raw=change))
        return
    if field == USER_PREFERENCES_FIELD:
        if business is None and default_phone_number_id:
            business = BusinessNumber(phone_number_id=default_phone_number_id)
        if business is None:
            emit(_without_number(obj, field, change))
            return
        for item in _list(value.get(USER_PREFERENCES_FIELD)):
            preference = _preference(item, business)
            if preference is not None:
                emit(preference)
        return
    if business is None and default_phone_number_id:
        logger.warning(
            "webhook %s has no metadata.phone_number_id; using the configured one", where
        )
        business = BusinessNumber(phone_number_id=default_phone_number_id)
    messages = _list(value.get("messages"))
    statuses = _list(value.get("statuses"))
    if business is None and (messages or statuses):
        # Without the receiving number there is nothing to answer from: say so, do not guess.
        logger.warning(
            "webhook %s has no metadata.phone_number_id; %d message(s) and %d status(es) ignored",
            where,
            len(messages),
            len(statuses),
        )
        emit(_without_number(obj, field, change))
    elif business is not None:
        if messages:  # a status webhook has no contacts to read
            contacts = [_contact(raw) for raw in _list(value.get("contacts"))]
            known_contacts = [contact for contact in contacts if contact is not None]
            for index, raw_message in enumerate(messages):
                message = _message(raw_message, business, known_contacts, where, index)
                if message is not None:
                    emit(message)
        for index, raw_status in enumerate(statuses):
            status = _status(raw_status, business, where, index)
            if status is not None:
                emit(status)
    raw_errors = value.get("errors")
    errors = _errors(raw_errors) if raw_errors is not None else ()
    if errors:
        emit(WebhookErrors(business=business, errors=errors, raw=value))


def _without_number(obj: str, field: str, change: JSONObject) -> SkippedChange:
    """A change that says nothing of the number it is for: nothing can be answered from it."""
    return SkippedChange(
        object=obj, field=field, reason="value.metadata.phone_number_id is missing", raw=change
    )


# --- messages ---------------------------------------------------------------------------------


def _message(
    raw: object, business: BusinessNumber, contacts: Sequence[Contact], change: str, index: int
) -> InboundMessage | None:
    """`messages[index]` of the change at `change` (its place, for the log: built only there)."""
    if not isinstance(raw, _OBJECT):
        logger.warning("webhook %s.messages[%d] is not an object; ignored", change, index)
        return None
    get = raw.get
    message_id = get("id")
    wa_id = get("from")
    user_id = get("from_user_id")
    parent_user_id = get("from_parent_user_id")
    group_id = get("group_id")
    for value in (message_id, wa_id, user_id, parent_user_id, group_id):
        if value is not None and type(value) is not str and not isinstance(value, str):
            # Identity fields are strings in every payload Meta documents; an integer `from`
            # read as "123" would start a conversation with someone who does not exist.
            _wrong_identity_types(raw, change, index)
            return None
    # Each a string or None now; an empty one counts as absent.
    message_id, wa_id, user_id = message_id or None, wa_id or None, user_id or None
    type_ = _string(get("type")) or ""
    kind = _kind(type_, raw)
    type_object = raw.get(type_) if type_ else None
    sender = wa_id or user_id
    if sender is None and kind is MessageKind.SYSTEM and isinstance(type_object, _OBJECT):
        # `user_changed_user_id` system messages carry no `from`: the user is known by the new id.
        sender = _id_string(type_object.get("user_id")) or _id_string(type_object.get("wa_id"))
    if message_id is None or sender is None:
        logger.warning(
            "webhook %s has no %s; message ignored",
            f"{change}.messages[{index}]",
            "'id'" if message_id is None else "'from' nor 'from_user_id'",
        )
        return None
    contact = _match_contact(contacts, wa_id, user_id)
    fields: dict[str, Any] = {}
    if kind is MessageKind.TEXT and isinstance(type_object, _OBJECT):
        fields["text"] = _string(type_object.get("body"))
    elif kind in MEDIA_KINDS and isinstance(type_object, _OBJECT):
        media = _media(type_object)
        fields["media"] = media
        fields["text"] = media.caption
    elif kind is MessageKind.TEMPLATE_BUTTON and isinstance(type_object, _OBJECT):
        fields["reply"] = _reply(type_object, id_key="payload", title_key="text")
    elif kind in (MessageKind.BUTTON_REPLY, MessageKind.LIST_REPLY):
        fields["reply"] = _reply(_interactive_part(raw), id_key="id", title_key="title")
    elif kind is MessageKind.FLOW_REPLY:
        fields.update(_flow_reply(_interactive_part(raw)))
    elif kind is MessageKind.LOCATION and isinstance(type_object, _OBJECT):
        fields["location"] = _location(type_object)
    elif kind is MessageKind.CONTACTS:
        fields["contacts"] = tuple(card for card in _list(type_object) if isinstance(card, _OBJECT))
    elif kind is MessageKind.REACTION and isinstance(type_object, _OBJECT):
        fields["reaction"] = Reaction(
            message_id=_ident(type_object.get("message_id")),
            emoji=_string(type_object.get("emoji")),
        )
    elif kind is MessageKind.ORDER and isinstance(type_object, _OBJECT):
        fields["order"] = type_object
    elif kind is MessageKind.SYSTEM and isinstance(type_object, _OBJECT):
        fields["system"] = type_object
    elif kind is MessageKind.EDIT and isinstance(type_object, _OBJECT):
        fields.update(_edit(type_object))
    elif kind is MessageKind.REVOKE and isinstance(type_object, _OBJECT):
        fields["original_message_id"] = _id_string(type_object.get("original_message_id"))
    return InboundMessage(
        id=message_id,
        kind=kind,
        type=type_,
        sender=sender,
        business=business,
        timestamp=_timestamp(get("timestamp")),
        wa_id=wa_id or (contact.wa_id if contact else None),
        user_id=user_id or (contact.user_id if contact else None),
        parent_user_id=parent_user_id or (contact.parent_user_id if contact else None),
        group_id=group_id or None,
        contact=contact,
        context=_context(get("context")),
        referral=_object_or_none(get("referral")),
        errors=_errors(errors) if (errors := get("errors")) is not None else (),
        raw=raw,
        **fields,
    )


def _wrong_identity_types(raw: JSONObject, change: str, index: int) -> None:
    wrong = [
        key
        for key in ("id", "from", "from_user_id", "from_parent_user_id", "group_id")
        if raw.get(key) is not None and not isinstance(raw.get(key), str)
    ]
    logger.warning(
        "webhook %s has %s of the wrong JSON type; message ignored",
        f"{change}.messages[{index}]",
        ", ".join(f"'{key}' ({_json_type(raw.get(key))})" for key in wrong),
    )


def _edit(obj: JSONObject) -> dict[str, Any]:
    """`edit`: `original_message_id` and the new `message` (a text, or media with a caption)."""
    new = obj.get("message")
    text: str | None = None
    if isinstance(new, _OBJECT):
        new_type = _string(new.get("type")) or ""
        part = new.get(new_type) if new_type else None
        if isinstance(part, _OBJECT):
            text = _string(part.get("body")) if new_type == "text" else _string(part.get("caption"))
    return {"original_message_id": _id_string(obj.get("original_message_id")), "text": text}


def _kind(type_: str, raw: JSONObject) -> MessageKind:
    if type_ == "interactive":
        interactive = raw.get("interactive")
        subtype = _string(interactive.get("type")) if isinstance(interactive, _OBJECT) else None
        return _INTERACTIVE_KINDS.get(subtype or "", MessageKind.UNKNOWN)
    return _MESSAGE_KINDS.get(type_, MessageKind.UNKNOWN)


def _interactive_part(raw: JSONObject) -> JSONObject:
    """`interactive.<interactive.type>`: the reply object of a button, list or Flow answer."""
    interactive = raw.get("interactive")
    if not isinstance(interactive, _OBJECT):
        return {}
    subtype = _string(interactive.get("type"))
    part = interactive.get(subtype) if subtype else None
    return part if isinstance(part, _OBJECT) else {}


def _reply(obj: JSONObject, *, id_key: str, title_key: str) -> Reply | None:
    """The chosen option. Without an id the visible title stands in: it is all there is."""
    title = _string(obj.get(title_key))
    reply_id = _string(obj.get(id_key)) or title
    if reply_id is None:
        return None
    return Reply(id=reply_id, title=title, description=_string(obj.get("description")))


def _flow_reply(nfm: JSONObject) -> dict[str, Any]:
    """`nfm_reply`: `response_json` (a JSON string) decoded; `name` and `body` kept as a Reply.

    https://developers.facebook.com/docs/whatsapp/flows/guides/receiveflowresponse
    `reply.id` is the nfm name (`flow`, or `address_message` for address messages) and
    `reply.title`/`text` the body shown in the chat ("Sent").
    """
    response: JSONObject = {}
    response_json = nfm.get("response_json")
    if isinstance(response_json, str):
        try:
            decoded = json.loads(response_json)
        except (ValueError, RecursionError):
            logger.warning("nfm_reply.response_json is not valid JSON; kept as an empty mapping")
        else:
            if isinstance(decoded, _OBJECT):
                response = decoded
    elif isinstance(response_json, _OBJECT):
        response = response_json
    body = _string(nfm.get("body"))
    name = _string(nfm.get("name"))
    return {
        "flow_response": response,
        "text": body,
        "reply": Reply(id=name, title=body) if name else None,
    }


def _media(obj: JSONObject) -> Media:
    return Media(
        id=_ident(obj.get("id")),
        mime_type=_string(obj.get("mime_type")),
        sha256=_string(obj.get("sha256")),
        caption=_string(obj.get("caption")),
        filename=_string(obj.get("filename")),
        voice=obj.get("voice") is True,
        animated=obj.get("animated") is True,
        url=_string(obj.get("url")),
    )


def _location(obj: JSONObject) -> Location | None:
    latitude = _coordinate(obj.get("latitude"))
    longitude = _coordinate(obj.get("longitude"))
    if latitude is None or longitude is None:
        return None
    return Location(
        latitude=latitude,
        longitude=longitude,
        name=_string(obj.get("name")),
        address=_string(obj.get("address")),
        url=_string(obj.get("url")),
    )


def _context(value: object) -> ReplyContext | None:
    obj = _object_or_none(value)
    if obj is None:
        return None
    product = obj.get("referred_product")
    return ReplyContext(
        message_id=_ident(obj.get("id")),
        from_=_ident(obj.get("from")),
        forwarded=obj.get("forwarded") is True,
        frequently_forwarded=obj.get("frequently_forwarded") is True,
        referred_product=product if isinstance(product, _OBJECT) else None,
    )


def _contact(raw: object) -> Contact | None:
    if not isinstance(raw, _OBJECT):
        return None
    profile = raw.get("profile")
    name = _string(profile.get("name")) if isinstance(profile, _OBJECT) else None
    username = _string(profile.get("username")) if isinstance(profile, _OBJECT) else None
    return Contact(
        wa_id=_id_string(raw.get("wa_id")),
        user_id=_id_string(raw.get("user_id")),
        profile_name=name,
        parent_user_id=_id_string(raw.get("parent_user_id")),
        username=username or None,
        raw=raw,
    )


def _match_contact(
    contacts: Sequence[Contact], wa_id: str | None, user_id: str | None
) -> Contact | None:
    """The sender's `contacts[]` entry: matched by wa_id or user_id, else the only one there is."""
    for contact in contacts:
        if (wa_id is not None and wa_id in (contact.wa_id, contact.user_id)) or (
            user_id is not None and user_id in (contact.user_id, contact.wa_id)
        ):
            return contact
    return contacts[0] if len(contacts) == 1 else None


# --- statuses ---------------------------------------------------------------------------------


def _status(raw: object, business: BusinessNumber, change: str, index: int) -> StatusUpdate | None:
    """`statuses[index]` of the change at `change` (its place, for the log: built only there)."""
    if not isinstance(raw, _OBJECT):
        logger.warning("webhook %s.statuses[%d] is not an object; ignored", change, index)
        return None
    get = raw.get
    message_id = get("id")
    status = get("status")
    if (
        not isinstance(message_id, str)
        or not message_id
        or not isinstance(status, str)
        or not status
    ):
        message_id = message_id if isinstance(message_id, str) and message_id else None
        logger.warning(
            "webhook %s.statuses[%d] has no %s; status ignored",
            change,
            index,
            "'id'" if message_id is None else "'status'",
        )
        return None
    pricing = _object_or_none(get("pricing"))
    if pricing is not None:
        billable = pricing.get("billable")
        category = _string(pricing.get("category"))
        model = _string(pricing.get("pricing_model"))
    else:
        pricing = billable = category = model = None
    user_id = _id_string(get("recipient_user_id"))
    errors = get("errors")
    return StatusUpdate(
        message_id=message_id,
        status=status,
        recipient_id=_id_string(get("recipient_id")) or user_id,
        business=business,
        timestamp=_integer(get("timestamp")),
        errors=_errors(errors) if errors is not None else (),
        conversation=_object_or_none(get("conversation")),
        pricing=pricing,
        biz_opaque_callback_data=_string(get("biz_opaque_callback_data")),
        recipient_user_id=user_id,
        recipient_type=_string(get("recipient_type")),
        recipient_participant_id=_id_string(get("recipient_participant_id")),
        pricing_category=category,
        pricing_model=model,
        billable=billable if isinstance(billable, bool) else None,
        raw=raw,
    )


def _preference(raw: object, business: BusinessNumber) -> UserPreference | None:
    if not isinstance(raw, _OBJECT):
        return None
    return UserPreference(
        business=business,
        wa_id=_id_string(raw.get("wa_id")),
        user_id=_id_string(raw.get("user_id")),
        category=_string(raw.get("category")),
        value=_string(raw.get("value")),
        detail=_string(raw.get("detail")),
        timestamp=_timestamp(raw.get("timestamp")),
        raw=raw,
    )


def _group_of(value: JSONObject) -> str | None:
    """The group a group webhook is about: `group_id`, or that of its only `groups[]` item."""
    direct = _id_string(value.get("group_id"))
    if direct is not None:
        return direct
    groups = [item for item in _list(value.get("groups")) if isinstance(item, _OBJECT)]
    ids = {_id_string(item.get("group_id")) for item in groups} - {None}
    return ids.pop() if len(ids) == 1 else None


# --- shared pieces ----------------------------------------------------------------------------


def _business(metadata: object) -> BusinessNumber | None:
    if not isinstance(metadata, _OBJECT):
        return None
    phone_number_id = metadata.get("phone_number_id")
    if not isinstance(phone_number_id, str):
        return None
    display = _string(metadata.get("display_phone_number"))
    known = _BUSINESS_NUMBERS.get((phone_number_id, display))
    if known is not None:
        return known
    if not _PHONE_NUMBER_ID.fullmatch(phone_number_id):
        return None
    business = BusinessNumber(phone_number_id=phone_number_id, display_phone_number=display)
    if len(_BUSINESS_NUMBERS) >= 256:  # a process serves a handful of numbers
        _BUSINESS_NUMBERS.clear()
    _BUSINESS_NUMBERS[(phone_number_id, display)] = business
    return business


_BUSINESS_NUMBERS: dict[tuple[str, str | None], BusinessNumber] = {}
"""The numbers seen, shared by their events (frozen): one object less per queued message."""


def _errors(value: object) -> tuple[ErrorDetail, ...]:
    """An `errors` array. Meta puts the useful explanation in `error_data.details` (older
    payloads of the `unknown` type had it as a top-level `details`)."""
    details: list[ErrorDetail] = []
    for item in _list(value):
        if not isinstance(item, _OBJECT):
            continue
        error_data = item.get("error_data")
        explanation = (
            _string(error_data.get("details")) if isinstance(error_data, _OBJECT) else None
        )
        details.append(
            ErrorDetail(
                code=_integer(item.get("code")),
                title=_string(item.get("title")),
                message=_string(item.get("message")),
                details=explanation or _string(item.get("details")),
                href=_string(item.get("href")),
            )
        )
    return tuple(details)


def _timestamp(value: object) -> int | None:
    """Meta sends Unix seconds as a string ("1749416383"); anything not a whole number is None."""
    return _integer(value)


def _integer(value: object) -> int | None:
    if isinstance(value, str):
        if value.isascii() and value.isdigit() and len(value) <= 20:  # Meta's shape, no regex
            return int(value)
        stripped = value.strip()
        return int(stripped) if _DIGITS.fullmatch(stripped) else None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return None


def _coordinate(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:  # an int too large for a float
        return None
    return number if math.isfinite(number) else None


def _ident(value: object) -> str | None:
    """An id: a non-empty string, or a number sent where Meta documents a string."""
    if isinstance(value, str):
        return value or None
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) < _MAX_ID_INT:
        return str(value)
    return None


def _id_string(value: object) -> str | None:
    """An identity field (a message id, a phone number, a BSUID, a group id): a non-empty string.

    Unlike `_ident`, a number is not accepted: Meta sends these as strings, and a number where
    one belongs is a forged or broken payload, not a person.
    """
    return value if isinstance(value, str) and value else None


def _string(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _describe_value(value: object) -> str:
    """A short, log-safe description of a bad value (no 30 KB strings, no lone surrogates)."""
    if isinstance(value, str):
        return f"a string of {len(value)} characters"
    return _json_type(value)


def _object_or_none(value: object) -> JSONObject | None:
    """`value` if it is a JSON object, else None: at once for a dict or None (the usual values),
    which `isinstance(value, Mapping)` would send through the ABC machinery (0.4 us each)."""
    if type(value) is dict:
        return value
    if value is None:
        return None
    return value if isinstance(value, Mapping) else None


def _list(value: object) -> Sequence[object]:
    return value if isinstance(value, _ARRAY) else ()


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, _ARRAY):
        return "an array"
    return type(value).__name__


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not valid JSON")


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)
"""Built once: `json.loads(text, parse_constant=...)` builds a decoder and its scanner per call
(about 1.7 us of the 4.6 us a one-message webhook's decoding took)."""
