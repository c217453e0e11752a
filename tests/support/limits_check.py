"""An independent check of a Cloud API message body against every limit Meta documents.

Tests run every body the builders and the renderer produce through `problems`, so a body that the
Graph API would reject for a length, a count or a missing field fails the test that made it. The
lengths are measured in UTF-16 code units (emoji count 2), which is stricter than code points, so a
body that passes fits whichever way Meta counts. The numbers come from `limits.py`; the counting
and the rules are written again here on purpose, not imported from the code under test.
"""

from collections.abc import Mapping
from typing import Any

from connectors.whatsapp import limits

_MEDIA = ("image", "video", "audio", "document", "sticker")


def units(text: str) -> int:
    """Length in UTF-16 code units."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


class _Checker:
    def __init__(self) -> None:
        self.problems: list[str] = []

    def fail(self, message: str) -> None:
        self.problems.append(message)

    def string(self, value: Any, where: str, limit: int, *, required: bool = True) -> None:
        if value is None and not required:
            return
        if not isinstance(value, str):
            self.fail(f"{where}: expected a string, got {value!r}")
            return
        if not value.strip():
            self.fail(f"{where}: blank")
        if units(value) > limit:
            self.fail(f"{where}: {units(value)} characters, limit {limit}")

    def id_(self, value: Any, where: str, limit: int) -> None:
        self.string(value, where, limit)
        if isinstance(value, str) and value != value.strip():
            self.fail(f"{where}: leading or trailing whitespace in {value!r}")

    def unique(self, values: list[Any], where: str, *, fold: bool) -> None:
        keys = [str(v).strip().casefold() if fold else v for v in values]
        if len(set(keys)) != len(keys):
            self.fail(f"{where}: not unique: {values!r}")

    def envelope(self, body: Mapping[str, Any]) -> str | None:
        if body.get("messaging_product") != "whatsapp":
            self.fail("messaging_product must be 'whatsapp'")
        if body.get("recipient_type") != "individual":
            self.fail("recipient_type must be 'individual'")
        addressees = [key for key in ("to", "recipient") if key in body]
        if len(addressees) != 1:
            self.fail(f"exactly one of to/recipient expected, got {addressees}")
        for key in addressees:
            self.string(body[key], key, 1000)
        if "context" in body:
            context = body["context"]
            if not isinstance(context, Mapping):
                self.fail("context must be an object")
            else:
                self.string(context.get("message_id"), "context.message_id", 1000)
        kind = body.get("type")
        if not isinstance(kind, str) or not isinstance(body.get(kind), Mapping | list):
            self.fail(f"type {kind!r} without its object")
            return None
        return kind

    def media(self, kind: str, media: Mapping[str, Any]) -> None:
        if ("link" in media) == ("id" in media):
            self.fail(f"{kind}: exactly one of link and id")
        for key in ("link", "id"):
            if key in media:
                self.string(media[key], f"{kind}.{key}", 10_000)
        if "caption" in media:
            if kind in ("audio", "sticker"):
                self.fail(f"{kind} takes no caption")
            self.string(media["caption"], f"{kind}.caption", limits.CAPTION)
        if "filename" in media and kind != "document":
            self.fail(f"{kind} takes no filename")

    def header(self, header: Any, *, text_only: bool) -> None:
        if not isinstance(header, Mapping):
            self.fail("header must be an object")
            return
        kind = header.get("type")
        if kind == "text":
            self.string(header.get("text"), "header.text", limits.HEADER_TEXT)
        elif kind in ("image", "video", "document") and not text_only:
            media = header.get(kind)
            if isinstance(media, Mapping):
                self.media(kind, media)
            else:
                self.fail(f"header.{kind} missing")
        else:
            self.fail(f"header type {kind!r} not allowed here")

    def interactive(self, interactive: Mapping[str, Any]) -> None:
        kind = interactive.get("type")
        body = interactive.get("body")
        self.string(
            body.get("text") if isinstance(body, Mapping) else None,
            "interactive.body.text",
            limits.INTERACTIVE_BODY,
        )
        if "header" in interactive:
            if kind == "location_request_message":
                self.fail("location requests take no header")
            self.header(interactive["header"], text_only=kind == "list")
        if "footer" in interactive:
            footer = interactive["footer"]
            text = footer.get("text") if isinstance(footer, Mapping) else None
            self.string(text, "interactive.footer.text", limits.FOOTER_TEXT)
        action = interactive.get("action")
        if not isinstance(action, Mapping):
            self.fail("interactive.action missing")
            return
        if kind == "button":
            self.buttons(action)
        elif kind == "list":
            self.list_action(action)
        elif kind == "cta_url":
            if action.get("name") != "cta_url":
                self.fail("cta_url action.name must be 'cta_url'")
            parameters = action.get("parameters") or {}
            self.string(parameters.get("display_text"), "display_text", limits.CTA_DISPLAY_TEXT)
            self.string(parameters.get("url"), "cta url", 10_000)
        elif kind == "location_request_message":
            if action != {"name": "send_location"}:
                self.fail("location request action must be {'name': 'send_location'}")
        else:
            self.fail(f"unknown interactive type {kind!r}")

    def buttons(self, action: Mapping[str, Any]) -> None:
        buttons = action.get("buttons")
        if not isinstance(buttons, list) or not 1 <= len(buttons) <= limits.REPLY_BUTTONS_MAX:
            self.fail(f"1 to {limits.REPLY_BUTTONS_MAX} buttons expected: {buttons!r}")
            return
        ids, titles = [], []
        for button in buttons:
            reply = button.get("reply") or {}
            if button.get("type") != "reply":
                self.fail("button type must be 'reply'")
            self.id_(reply.get("id"), "reply.id", limits.REPLY_BUTTON_ID)
            self.string(reply.get("title"), "reply.title", limits.REPLY_BUTTON_TITLE)
            ids.append(reply.get("id"))
            titles.append(reply.get("title"))
        self.unique(ids, "reply ids", fold=False)
        self.unique(titles, "reply titles", fold=True)

    def list_action(self, action: Mapping[str, Any]) -> None:
        self.string(action.get("button"), "list button", limits.LIST_BUTTON_LABEL)
        sections = action.get("sections")
        if not isinstance(sections, list) or not 1 <= len(sections) <= limits.LIST_SECTIONS_MAX:
            self.fail(f"1 to {limits.LIST_SECTIONS_MAX} sections expected")
            return
        rows = [row for section in sections for row in section.get("rows") or []]
        if not 1 <= len(rows) <= limits.LIST_ROWS_MAX:
            self.fail(f"1 to {limits.LIST_ROWS_MAX} rows in all expected, got {len(rows)}")
        for section in sections:
            if not section.get("rows"):
                self.fail("a section without rows")
            title = section.get("title")
            required = len(sections) > 1
            self.string(title, "section.title", limits.LIST_SECTION_TITLE, required=required)
        for row in rows:
            self.id_(row.get("id"), "row.id", limits.LIST_ROW_ID)
            self.string(row.get("title"), "row.title", limits.LIST_ROW_TITLE)
            description = row.get("description")
            self.string(description, "row.description", limits.LIST_ROW_DESCRIPTION, required=False)
        self.unique([row.get("id") for row in rows], "row ids", fold=False)
        self.unique([row.get("title") for row in rows], "row titles", fold=True)

    def message(self, body: Mapping[str, Any]) -> None:
        kind = self.envelope(body)
        if kind is None:
            return
        payload = body[kind]
        if kind == "text":
            self.string(payload.get("body"), "text.body", limits.TEXT_BODY)
            if not isinstance(payload.get("preview_url", False), bool):
                self.fail("text.preview_url must be a boolean")
        elif kind in _MEDIA:
            self.media(kind, payload)
        elif kind == "interactive":
            self.interactive(payload)
        elif kind == "location":
            if not -90 <= payload.get("latitude", 999) <= 90:
                self.fail("latitude out of range")
            if not -180 <= payload.get("longitude", 999) <= 180:
                self.fail("longitude out of range")
        elif kind == "reaction":
            self.string(payload.get("message_id"), "reaction.message_id", 1000)
            if not isinstance(payload.get("emoji"), str):
                self.fail("reaction.emoji must be a string")
        elif kind == "template":
            self.string(payload.get("name"), "template.name", 1000)
            language = payload.get("language") or {}
            self.string(language.get("code"), "template.language.code", 100)
        elif kind == "contacts":
            if not payload:
                self.fail("no contacts")
            for card in payload:
                self.string(
                    (card.get("name") or {}).get("formatted_name"), "formatted_name", 10_000
                )


def problems(body: Mapping[str, Any]) -> list[str]:
    """Every way `body` breaks Meta's documented limits or required fields (empty if none)."""
    checker = _Checker()
    if body.get("status") == "read":
        checker.string(body.get("message_id"), "message_id", 1000)
        if body.get("messaging_product") != "whatsapp":
            checker.fail("messaging_product must be 'whatsapp'")
    else:
        checker.message(body)
    return checker.problems


def assert_within_limits(*bodies: Mapping[str, Any]) -> None:
    """Fail with every problem found in any of `bodies`."""
    found = {index: problems(body) for index, body in enumerate(bodies)}
    found = {index: issues for index, issues in found.items() if issues}
    assert not found, f"bodies over Meta's limits: {found} in {list(bodies)!r}"
