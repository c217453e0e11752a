"""Meta-like validation of `POST /{version}/{phone_number_id}/messages` bodies.

This is deliberately independent of our renderer (`connectors/whatsapp/core/builders.py`): it
reads the body the way the Cloud API does and answers Meta's errors, so a renderer bug shows up as
the same error the real API would give. Only the numbers are shared
(`connectors/whatsapp/core/limits.py`).

Sources, per message type: https://developers.facebook.com/docs/whatsapp/cloud-api/messages
(text, media, location, contacts, interactive reply buttons, lists, CTA URL, location request,
reactions, templates) and mark-as-read / typing indicators
(https://developers.facebook.com/docs/whatsapp/cloud-api/typing-indicators).
Lengths are counted with `limits.length` (UTF-16 code units, an emoji counts 2), the same rule the
renderer uses: Meta does not say how it counts "characters", and that is the stricter reading (why,
in `limits.py`), so a length this module accepts is one Meta accepts however it counts.

Public, stable API (the whole suite uses it as its one message-validity oracle):
- `validate_request(body)`: a `ReadReceipt` or an `OutboundMessage`, or the `GraphError` Meta
  would answer (code, message, details, HTTP status);
- `message_problem(body)`: the same verdict as text, or None when the body is valid;
- `OutboundMessage`, `ReadReceipt`, and the sets `MESSAGE_TYPES`, `GROUP_TYPES`.
Rules that need the sandbox's state (unknown recipients, the 24-hour window, rate limits, read
receipts for group messages) are the Graph routes' (`graph.py`), not this module's.
"""

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from connectors.whatsapp.core import limits

from .config import BSUID
from .errors import GraphError, invalid_parameter, invalid_value, missing_parameter

MESSAGE_TYPES = frozenset(
    {
        "text",
        "image",
        "audio",
        "video",
        "document",
        "sticker",
        "location",
        "contacts",
        "interactive",
        "template",
        "reaction",
    }
)
MEDIA_TYPES = frozenset({"image", "audio", "video", "document", "sticker"})
GROUP_TYPES = frozenset({"text", "template"} | MEDIA_TYPES)
"""What a group takes (https://developers.facebook.com/docs/whatsapp/cloud-api/groups/
groups-messaging): no interactive, location, contacts or reaction messages. Meta's page names no
error code for a refused type; the sandbox answers 131009 (parameter value not valid), and Meta
reports unsupported group content in webhooks as 130501."""
CAPTIONED_MEDIA = frozenset({"image", "video", "document"})
INTERACTIVE_TYPES = frozenset(
    {
        "button",
        "list",
        "cta_url",
        "location_request_message",
        "flow",
        "product",
        "product_list",
        "catalog_message",
    }
)
HEADER_TYPES = frozenset({"text", "image", "video", "document"})
BIZ_OPAQUE_CALLBACK_DATA = 512
CONTACTS_MAX = 257
"""Meta's contacts page says up to 257 cards; its OpenAPI schema says 5. We take the page."""

_NOT_DIGIT = re.compile(r"[\s()+\-.]")
_URL = re.compile(r"https?://[^\s/$.?#][^\s]*", re.IGNORECASE)

JSON = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class ReadReceipt:
    """`{"status": "read", "message_id": ...}`, optionally with a typing indicator."""

    message_id: str
    typing_indicator: bool


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """A valid message body, with what the sandbox needs to deliver it.

    Exactly one way of addressing is set: `wa_id` (a phone number in `to`), `user_id` (a BSUID in
    `recipient`), `group_id` (`recipient_type: "group"`, `to: <group id>`), or
    `to_holds_user_id` (a BSUID put in `to`, which Meta accepts with a 200 and then silently
    drops: https://developers.facebook.com/docs/whatsapp/cloud-api/business-scoped-user-ids).
    """

    to: str
    """As given in the body (`to`, or `recipient`), for the `contacts[].input` of the answer."""
    wa_id: str | None
    type: str
    body: JSON
    reply_to: str | None
    callback_data: str | None
    user_id: str | None = None
    group_id: str | None = None
    to_holds_user_id: bool = False


def validate_request(body: object) -> ReadReceipt | OutboundMessage:
    """Check a messages-endpoint body as the Cloud API does; raise `GraphError` if Meta would."""
    if not isinstance(body, Mapping):
        raise invalid_parameter("The request body must be a JSON object")
    product = body.get("messaging_product")
    if product is None:
        raise missing_parameter("messaging_product")
    if product != "whatsapp":
        raise invalid_parameter("Param messaging_product must be 'whatsapp'")
    if "status" in body:
        return _read_receipt(body)
    return _message(body)


def _read_receipt(body: JSON) -> ReadReceipt:
    if body["status"] != "read":
        raise invalid_parameter("Param status must be 'read'")
    message_id = _string(body, "message_id", "message_id", required=True)
    typing = body.get("typing_indicator")
    if typing is not None:
        indicator = _object(typing, "typing_indicator")
        if indicator.get("type") != "text":
            raise invalid_parameter("Param typing_indicator['type'] must be 'text'")
    return ReadReceipt(message_id=message_id or "", typing_indicator=typing is not None)


def message_problem(body: object) -> str | None:
    """Why the Cloud API would refuse this messages-endpoint body, or None if it would take it.

    The text is the error Meta would answer ("(#100) Invalid parameter: Param text['body'] must be
    at most 4096 characters long (4097 given)"), for test assertions that name the problem.
    """
    try:
        validate_request(body)
    except GraphError as error:
        return str(error)
    return None


def _address(body: JSON) -> tuple[str, str | None, str | None, str | None, bool]:
    """(input, wa_id, user_id, group_id, to_holds_user_id) of a message body."""
    recipient_type = body.get("recipient_type", "individual")
    if recipient_type not in ("individual", "group"):
        raise invalid_parameter("Param recipient_type must be one of {individual, group}")
    to, recipient = body.get("to"), body.get("recipient")
    if to is not None and not isinstance(to, str):
        raise invalid_parameter("Param to must be a string")
    if recipient is not None and not isinstance(recipient, str):
        raise invalid_parameter("Param recipient must be a string")
    if recipient_type == "group":
        if recipient is not None:
            raise invalid_parameter("A group is addressed with `to: <group id>`, not `recipient`")
        if not to or not to.strip():
            raise missing_parameter("to")
        return to, None, None, to, False
    if to is not None and recipient is not None:
        # Meta's page does not say which one wins: the sandbox refuses the ambiguity.
        raise invalid_parameter("Use either `to` (a phone number) or `recipient` (a BSUID)")
    if recipient is not None:
        if not BSUID.fullmatch(recipient):
            raise invalid_parameter(
                f"Param recipient {recipient!r} is not a business-scoped user id"
            )
        return recipient, None, recipient, None, False
    if to is None:
        raise missing_parameter("to")
    if BSUID.fullmatch(to):
        return to, None, None, None, True  # accepted, and silently dropped (as Meta does)
    wa_id = _NOT_DIGIT.sub("", to)
    if not wa_id.isdigit() or not 7 <= len(wa_id) <= 15:
        raise invalid_parameter(f"Param to {to!r} is not a valid phone number")
    return to, wa_id, None, None, False


def _message(body: JSON) -> OutboundMessage:
    to, wa_id, user_id, group_id, to_holds_user_id = _address(body)
    kind = body.get("type", "text")
    if kind not in MESSAGE_TYPES:
        allowed = ", ".join(sorted(t.upper() for t in MESSAGE_TYPES))
        raise invalid_parameter(f"Param type must be one of {{{allowed}}} - got {kind!r}")
    if group_id is not None and kind not in GROUP_TYPES:
        raise invalid_value(
            f"Message type {kind} is not supported for groups: a group takes text, media and "
            "template messages only"
        )
    if kind not in body:
        raise missing_parameter(kind)
    if kind == "contacts":
        _contacts(_array(body[kind], kind), kind)
    else:
        _VALIDATORS[kind](_object(body[kind], kind), kind)
    reply_to = None
    if "context" in body:
        context = _object(body["context"], "context")
        reply_to = _string(context, "message_id", "context['message_id']", required=True)
    callback = _string(
        body,
        "biz_opaque_callback_data",
        "biz_opaque_callback_data",
        max_len=BIZ_OPAQUE_CALLBACK_DATA,
    )
    return OutboundMessage(
        to=to,
        wa_id=wa_id,
        type=kind,
        body=body,
        reply_to=reply_to,
        callback_data=callback,
        user_id=user_id,
        group_id=group_id,
        to_holds_user_id=to_holds_user_id,
    )


# --- helpers: Meta names a parameter like text['body'] or interactive['action']['buttons'][0]


def _path(parent: str, key: str | int) -> str:
    return f"{parent}[{key}]" if isinstance(key, int) else f"{parent}['{key}']"


def _object(value: object, path: str) -> JSON:
    if not isinstance(value, Mapping):
        raise invalid_parameter(f"Param {path} must be a JSON object")
    return value


def _array(value: object, path: str) -> Sequence[Any]:
    if not isinstance(value, list):
        raise invalid_parameter(f"Param {path} must be an array")
    return value


def _string(
    obj: JSON,
    key: str,
    path: str,
    *,
    required: bool = False,
    max_len: int | None = None,
    allow_empty: bool = False,
) -> str | None:
    value = obj.get(key)
    if value is None:
        if required:
            raise missing_parameter(path)
        return None
    if not isinstance(value, str):
        raise invalid_parameter(f"Param {path} must be a string")
    if not value.strip() and not allow_empty:
        if required:
            raise missing_parameter(path)
        raise invalid_parameter(f"Param {path} must not be empty")
    length = limits.length(value)
    if max_len is not None and length > max_len:
        raise invalid_parameter(
            f"Param {path} must be at most {max_len} characters long ({length} given)"
        )
    return value


def _url(obj: JSON, key: str, path: str, *, required: bool = False) -> str | None:
    value = _string(obj, key, path, required=required)
    if value is not None and not _URL.fullmatch(value.strip()):
        raise invalid_parameter(f"Param {path} must be a valid http or https URL")
    return value


def _number(obj: JSON, key: str, path: str, low: float, high: float) -> float:
    value = obj.get(key)
    if value is None:
        raise missing_parameter(path)
    try:
        number = float(value) if not isinstance(value, bool) else float("nan")
    except (TypeError, ValueError):
        number = float("nan")
    if not low <= number <= high:
        raise invalid_parameter(f"Param {path} must be a number between {low} and {high}")
    return number


# --- one validator per message type


def _text(text: JSON, path: str) -> None:
    _string(text, "body", _path(path, "body"), required=True, max_len=limits.TEXT_BODY)
    preview = text.get("preview_url")
    if preview is not None and not isinstance(preview, bool):
        raise invalid_parameter(f"Param {_path(path, 'preview_url')} must be a boolean")


def _media(media: JSON, kind: str) -> None:
    _media_object(media, kind, kind)
    if kind in CAPTIONED_MEDIA:
        _string(media, "caption", _path(kind, "caption"), max_len=limits.CAPTION)
    if kind == "document":
        _string(media, "filename", _path(kind, "filename"))


def _media_object(media: JSON, kind: str, path: str) -> None:
    """Exactly one of `id` (an uploaded media id) or `link` (an http/https URL)."""
    has_id, has_link = "id" in media, "link" in media
    if has_id and has_link:
        raise invalid_parameter(f"Param {path} must have either 'id' or 'link', not both")
    if not has_id and not has_link:
        raise missing_parameter(f"{_path(path, 'link')} or {_path(path, 'id')}")
    if has_id:
        _string(media, "id", _path(path, "id"), required=True)
    else:
        _url(media, "link", _path(path, "link"), required=True)


def _location(location: JSON, path: str) -> None:
    _number(location, "latitude", _path(path, "latitude"), -90, 90)
    _number(location, "longitude", _path(path, "longitude"), -180, 180)
    _string(location, "name", _path(path, "name"))
    _string(location, "address", _path(path, "address"))


def _contacts(cards: Sequence[Any], path: str) -> None:
    if not 1 <= len(cards) <= CONTACTS_MAX:
        raise invalid_value(f"Param {path} must have between 1 and {CONTACTS_MAX} contacts")
    for index, raw in enumerate(cards):
        card = _object(raw, _path(path, index))
        name = _object(card.get("name"), _path(_path(path, index), "name"))
        formatted = _path(_path(_path(path, index), "name"), "formatted_name")
        _string(name, "formatted_name", formatted, required=True)


def _reaction(reaction: JSON, path: str) -> None:
    _string(reaction, "message_id", _path(path, "message_id"), required=True)
    emoji = reaction.get("emoji")
    if emoji is None:
        raise missing_parameter(_path(path, "emoji"))
    if not isinstance(emoji, str):
        raise invalid_parameter(f"Param {_path(path, 'emoji')} must be a string")


def _template(template: JSON, path: str) -> None:
    _string(template, "name", _path(path, "name"), required=True, max_len=512)
    language = _object(template.get("language"), _path(path, "language"))
    _string(language, "code", _path(_path(path, "language"), "code"), required=True)
    components = template.get("components")
    if components is not None:
        for index, component in enumerate(_array(components, _path(path, "components"))):
            item = _object(component, _path(_path(path, "components"), index))
            _string(
                item, "type", _path(_path(_path(path, "components"), index), "type"), required=True
            )


def _interactive(interactive: JSON, path: str) -> None:
    kind = interactive.get("type")
    if kind is None:
        raise missing_parameter(_path(path, "type"))
    if kind not in INTERACTIVE_TYPES:
        allowed = ", ".join(sorted(INTERACTIVE_TYPES))
        raise invalid_parameter(f"Param {_path(path, 'type')} must be one of {{{allowed}}}")
    if kind not in ("product", "catalog_message") or "body" in interactive:
        body = _object(interactive.get("body"), _path(path, "body"))
        _string(
            body,
            "text",
            _path(_path(path, "body"), "text"),
            required=True,
            max_len=limits.INTERACTIVE_BODY,
        )
    _interactive_header(interactive, str(kind), path)
    if "footer" in interactive:
        footer = _object(interactive["footer"], _path(path, "footer"))
        _string(
            footer,
            "text",
            _path(_path(path, "footer"), "text"),
            required=True,
            max_len=limits.FOOTER_TEXT,
        )
    if "action" not in interactive:
        raise missing_parameter(_path(path, "action"))
    action = _object(interactive["action"], _path(path, "action"))
    check = _ACTIONS.get(str(kind))
    if check is not None:
        check(action, _path(path, "action"))


def _interactive_header(interactive: JSON, kind: str, path: str) -> None:
    if "header" not in interactive:
        return
    header_path = _path(path, "header")
    if kind == "location_request_message":
        raise invalid_parameter(f"Param {header_path} is not supported for {kind} messages")
    header = _object(interactive["header"], header_path)
    header_type = header.get("type")
    if header_type is None:
        raise missing_parameter(_path(header_path, "type"))
    if header_type not in HEADER_TYPES or (kind == "list" and header_type != "text"):
        allowed = "text" if kind == "list" else "text, image, video, document"
        raise invalid_parameter(f"Param {_path(header_path, 'type')} must be one of {{{allowed}}}")
    if header_type == "text":
        _string(
            header, "text", _path(header_path, "text"), required=True, max_len=limits.HEADER_TEXT
        )
    else:
        media = _object(header.get(header_type), _path(header_path, str(header_type)))
        _media_object(media, str(header_type), _path(header_path, str(header_type)))


def _buttons_action(action: JSON, path: str) -> None:
    buttons = _array(action.get("buttons"), _path(path, "buttons"))
    if not 1 <= len(buttons) <= limits.REPLY_BUTTONS_MAX:
        raise invalid_value(
            f"Invalid buttons count. Min allowed buttons: 1, "
            f"Max allowed buttons: {limits.REPLY_BUTTONS_MAX}"
        )
    ids: set[str] = set()
    titles: set[str] = set()
    for index, raw in enumerate(buttons):
        button_path = _path(_path(path, "buttons"), index)
        button = _object(raw, button_path)
        if button.get("type") != "reply":
            raise invalid_parameter(f"Param {_path(button_path, 'type')} must be 'reply'")
        reply = _object(button.get("reply"), _path(button_path, "reply"))
        reply_path = _path(button_path, "reply")
        button_id = (
            _string(
                reply, "id", _path(reply_path, "id"), required=True, max_len=limits.REPLY_BUTTON_ID
            )
            or ""
        )
        title = (
            _string(
                reply,
                "title",
                _path(reply_path, "title"),
                required=True,
                max_len=limits.REPLY_BUTTON_TITLE,
            )
            or ""
        )
        if button_id != button_id.strip():
            raise invalid_parameter(
                f"Param {_path(reply_path, 'id')} must not have leading or trailing spaces"
            )
        if button_id in ids:
            raise invalid_value(f"Button ids must be unique: {button_id!r} is used twice")
        if title in titles:
            raise invalid_value(f"Button titles must be unique: {title!r} is used twice")
        ids.add(button_id)
        titles.add(title)


def _list_action(action: JSON, path: str) -> None:
    _string(
        action, "button", _path(path, "button"), required=True, max_len=limits.LIST_BUTTON_LABEL
    )
    sections_path = _path(path, "sections")
    sections = _array(action.get("sections"), sections_path)
    if not 1 <= len(sections) <= limits.LIST_SECTIONS_MAX:
        raise invalid_value(
            f"Invalid sections count. Min allowed sections: 1, "
            f"Max allowed sections: {limits.LIST_SECTIONS_MAX}"
        )
    row_ids: set[str] = set()
    total = 0
    for index, raw in enumerate(sections):
        section_path = _path(sections_path, index)
        section = _object(raw, section_path)
        _string(
            section,
            "title",
            _path(section_path, "title"),
            required=len(sections) > 1,
            max_len=limits.LIST_SECTION_TITLE,
        )
        rows = _array(section.get("rows"), _path(section_path, "rows"))
        if not rows:
            raise invalid_value(f"Param {_path(section_path, 'rows')} must have at least one row")
        total += len(rows)
        for row_index, raw_row in enumerate(rows):
            row_path = _path(_path(section_path, "rows"), row_index)
            row = _object(raw_row, row_path)
            row_id = (
                _string(row, "id", _path(row_path, "id"), required=True, max_len=limits.LIST_ROW_ID)
                or ""
            )
            _string(
                row, "title", _path(row_path, "title"), required=True, max_len=limits.LIST_ROW_TITLE
            )
            _string(
                row,
                "description",
                _path(row_path, "description"),
                max_len=limits.LIST_ROW_DESCRIPTION,
            )
            if row_id in row_ids:
                raise invalid_value(f"Row ids must be unique: {row_id!r} is used twice")
            row_ids.add(row_id)
    if total > limits.LIST_ROWS_MAX:
        raise invalid_value(f"Total row count exceed max allowed count: {limits.LIST_ROWS_MAX}")


def _cta_url_action(action: JSON, path: str) -> None:
    if action.get("name") != "cta_url":
        raise invalid_parameter(f"Param {_path(path, 'name')} must be 'cta_url'")
    parameters_path = _path(path, "parameters")
    parameters = _object(action.get("parameters"), parameters_path)
    _string(
        parameters,
        "display_text",
        _path(parameters_path, "display_text"),
        required=True,
        max_len=limits.CTA_DISPLAY_TEXT,
    )
    _url(parameters, "url", _path(parameters_path, "url"), required=True)


def _location_request_action(action: JSON, path: str) -> None:
    if action.get("name") != "send_location":
        raise invalid_parameter(f"Param {_path(path, 'name')} must be 'send_location'")


def _flow_action(action: JSON, path: str) -> None:
    if action.get("name") != "flow":
        raise invalid_parameter(f"Param {_path(path, 'name')} must be 'flow'")
    _object(action.get("parameters"), _path(path, "parameters"))


_ACTIONS: dict[str, Callable[[JSON, str], None]] = {
    "button": _buttons_action,
    "list": _list_action,
    "cta_url": _cta_url_action,
    "location_request_message": _location_request_action,
    "flow": _flow_action,
}


_VALIDATORS: dict[str, Callable[[JSON, str], None]] = {
    "text": _text,
    "image": _media,
    "audio": _media,
    "video": _media,
    "document": _media,
    "sticker": _media,
    "location": _location,
    "interactive": _interactive,
    "template": _template,
    "reaction": _reaction,
}
