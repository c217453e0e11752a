"""Meta-shaped webhook payloads for what a user does, and for the statuses of bot messages.

The shapes are Meta's (https://developers.facebook.com/docs/whatsapp/cloud-api/webhooks/components):
`{"object": "whatsapp_business_account", "entry": [{"id": <WABA id>, "changes": [{"field":
"messages", "value": {"messaging_product": "whatsapp", "metadata": {...}, "contacts": [...],
"messages": [...]}}]}]}`, or `statuses` instead of `contacts`/`messages`.

Bodies are encoded like Meta's (non-ASCII as `\\uXXXX`, `/` as `\\/`) and signed with the app
secret (`X-Hub-Signature-256`), so a receiver that re-encodes the JSON before checking the
signature fails here as it would in production.
"""

import json
from collections.abc import Mapping
from typing import Any

from connectors.whatsapp.core.signature import SIGNATURE_HEADER, sign

from .config import SandboxConfig, SimulatedContact
from .errors import ERROR_TITLES

Payload = dict[str, Any]
ERROR_HREF = "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"


def _envelope(config: SandboxConfig, value: Payload) -> Payload:
    metadata = {
        "display_phone_number": config.display_phone_number,
        "phone_number_id": config.phone_number_id,
    }
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": config.business_account_id,
                "changes": [
                    {
                        "value": {"messaging_product": "whatsapp", "metadata": metadata, **value},
                        "field": "messages",
                    }
                ],
            }
        ],
    }


def inbound_message(
    *,
    wamid: str,
    wa_id: str | None,
    timestamp: float,
    kind: str,
    content: Mapping[str, Any],
    context_id: str | None = None,
    business_number: str = "",
    user_id: str | None = None,
    group_id: str | None = None,
) -> Payload:
    """One `messages[]` object: `kind` is Meta's `type` ("text", "interactive", "image", ...).

    The sender is `from` (a phone number) and/or `from_user_id` (a BSUID); a user who hides their
    phone number has no `from` at all. A group message also carries `group_id`, and its sender is
    the member who wrote (https://developers.facebook.com/docs/whatsapp/cloud-api/groups).
    """
    message: Payload = {}
    if wa_id:
        message["from"] = wa_id
    if user_id:
        message["from_user_id"] = user_id
    if group_id:
        message["group_id"] = group_id
    message |= {"id": wamid, "timestamp": str(int(timestamp))}
    if context_id:
        message["context"] = {"from": business_number, "id": context_id}
    message["type"] = kind
    message[kind] = dict(content)
    return message


def messages_payload(
    config: SandboxConfig, contact: SimulatedContact, message: Mapping[str, Any]
) -> Payload:
    """A user's message, with their profile (`contacts[]`), as Meta delivers it."""
    return _envelope(config, {"contacts": [contact_object(contact)], "messages": [dict(message)]})


def contact_object(contact: SimulatedContact) -> Payload:
    """`contacts[]`: the profile (name, and `username` where adopted), `wa_id` and/or `user_id`."""
    profile: Payload = {"name": contact.name}
    if contact.username:
        profile["username"] = contact.username
    item: Payload = {"profile": profile}
    if contact.wa_id:
        item["wa_id"] = contact.wa_id
    if contact.user_id:
        item["user_id"] = contact.user_id
    return item


def status_object(
    *,
    message_id: str,
    status: str,
    recipient_id: str | None,
    timestamp: float,
    error_code: int | None = None,
    error_details: str | None = None,
    callback_data: str | None = None,
    billable: bool = True,
    recipient_user_id: str | None = None,
    group: bool = False,
    participant_id: str | None = None,
    template: bool = False,
) -> Payload:
    """One `statuses[]` object. `billable` adds the `pricing` (and `conversation`) objects.

    The recipient is `recipient_id` (a phone number, or the group id for a group) and
    `recipient_user_id` when the user has a BSUID; a user without a phone number has only the
    latter. A group's statuses carry `recipient_type: "group"`, the per-member ones
    `recipient_participant_id`. Meta sends `pricing` with `sent` and with one of
    `delivered`/`read`; a service message (an answer within 24 hours) is free, a template is not
    (per-message pricing since 2025-07-01).
    """
    item: Payload = {"id": message_id, "status": status, "timestamp": str(int(timestamp))}
    if recipient_id is not None:
        item["recipient_id"] = recipient_id
    if recipient_user_id is not None:
        item["recipient_user_id"] = recipient_user_id
    if group:
        item["recipient_type"] = "group"
    if participant_id is not None:
        item["recipient_participant_id"] = participant_id
    if callback_data is not None:
        item["biz_opaque_callback_data"] = callback_data
    if billable and status in ("sent", "delivered"):
        who = recipient_id or recipient_user_id or ""
        item["conversation"] = {
            "id": f"conv{who[-6:]}{int(timestamp) // 86400}",
            "origin": {"type": "utility" if template else "service"},
        }
        if status == "sent":
            item["conversation"]["expiration_timestamp"] = str(int(timestamp) + 86400)
        item["pricing"] = (
            {"billable": True, "pricing_model": "PMP", "category": "utility", "type": "regular"}
            if template
            else {
                "billable": False,
                "pricing_model": "PMP",
                "category": "service",
                "type": "free_customer_service",
            }
        )
    if error_code is not None:
        title = ERROR_TITLES.get(error_code, "Something went wrong")
        item["errors"] = [
            {
                "code": error_code,
                "title": title,
                "message": title,
                "error_data": {"details": error_details or title},
                "href": ERROR_HREF,
            }
        ]
    return item


def statuses_payload(config: SandboxConfig, status: Mapping[str, Any]) -> Payload:
    return _envelope(config, {"statuses": [dict(status)]})


def encode(payload: Mapping[str, Any]) -> bytes:
    """JSON bytes the way Meta writes them: ASCII only, with `\\/` for `/`."""
    text = json.dumps(payload, ensure_ascii=True, separators=(",", ":"))
    return text.replace("/", "\\/").encode("ascii")


def signed(payload: Mapping[str, Any], app_secret: str) -> tuple[bytes, dict[str, str]]:
    """The body and headers of a webhook POST, signed as Meta signs them."""
    body = encode(payload)
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign(body, app_secret),
        "User-Agent": "facebookexternalua",
    }
    return body, headers
