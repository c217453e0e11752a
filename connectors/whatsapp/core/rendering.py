"""A Rasa bot message dict -> the WhatsApp Cloud API message bodies that show it.

Rasa hands a channel one dict per bot utterance (`text`, `buttons`, `quick_replies`, `image`,
`attachment`, `elements`, `custom`, plus keys such as `utter_action`, `model_id` or `timestamp`
that we ignore). `render_bot_message` turns it into complete bodies for
`POST /{phone_number_id}/messages`, in Rasa's own dispatch order (`OutputChannel.send_response`):
the text with its buttons or quick replies (quick replies win, as in Rasa), then `custom`,
`image`, `attachment` and `elements`.

Meta's limits are applied here, with a warning in the log, and never at the cost of content:

- The bot's text is never cut. What does not fit a text message (4096) is split into several;
  what does not fit an interactive body or a caption (1024) goes out first as text messages.
- Options are never dropped: 1-3 buttons become reply buttons, 4-10 a list, more than 10 several
  lists of up to 10 rows, and a button with a `url` a CTA URL message (its body is the text, or
  the button's title when the text went with an earlier message). Titles are shortened with
  an ellipsis and kept unique; in a list the full title goes in the row description.
- A payload is returned to the bot as the reply id, so it is never changed. If payloads cannot
  all be ids (empty, duplicated, or longer than 256 characters for buttons or 200 for list rows),
  the options go out as a numbered text menu ("1. Title") instead, and a warning is logged: the
  user then answers with text, which the bot's NLU has to understand.
"""

import json
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import unquote, urlsplit

from . import builders, defaults, limits
from .builders import Body
from .textfit import split_tail, split_text, text_length

logger = logging.getLogger(__name__)

_URL = re.compile(r"\bhttps?://\S", re.IGNORECASE)
_MEDIA_ID = re.compile(r"[0-9]+")
_MEDIA_TYPES = frozenset({"image", "video", "audio", "document", "sticker"})
_NO_CAPTION = frozenset({"audio", "sticker"})
_EXTENSION_TYPES = {
    **dict.fromkeys(("jpg", "jpeg", "png"), "image"),
    **dict.fromkeys(("mp4", "3gp", "3gpp"), "video"),
    **dict.fromkeys(("aac", "amr", "mp3", "m4a", "ogg", "opus"), "audio"),
}
"""Extensions WhatsApp sends as image, video or audio; anything else goes as a document."""


@dataclass(frozen=True, slots=True)
class RenderOptions:
    """Wording the renderer adds when Meta needs text the bot did not give."""

    list_button_label: str = defaults.LIST_BUTTON_LABEL
    """The button that opens a list (at most 20 characters, fitted)."""
    empty_body: str = defaults.EMPTY_BODY
    """The body of buttons sent without text: Meta requires a non-empty body."""
    more_options_body: str = defaults.MORE_OPTIONS_BODY
    """The body of the second and later lists when there are more than 10 options."""

    def __post_init__(self) -> None:
        if not self.list_button_label.strip():
            raise ValueError("list_button_label cannot be blank")
        try:
            more = self.more_options_body.format(index=10, total=10)
        except (KeyError, IndexError, ValueError) as error:
            raise ValueError(
                "more_options_body may only use the {index} and {total} placeholders"
            ) from error
        for name, value in (("empty_body", self.empty_body), ("more_options_body", more)):
            if not value.strip() or text_length(value) > limits.INTERACTIVE_BODY:
                raise ValueError(f"{name} must be 1 to {limits.INTERACTIVE_BODY} characters")


@dataclass(frozen=True, slots=True)
class _Choice:
    """A Rasa button or quick reply with a payload: a reply button or a list row."""

    title: str
    payload: str


@dataclass(frozen=True, slots=True)
class _Link:
    """A Rasa button with a `url`: a CTA URL message."""

    title: str
    url: str


def render_bot_message(
    message: Mapping[str, Any], *, to: str, options: RenderOptions | None = None
) -> list[Body]:
    """Turn one Rasa bot message into the Cloud API bodies that show it, addressed to `to`.

    Unknown keys are ignored and any value may be None. Malformed parts (a button that is not a
    dict, an image that is not a URL) are skipped with a warning; a `custom` object that is not a
    Cloud API message is sent as JSON text. Nothing is dropped silently.
    """
    if not isinstance(message, Mapping):
        logger.warning("ignoring a bot message that is not a dict: %r", message)
        return []
    return _render(message, _Renderer(to, options or RenderOptions()))


def render_group_message(
    message: Mapping[str, Any], *, to: str, options: RenderOptions | None = None
) -> tuple[list[Body], list[str]]:
    """Render for a group (`to` is the group id): no interactive messages, see the module doc.

    Returns the bodies and the payloads of the last numbered menu among them (empty if none).
    """
    if not isinstance(message, Mapping):
        logger.warning("ignoring a bot message that is not a dict: %r", message)
        return [], []
    renderer = _Renderer(to, options or RenderOptions(), group=True)
    bodies = _render(message, renderer)
    for body in bodies:
        body.pop("recipient", None)
        body["recipient_type"] = "group"
        body["to"] = to
    return bodies, renderer.menu


def _render(message: Mapping[str, Any], renderer: "_Renderer") -> list[Body]:
    text = _as_text(message.get("text"))
    quick_replies, buttons = message.get("quick_replies"), message.get("buttons")
    if quick_replies and buttons:
        logger.warning("both quick_replies and buttons given: buttons ignored, as Rasa does")
    parts: list[tuple[str, Callable[[], list[Body]]]] = [
        ("text", lambda: renderer.with_buttons(text, quick_replies or buttons))
        if quick_replies or buttons
        else ("text", lambda: renderer.texts(text)),
        ("custom", lambda: renderer.custom(message["custom"])),
        ("image", lambda: renderer.attachment(message["image"], default_type="image")),
        ("attachment", lambda: renderer.attachment(message["attachment"], default_type=None)),
        ("elements", lambda: renderer.elements(message["elements"])),
    ]
    bodies: list[Body] = []
    for key, render in parts:
        if key != "text" and not message.get(key):
            continue
        try:
            bodies += render()
        except Exception:
            # One malformed part must not cost the others, nor (raised inside Rasa's output
            # channel) the whole conversation turn.
            logger.exception("Could not render the %r of a bot message; skipped: %r", key, message)
    return bodies


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(value, ensure_ascii=False, default=str)


def _is_cloud_message(value: Any) -> bool:
    """Whether `value` looks like a Cloud API message: a `type` and the object it names."""
    if not isinstance(value, Mapping):
        return False
    kind = value.get("type")
    return isinstance(kind, str) and bool(kind) and kind in value


def _guess_type(link: str) -> str:
    extension = PurePosixPath(urlsplit(link).path).suffix.lower().lstrip(".")
    return _EXTENSION_TYPES.get(extension, "document")


def _filename(link: str) -> str | None:
    name = unquote(PurePosixPath(urlsplit(link).path).name).strip()
    return name or None


def _parse_buttons(raw: Any) -> tuple[list[_Choice], list[_Link]]:
    """Rasa buttons (`{title, payload}` or `{title, url, type: web_url}`) -> choices and links."""
    if not isinstance(raw, Sequence) or isinstance(raw, (str, bytes)):
        logger.warning("ignoring buttons that are not a list: %r", raw)
        return [], []
    choices: list[_Choice] = []
    links: list[_Link] = []
    for button in raw:
        if not isinstance(button, Mapping):
            logger.warning("ignoring a button that is not a dict: %r", button)
            continue
        title = _as_text(button.get("title")).strip()
        url = button.get("url")
        if isinstance(url, str) and url.strip():
            links.append(_Link(title or url.strip(), url.strip()))
            continue
        raw_payload = _as_text(button.get("payload"))
        payload = raw_payload.strip()
        if payload != raw_payload:
            logger.warning("button payload %r sent without its outer whitespace", raw_payload)
        if not payload and not title:
            logger.warning("ignoring a button with neither title nor payload: %r", button)
            continue
        # A button without payload answers with its title; one without title shows its payload.
        choices.append(_Choice(title or payload, payload or title))
    return choices, links


def _ids_fit(payloads: Sequence[str], limit: int) -> bool:
    return len(set(payloads)) == len(payloads) and all(
        payload and text_length(payload) <= limit for payload in payloads
    )


def _description(title: str) -> str | None:
    """The full title of a list row, when the row title has to be shortened."""
    return title if text_length(title) > limits.LIST_ROW_TITLE else None


class _Renderer:
    """The parts of one render call that need the recipient and the options."""

    __slots__ = ("group", "menu", "options", "to")

    def __init__(self, to: str, options: RenderOptions, *, group: bool = False) -> None:
        builders.address(to)  # a blank recipient is a clear error, before anything is built
        self.to = to
        self.options = options
        self.group = group
        """Render for a group: no interactive messages."""
        self.menu: list[str] = []
        """The payloads of the last numbered menu rendered, in order."""

    def texts(self, text: str) -> list[Body]:
        """Text messages, split at 4096 characters; each previews its first http(s) URL."""
        pieces = split_text(text, limits.TEXT_BODY)
        if len(pieces) > 1:
            logger.warning(
                "text of %d characters sent as %d messages", text_length(text), len(pieces)
            )
        return [
            builders.text(piece, preview_url=bool(_URL.search(piece)), to=self.to)
            for piece in pieces
        ]

    def lead_and_body(
        self, text: str, limit: int = limits.INTERACTIVE_BODY
    ) -> tuple[list[Body], str]:
        """Text messages to send first, and the last part of `text` that fits a `limit` field."""
        head, tail = split_tail(text, limit)
        if not tail:
            return [], self.options.empty_body
        if head:
            logger.warning(
                "text over the %d-character limit of its field: the first part goes as text", limit
            )
        return self.texts(head), tail

    def with_buttons(self, text: str, raw_buttons: Any, image_url: str | None = None) -> list[Body]:
        """Text with Rasa buttons: reply buttons, lists, CTA URL messages or a numbered menu."""
        choices, links = _parse_buttons(raw_buttons)
        if not choices and not links:
            return self.media_or_text(text, image_url)
        if self.group:
            return self.group_menu(text, choices, links, image_url)
        bodies: list[Body] = []
        header: dict[str, Any] | None = None
        if image_url is not None:
            if choices and not self._as_reply_buttons(choices):
                bodies += self.media("image", link=image_url)  # list headers can only be text
            else:
                header = builders.media_header("image", link=image_url)
        text_used = False
        if choices:
            bodies += self.choices(text, choices, header)
            text_used, header = True, None
        for link in links:
            # The text goes with the first message; later links (or all, without text) show
            # their own title as the body.
            said = text if text.strip() and not text_used else link.title
            lead, body = self.lead_and_body(said)
            bodies += lead
            bodies.append(builders.cta_url(body, link.title, link.url, header=header, to=self.to))
            text_used, header = True, None
        return bodies

    def _as_reply_buttons(self, choices: Sequence[_Choice]) -> bool:
        return len(choices) <= limits.REPLY_BUTTONS_MAX and _ids_fit(
            [choice.payload for choice in choices], limits.REPLY_BUTTON_ID
        )

    def choices(
        self, text: str, choices: Sequence[_Choice], header: dict[str, Any] | None
    ) -> list[Body]:
        payloads = [choice.payload for choice in choices]
        if self._as_reply_buttons(choices):
            lead, body = self.lead_and_body(text)
            buttons = [(choice.payload, choice.title) for choice in choices]
            return [*lead, builders.reply_buttons(body, buttons, header=header, to=self.to)]
        if len(choices) <= limits.REPLY_BUTTONS_MAX or not _ids_fit(payloads, limits.LIST_ROW_ID):
            logger.warning(
                "button payloads cannot all be sent as ids (empty, duplicated or too long): "
                "sending the options as a numbered text menu instead: %r",
                payloads,
            )
            return self.numbered_menu(text, choices)
        return self.lists(text, choices)

    def lists(self, text: str, choices: Sequence[_Choice]) -> list[Body]:
        """One list per 10 options; the first carries the text, the others a short body."""
        size = limits.LIST_ROWS_MAX
        chunks = [choices[start : start + size] for start in range(0, len(choices), size)]
        if len(chunks) > 1:
            logger.warning(
                "%d options sent as %d lists of up to %d", len(choices), len(chunks), size
            )
        bodies, body = self.lead_and_body(text)
        for index, chunk in enumerate(chunks, start=1):
            if index > 1:
                body = self.options.more_options_body.format(index=index, total=len(chunks))
            rows = [(choice.payload, choice.title, _description(choice.title)) for choice in chunk]
            bodies.append(
                builders.list_message(
                    body, self.options.list_button_label, [(None, rows)], to=self.to
                )
            )
        return bodies

    def numbered_menu(self, text: str, choices: Sequence[_Choice]) -> list[Body]:
        menu = "\n".join(f"{number}. {choice.title}" for number, choice in enumerate(choices, 1))
        return self.texts(f"{text.rstrip()}\n\n{menu}" if text.strip() else menu)

    def group_menu(
        self,
        text: str,
        choices: Sequence[_Choice],
        links: Sequence[_Link],
        image_url: str | None = None,
    ) -> list[Body]:
        """Buttons in a group: the image first, then the text with numbered options and links."""
        bodies = self.media("image", link=image_url) if image_url is not None else []
        lines = [f"{number}. {choice.title}" for number, choice in enumerate(choices, 1)]
        lines += [
            f"{link.title}: {link.url}" if link.title and link.title != link.url else link.url
            for link in links
        ]
        said = text.rstrip()
        bodies += self.texts("\n\n".join(part for part in (said, "\n".join(lines)) if part))
        if choices:
            self.menu = [choice.payload for choice in choices]
        return bodies

    def group_interactive(self, item: Mapping[str, Any]) -> list[Body]:
        """A custom interactive object in a group: its text and options as a numbered menu."""
        interactive = item.get("interactive")
        interactive = interactive if isinstance(interactive, Mapping) else {}
        parts: list[str] = []
        for key in ("header", "body", "footer"):
            part = interactive.get(key)
            if isinstance(part, Mapping) and isinstance(part.get("text"), str):
                parts.append(part["text"])
        action = interactive.get("action")
        action = action if isinstance(action, Mapping) else {}
        choices: list[_Choice] = []
        for button in action.get("buttons") or []:
            reply = button.get("reply") if isinstance(button, Mapping) else None
            if isinstance(reply, Mapping) and isinstance(reply.get("id"), str):
                choices.append(_Choice(_as_text(reply.get("title")) or reply["id"], reply["id"]))
        for section in action.get("sections") or []:
            rows = section.get("rows") if isinstance(section, Mapping) else None
            for row in rows if isinstance(rows, list) else []:
                if isinstance(row, Mapping) and isinstance(row.get("id"), str):
                    choices.append(_Choice(_as_text(row.get("title")) or row["id"], row["id"]))
        links: list[_Link] = []
        parameters = action.get("parameters")
        if isinstance(parameters, Mapping) and isinstance(parameters.get("url"), str):
            links.append(_Link(_as_text(parameters.get("display_text")), parameters["url"]))
        logger.info("interactive message sent to a group as a numbered text menu")
        return self.group_menu("\n".join(parts), choices, links)

    def media_or_text(self, text: str, image_url: str | None) -> list[Body]:
        if image_url is not None:
            return self.media("image", link=image_url, caption=text)
        return self.texts(text)

    def media(
        self,
        kind: str,
        *,
        link: str | None = None,
        media_id: str | None = None,
        caption: str = "",
        filename: str | None = None,
    ) -> list[Body]:
        """A media message; a caption it cannot carry (or its excess) goes first as text."""
        bodies: list[Body] = []
        if kind in _NO_CAPTION:
            bodies += self.texts(caption)
            caption = ""
        lead: list[Body] = []
        fitted: str | None = None
        if caption.strip():
            lead, fitted = self.lead_and_body(caption, limits.CAPTION)
        bodies += lead
        common: dict[str, Any] = {"link": link, "media_id": media_id, "to": self.to}
        if kind == "image":
            bodies.append(builders.image(caption=fitted, **common))
        elif kind == "video":
            bodies.append(builders.video(caption=fitted, **common))
        elif kind == "document":
            bodies.append(builders.document(caption=fitted, filename=filename, **common))
        elif kind == "audio":
            bodies.append(builders.audio(**common))
        else:
            bodies.append(builders.sticker(**common))
        return bodies

    def attachment(self, value: Any, *, default_type: str | None) -> list[Body]:
        """Rasa `image` or `attachment`: a URL or media id string, or a dict.

        A dict may give `type`, `link` (or `url`, or Facebook-style `payload.url`), `id`,
        `caption` and `filename`. Without a type, the URL's extension picks image, video or
        audio, and anything else goes as a document.
        """
        if isinstance(value, str):
            value = {"link": value.strip()}
        if not isinstance(value, Mapping):
            logger.warning("ignoring media that is neither a URL nor a dict: %r", value)
            return []
        payload = value.get("payload")
        link = value.get("link") or value.get("url")
        if not link and isinstance(payload, Mapping):
            link = payload.get("url")
        media_id = value.get("id") or value.get("media_id")
        if not media_id and isinstance(link, str) and _MEDIA_ID.fullmatch(link):
            link, media_id = None, link
        if media_id:
            link = None
        elif not (isinstance(link, str) and link):
            logger.warning("ignoring media without a link or id: %r", value)
            return []
        kind = value.get("type")
        if kind not in _MEDIA_TYPES:
            kind = default_type or (_guess_type(link) if link else "document")
        filename = value.get("filename")
        if kind == "document" and not filename and link:
            filename = _filename(link)
        return self.media(
            kind,
            link=link,
            media_id=_as_text(media_id) if media_id else None,
            caption=_as_text(value.get("caption")),
            filename=_as_text(filename) if filename else None,
        )

    def custom(self, value: Any) -> list[Body]:
        """Cloud API message objects, completed and sent as given; anything else as JSON text."""
        bodies: list[Body] = []
        items = value if isinstance(value, list) else [value]
        for item in items:
            if self.group and _is_cloud_message(item) and item.get("type") == "interactive":
                bodies += self.group_interactive(item)
                continue
            if _is_cloud_message(item):
                bodies.append(builders.complete(item, self.to))
                continue
            logger.warning("custom payload is not a Cloud API message; sent as text: %r", item)
            bodies += self.texts(item if isinstance(item, str) else _as_text(item))
        return bodies

    def elements(self, value: Any) -> list[Body]:
        """A Rasa carousel: one message per element, its image as header or as the media."""
        if not isinstance(value, list):
            logger.warning("ignoring elements that are not a list: %r", value)
            return []
        bodies: list[Body] = []
        for element in value:
            if not isinstance(element, Mapping):
                logger.warning("ignoring an element that is not a dict: %r", element)
                continue
            parts = (_as_text(element.get(key)).strip() for key in ("title", "subtitle"))
            text = "\n".join(part for part in parts if part)
            image_url = element.get("image_url")
            image_url = (
                image_url.strip() if isinstance(image_url, str) and image_url.strip() else None
            )
            if element.get("buttons"):
                bodies += self.with_buttons(text, element["buttons"], image_url)
            elif image_url is not None or text:
                bodies += self.media_or_text(text, image_url)
            else:
                logger.warning("ignoring an element with no title, subtitle, image or buttons")
        return bodies
