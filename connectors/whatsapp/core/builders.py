"""One function per WhatsApp Cloud API message body: plain dicts, no I/O.

Each builder returns the JSON body of `POST /{version}/{phone_number_id}/messages`
(https://developers.facebook.com/documentation/business-messaging/whatsapp/reference/whatsapp-business-phone-number/message-api).
`to` is optional so that a Rasa custom action can build a body and let the channel address it
(`complete`); `reply_to` quotes an earlier message (`context.message_id`).

Builders apply Meta's limits (`limits.py`) so that the Graph API never rejects a body for a length
or a count we could have known:

- labels (button and row titles, row descriptions, section titles, the list button, CTA display
  text) are shortened with an ellipsis, kept unique where Meta requires it, and a warning is logged;
- anything that cannot be shortened without losing content (a body, caption, header or footer over
  its limit, an id over its limit, too many or too few buttons or rows) raises `MessageLimitError`.
"""

import copy
import logging
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from . import limits
from .textfit import fit_label, text_length, unique_labels

logger = logging.getLogger(__name__)

_BUSINESS_SCOPED_USER_ID = re.compile(r"[A-Z]{2}\.[0-9A-Za-z]+")

Body = dict[str, Any]
Header = str | Mapping[str, Any]
"""A text header, or a media header such as `media_header("image", link=...)`."""
Row = tuple[str, str, str | None]
"""A list row: `(id, title, description or None)`."""
Section = tuple[str | None, Sequence[Row]]
"""A list section: `(title or None, rows)`; the title is required with more than one section."""


class MessageLimitError(ValueError):
    """A body Meta would reject, and that cannot be fixed without losing content.

    Raised for a text over its limit, an id over its limit or duplicated, too many or too few
    buttons or rows, a missing required field: the caller must split or change the content.
    """


def address(to: str) -> dict[str, str]:
    """The addressee fields of a message body for `to`.

    A business-scoped user id ("US.13491208655302741918": a two-letter country code, a dot, an
    id) goes in `recipient`
    (https://developers.facebook.com/docs/whatsapp/business-scoped-user-ids); anything else (a
    phone number or WhatsApp id, or any other conversation id) in `to`. Meta gives `to`
    precedence when both are present, so only one is ever set.
    """
    to = to.strip()
    if not to:
        raise MessageLimitError("the recipient is empty")
    if _BUSINESS_SCOPED_USER_ID.fullmatch(to):
        return {"recipient": to}
    return {"to": to}


def complete(body: Mapping[str, Any], to: str) -> Body:
    """Return a copy of a custom message `body` with its envelope filled in.

    `messaging_product`, `recipient_type` and the addressee (`address`) are added only where the
    body does not set them; everything else is sent as given.
    """
    completed: Body = {"messaging_product": "whatsapp", "recipient_type": "individual"}
    if "to" not in body and "recipient" not in body:
        completed.update(address(to))
    completed.update(copy.deepcopy(dict(body)))
    return completed


def _message(kind: str, payload: Any, to: str | None, reply_to: str | None) -> Body:
    body: Body = {"messaging_product": "whatsapp", "recipient_type": "individual"}
    if to is not None:
        body.update(address(to))
    if reply_to is not None:
        body["context"] = {"message_id": _required(reply_to, "reply_to")}
    body["type"] = kind
    body[kind] = payload
    return body


def _required(value: str, what: str) -> str:
    if not value or not value.strip():
        raise MessageLimitError(f"{what} is required and cannot be blank")
    return value


def _text_within(value: str, limit: int, what: str) -> str:
    """Content that must be sent whole: blank or over `limit` raises."""
    _required(value, what)
    if text_length(value) > limit:
        raise MessageLimitError(
            f"{what} has {text_length(value)} characters, more than Meta's limit of {limit}; "
            "split it (rendering sends the excess as text messages first)"
        )
    return value


def _label(value: str, limit: int, what: str) -> str:
    """A label: shortened with an ellipsis (and a warning) when it is over `limit`."""
    _required(value, what)
    fitted = fit_label(value, limit)
    if fitted != value:
        logger.warning("%s shortened to fit %d characters: %r -> %r", what, limit, value, fitted)
    return fitted


def _labels(values: Sequence[str], limit: int, what: str) -> list[str]:
    """Labels that must be unique: fitted, then given a counter where they would collide."""
    for value in values:
        _required(value, what)
    fitted = unique_labels(values, limit)
    for value, label in zip(values, fitted, strict=True):
        if label != value:
            logger.warning(
                "%s changed to fit %d characters and stay unique: %r -> %r",
                what,
                limit,
                value,
                label,
            )
    return fitted


def _ids(values: Sequence[str], limit: int, what: str) -> list[str]:
    """Ids are returned to the bot as they are, so they are never changed: bad ones raise."""
    seen: set[str] = set()
    for value in values:
        _text_within(value, limit, what)
        if value != value.strip():
            raise MessageLimitError(f"{what} {value!r} has leading or trailing whitespace")
        if value in seen:
            raise MessageLimitError(f"{what} {value!r} is used twice; ids must be unique")
        seen.add(value)
    return list(values)


def _header(header: Header, *, text_only: bool = False) -> dict[str, Any]:
    if isinstance(header, str):
        return {"type": "text", "text": _text_within(header, limits.HEADER_TEXT, "header text")}
    kind = header.get("type")
    if text_only and kind != "text":
        raise MessageLimitError(f"this message takes a text header only, not {kind!r}")
    if kind == "text":
        _text_within(str(header.get("text") or ""), limits.HEADER_TEXT, "header text")
    elif kind not in ("image", "video", "document") or not isinstance(header.get(kind), Mapping):
        raise MessageLimitError(f"a header is text, image, video or document, not {header!r}")
    return copy.deepcopy(dict(header))


def _interactive(
    kind: str,
    body: str,
    action: dict[str, Any],
    header: Header | None,
    footer: str | None,
    *,
    text_only_header: bool = False,
) -> dict[str, Any]:
    interactive: dict[str, Any] = {"type": kind}
    if header is not None:
        interactive["header"] = _header(header, text_only=text_only_header)
    interactive["body"] = {"text": _text_within(body, limits.INTERACTIVE_BODY, "interactive body")}
    if footer is not None:
        interactive["footer"] = {"text": _text_within(footer, limits.FOOTER_TEXT, "footer text")}
    interactive["action"] = action
    return interactive


def media_header(
    media_type: str, *, link: str | None = None, media_id: str | None = None
) -> dict[str, Any]:
    """An image, video or document header for reply buttons and CTA URL messages."""
    if media_type not in ("image", "video", "document"):
        raise MessageLimitError(f"a media header is image, video or document, not {media_type!r}")
    return {"type": media_type, media_type: _media_object(link, media_id)}


def text(
    body: str, *, to: str | None = None, preview_url: bool = False, reply_to: str | None = None
) -> Body:
    """A text message (`text.body` at most 4096 characters; use `split_text` for longer ones).

    `preview_url` asks WhatsApp to preview the first http(s) URL in the body.
    https://developers.facebook.com/documentation/business-messaging/whatsapp/messages/text-messages
    """
    payload = {"preview_url": preview_url, "body": _text_within(body, limits.TEXT_BODY, "text")}
    return _message("text", payload, to, reply_to)


def reply_buttons(
    body: str,
    buttons: Sequence[tuple[str, str]],
    *,
    header: Header | None = None,
    footer: str | None = None,
    to: str | None = None,
    reply_to: str | None = None,
) -> Body:
    """An interactive message with 1 to 3 reply buttons, given as `(id, title)`.

    The tapped button's id comes back in the `button_reply` webhook. Titles are fitted to 20
    characters and kept unique; ids (at most 256, unique, no outer whitespace) never change.
    https://developers.facebook.com/documentation/business-messaging/whatsapp/messages/interactive-reply-buttons-messages
    """
    if not 1 <= len(buttons) <= limits.REPLY_BUTTONS_MAX:
        raise MessageLimitError(
            f"reply buttons take 1 to {limits.REPLY_BUTTONS_MAX} buttons, not {len(buttons)}; "
            "use a list message for more"
        )
    ids = _ids([id_ for id_, _ in buttons], limits.REPLY_BUTTON_ID, "reply button id")
    titles = _labels([title for _, title in buttons], limits.REPLY_BUTTON_TITLE, "button title")
    action = {
        "buttons": [
            {"type": "reply", "reply": {"id": id_, "title": title}}
            for id_, title in zip(ids, titles, strict=True)
        ]
    }
    return _message(
        "interactive", _interactive("button", body, action, header, footer), to, reply_to
    )


def list_message(
    body: str,
    button_label: str,
    sections: Sequence[Section],
    *,
    header: str | None = None,
    footer: str | None = None,
    to: str | None = None,
    reply_to: str | None = None,
) -> Body:
    """An interactive list: a button that opens up to 10 rows, in 1 to 10 sections.

    Rows are `(id, title, description or None)`; the chosen row's id comes back in the
    `list_reply` webhook. Row titles (24) are fitted and kept unique, descriptions (72), section
    titles (24) and the button label (20) are fitted; row ids (at most 200, unique) never change.
    The header can only be text.
    https://developers.facebook.com/documentation/business-messaging/whatsapp/messages/interactive-list-messages
    """
    if not 1 <= len(sections) <= limits.LIST_SECTIONS_MAX:
        raise MessageLimitError(
            f"a list takes 1 to {limits.LIST_SECTIONS_MAX} sections, not {len(sections)}"
        )
    rows = [row for _, section_rows in sections for row in section_rows]
    if not 1 <= len(rows) <= limits.LIST_ROWS_MAX:
        raise MessageLimitError(
            f"a list takes 1 to {limits.LIST_ROWS_MAX} rows in all, not {len(rows)}; "
            "send several lists"
        )
    if any(not section_rows for _, section_rows in sections):
        raise MessageLimitError("every list section needs at least one row")
    if len(sections) > 1 and any(not title for title, _ in sections):
        raise MessageLimitError("every section needs a title when a list has several sections")
    ids = iter(_ids([row[0] for row in rows], limits.LIST_ROW_ID, "list row id"))
    titles = iter(_labels([row[1] for row in rows], limits.LIST_ROW_TITLE, "list row title"))
    built_sections = []
    for section_title, section_rows in sections:
        built_rows = []
        for _, _, description in section_rows:
            row: dict[str, str] = {"id": next(ids), "title": next(titles)}
            if description:
                row["description"] = _label(
                    description, limits.LIST_ROW_DESCRIPTION, "list row description"
                )
            built_rows.append(row)
        section: dict[str, Any] = {}
        if section_title:
            section["title"] = _label(section_title, limits.LIST_SECTION_TITLE, "section title")
        section["rows"] = built_rows
        built_sections.append(section)
    action = {
        "button": _label(button_label, limits.LIST_BUTTON_LABEL, "list button label"),
        "sections": built_sections,
    }
    interactive = _interactive("list", body, action, header, footer, text_only_header=True)
    return _message("interactive", interactive, to, reply_to)


def cta_url(
    body: str,
    display_text: str,
    url: str,
    *,
    header: Header | None = None,
    footer: str | None = None,
    to: str | None = None,
    reply_to: str | None = None,
) -> Body:
    """An interactive message with one button that opens `url` (display text fitted to 20).

    https://developers.facebook.com/documentation/business-messaging/whatsapp/messages/interactive-cta-url-messages
    """
    action = {
        "name": "cta_url",
        "parameters": {
            "display_text": _label(display_text, limits.CTA_DISPLAY_TEXT, "CTA display text"),
            "url": _required(url, "CTA url"),
        },
    }
    return _message(
        "interactive", _interactive("cta_url", body, action, header, footer), to, reply_to
    )


def location_request(body: str, *, to: str | None = None, reply_to: str | None = None) -> Body:
    """An interactive message asking the user to share their location ("Send location" button).

    https://developers.facebook.com/documentation/business-messaging/whatsapp/messages/location-request-messages
    """
    interactive = {
        "type": "location_request_message",
        "body": {"text": _text_within(body, limits.INTERACTIVE_BODY, "interactive body")},
        "action": {"name": "send_location"},
    }
    return _message("interactive", interactive, to, reply_to)


def _media_object(link: str | None, media_id: str | None) -> dict[str, str]:
    if (link is None) == (media_id is None):
        raise MessageLimitError("media needs exactly one of link and media_id")
    if link is not None:
        return {"link": _required(link, "media link")}
    return {"id": _required(str(media_id), "media id")}


def _media(
    kind: str,
    link: str | None,
    media_id: str | None,
    to: str | None,
    reply_to: str | None,
    caption: str | None = None,
    filename: str | None = None,
) -> Body:
    payload: dict[str, str] = _media_object(link, media_id)
    if caption is not None:
        payload["caption"] = _text_within(caption, limits.CAPTION, "caption")
    if filename is not None:
        payload["filename"] = _required(filename, "filename")
    return _message(kind, payload, to, reply_to)


def image(
    *,
    link: str | None = None,
    media_id: str | None = None,
    caption: str | None = None,
    to: str | None = None,
    reply_to: str | None = None,
) -> Body:
    """An image by public `link` or uploaded `media_id` (JPEG/PNG, 5 MB; caption 1024).

    https://developers.facebook.com/documentation/business-messaging/whatsapp/messages/image-messages
    """
    return _media("image", link, media_id, to, reply_to, caption=caption)


def video(
    *,
    link: str | None = None,
    media_id: str | None = None,
    caption: str | None = None,
    to: str | None = None,
    reply_to: str | None = None,
) -> Body:
    """A video by `link` or `media_id` (MP4/3GPP, H.264 + AAC, 16 MB; caption 1024).

    https://developers.facebook.com/documentation/business-messaging/whatsapp/messages/video-messages
    """
    return _media("video", link, media_id, to, reply_to, caption=caption)


def audio(
    *,
    link: str | None = None,
    media_id: str | None = None,
    to: str | None = None,
    reply_to: str | None = None,
) -> Body:
    """An audio file by `link` or `media_id` (16 MB). Audio takes no caption.

    https://developers.facebook.com/documentation/business-messaging/whatsapp/messages/audio-messages
    """
    return _media("audio", link, media_id, to, reply_to)


def document(
    *,
    link: str | None = None,
    media_id: str | None = None,
    caption: str | None = None,
    filename: str | None = None,
    to: str | None = None,
    reply_to: str | None = None,
) -> Body:
    """A document by `link` or `media_id` (100 MB; caption 1024).

    `filename` is shown to the user, and its extension picks the file icon.
    https://developers.facebook.com/documentation/business-messaging/whatsapp/messages/document-messages
    """
    return _media("document", link, media_id, to, reply_to, caption=caption, filename=filename)


def sticker(
    *,
    link: str | None = None,
    media_id: str | None = None,
    to: str | None = None,
    reply_to: str | None = None,
) -> Body:
    """A WebP sticker by `link` or `media_id` (100 KB static, 500 KB animated); no caption.

    https://developers.facebook.com/documentation/business-messaging/whatsapp/messages/sticker-messages
    """
    return _media("sticker", link, media_id, to, reply_to)


def location(
    latitude: float,
    longitude: float,
    *,
    name: str | None = None,
    address: str | None = None,
    to: str | None = None,
    reply_to: str | None = None,
) -> Body:
    """A location pin, with an optional name and address.

    https://developers.facebook.com/documentation/business-messaging/whatsapp/messages/location-messages
    """
    if not (math.isfinite(latitude) and -90 <= latitude <= 90):
        raise MessageLimitError(f"latitude must be within -90..90, not {latitude}")
    if not (math.isfinite(longitude) and -180 <= longitude <= 180):
        raise MessageLimitError(f"longitude must be within -180..180, not {longitude}")
    payload: dict[str, Any] = {"latitude": latitude, "longitude": longitude}
    if name is not None:
        payload["name"] = name
    if address is not None:
        payload["address"] = address
    return _message("location", payload, to, reply_to)


def contacts(
    cards: Sequence[Mapping[str, Any]], *, to: str | None = None, reply_to: str | None = None
) -> Body:
    """Contact cards, each a Cloud API contact object with at least `name.formatted_name`.

    https://developers.facebook.com/documentation/business-messaging/whatsapp/messages/contacts-messages
    """
    if not cards:
        raise MessageLimitError("a contacts message needs at least one contact")
    for card in cards:
        name = card.get("name")
        if not isinstance(name, Mapping) or not name.get("formatted_name"):
            raise MessageLimitError(f"a contact needs name.formatted_name: {card!r}")
    return _message("contacts", [copy.deepcopy(dict(card)) for card in cards], to, reply_to)


def reaction(message_id: str, emoji: str, *, to: str | None = None) -> Body:
    """React to message `message_id` with `emoji`; an empty `emoji` removes the reaction.

    The target must be at most 30 days old and not itself a reaction, otherwise a webhook with
    error 131009 arrives instead.
    https://developers.facebook.com/documentation/business-messaging/whatsapp/messages/reaction-messages
    """
    payload = {"message_id": _required(message_id, "message_id"), "emoji": emoji}
    return _message("reaction", payload, to, None)


def template(
    name: str,
    language_code: str,
    *,
    components: Sequence[Mapping[str, Any]] | None = None,
    to: str | None = None,
    reply_to: str | None = None,
) -> Body:
    """An approved message template; the only kind allowed outside the 24-hour window.

    `components` carry the parameters, as Meta documents them.
    https://developers.facebook.com/documentation/business-messaging/whatsapp/messages/template-messages
    """
    payload: dict[str, Any] = {
        "name": _required(name, "template name"),
        "language": {"code": _required(language_code, "template language code")},
    }
    if components is not None:
        payload["components"] = [copy.deepcopy(dict(component)) for component in components]
    return _message("template", payload, to, reply_to)


def mark_as_read(message_id: str, *, typing_indicator: bool = False) -> Body:
    """The read receipt for an inbound message, optionally showing a typing indicator.

    It is posted to the same `/messages` endpoint; the indicator disappears when the business
    replies or after 25 seconds.
    https://developers.facebook.com/documentation/business-messaging/whatsapp/messages/mark-message-as-read
    https://developers.facebook.com/documentation/business-messaging/whatsapp/typing-indicators
    """
    body: Body = {
        "messaging_product": "whatsapp",
        "status": "read",
        "message_id": _required(message_id, "message_id"),
    }
    if typing_indicator:
        body["typing_indicator"] = {"type": "text"}
    return body
