"""Building and posting Meta-shaped webhooks in tests."""

import itertools
import json
from typing import Any

import aiohttp

from connectors.whatsapp.core.signature import sign
from tests.conftest import APP_SECRET, PHONE_NUMBER_ID

DISPLAY_PHONE_NUMBER = "15550783881"
_ids = itertools.count(1)


def new_wamid() -> str:
    return f"wamid.TEST{next(_ids):012d}"


def envelope(
    messages: list[dict[str, Any]] | None = None,
    *,
    statuses: list[dict[str, Any]] | None = None,
    contacts: list[dict[str, Any]] | None = None,
    phone_number_id: str = PHONE_NUMBER_ID,
) -> dict[str, Any]:
    """One entry, one `messages` change, as Meta sends it."""
    value: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "metadata": {
            "display_phone_number": DISPLAY_PHONE_NUMBER,
            "phone_number_id": phone_number_id,
        },
    }
    if contacts is not None:
        value["contacts"] = contacts
    if messages is not None:
        value["messages"] = messages
    if statuses is not None:
        value["statuses"] = statuses
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": [{"value": value, "field": "messages"}]}],
    }


def user_message(
    sender: str, kind: str, content: dict[str, Any], *, wamid: str | None = None, name: str = "Ana"
) -> tuple[dict[str, Any], str]:
    """A webhook with one message of `kind` from `sender`; returns it and the message id."""
    wamid = wamid or new_wamid()
    message = {"from": sender, "id": wamid, "timestamp": "1732590000", "type": kind, kind: content}
    contacts = [{"profile": {"name": name}, "wa_id": sender}]
    return envelope([message], contacts=contacts), wamid


def text_message(sender: str, text: str, **kwargs: Any) -> tuple[dict[str, Any], str]:
    return user_message(sender, "text", {"body": text}, **kwargs)


def encode(payload: dict[str, Any]) -> bytes:
    """Serialise like Meta: compact, non-ASCII escaped."""
    return json.dumps(payload, separators=(",", ":")).encode()


async def post_webhook(
    session: aiohttp.ClientSession,
    url: str,
    body: bytes,
    *,
    secret: str | None = APP_SECRET,
    signature: str | None = None,
) -> tuple[int, str]:
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["X-Hub-Signature-256"] = signature
    elif secret is not None:
        headers["X-Hub-Signature-256"] = sign(body, secret)
    async with session.post(url, data=body, headers=headers) as response:
        return response.status, await response.text()
