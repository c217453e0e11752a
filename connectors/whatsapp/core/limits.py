"""Limits of the WhatsApp Cloud API, in characters or items.

Meta does not say whether a "character" is a code point or a UTF-16 unit, so `textfit` counts
UTF-16 units (an emoji outside the BMP counts twice): what fits that way fits either way.

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
