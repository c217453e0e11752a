"""Limits of the WhatsApp Cloud API, in characters or items, and how a "character" is counted.

`length` is the one counting rule of the project: the renderer (`textfit`, `builders`), the
sandbox's validation (`sandbox/validation.py`, the test suite's message-validity oracle) and the
tests all measure text with it. Meta gives its limits in "characters" without saying whether it
counts code points or UTF-16 code units, so `length` takes the stricter reading, UTF-16 units (an
emoji outside the Basic Multilingual Plane counts twice). A text that fits this count fits either
reading, so a length the sandbox accepts is one Meta accepts whichever way it counts; the price is
that a text made mostly of emoji is split a little earlier than Meta might require.

Every number comes from Meta's documentation; the renderer applies them so that the Graph API never
rejects a message for a length or a count we could have known. Sources:

- text: https://developers.facebook.com/docs/whatsapp/cloud-api/messages/text-messages
- reply buttons: https://developers.facebook.com/docs/whatsapp/cloud-api/messages/interactive-reply-buttons-messages
- lists: https://developers.facebook.com/docs/whatsapp/cloud-api/messages/interactive-list-messages
- CTA URL: https://developers.facebook.com/docs/whatsapp/cloud-api/messages/interactive-cta-url-messages
- media: https://developers.facebook.com/docs/whatsapp/cloud-api/reference/media
- webhooks: https://developers.facebook.com/docs/whatsapp/cloud-api/webhooks/overview
"""

from typing import Final


def length(text: str) -> int:
    """Length of `text` in UTF-16 code units, the unit every limit below is counted in.

    ASCII text (most bot answers) is counted without looking at each character; other text by
    encoding it (in C, 10x faster than a walk in Python for Portuguese button titles). A lone
    surrogate, which Python strings may hold, counts as one unit (`surrogatepass`).
    """
    if text.isascii():
        return len(text)
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


TEXT_BODY: Final = 4096
"""`text.body`."""

CAPTION: Final = 1024
"""`caption` of an image, video or document (audio and stickers take none)."""

INTERACTIVE_BODY: Final = 1024
"""`interactive.body.text`. Meta's list page says 4096, its OpenAPI schema 1024: we keep 1024."""

HEADER_TEXT: Final = 60
FOOTER_TEXT: Final = 60

REPLY_BUTTONS_MAX: Final = 3
REPLY_BUTTON_TITLE: Final = 20
REPLY_BUTTON_ID: Final = 256

LIST_ROWS_MAX: Final = 10
"""Rows across all sections together."""
LIST_SECTIONS_MAX: Final = 10
LIST_BUTTON_LABEL: Final = 20
LIST_SECTION_TITLE: Final = 24
LIST_ROW_TITLE: Final = 24
LIST_ROW_DESCRIPTION: Final = 72
LIST_ROW_ID: Final = 200

CTA_DISPLAY_TEXT: Final = 20

WEBHOOK_MAX_BODY_BYTES: Final = 3 * 1024 * 1024
"""Meta sends webhook payloads of up to 3 MB; anything larger is not from Meta."""

TYPING_INDICATOR_SECONDS: Final = 25
"""The typing indicator disappears after this, or when the business replies."""
