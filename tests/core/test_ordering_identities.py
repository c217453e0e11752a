"""One person's messages run one at a time, in arrival order, whichever of their ids Meta sends.

Meta names a person by phone number, by business-scoped user id (BSUID), or both; the identity
store makes them one conversation, and the intake must serialise them as one too.
"""

import asyncio
import json
import time
from typing import Any

from connectors.whatsapp.core.config import WhatsAppConfig
from connectors.whatsapp.core.endpoint import WebhookEndpoint
from connectors.whatsapp.core.inbound import BotInput
from connectors.whatsapp.core.signature import sign
from connectors.whatsapp.core.webhook import WebhookRequest
from tests.conftest import APP_SECRET, PHONE_NUMBER_ID
from tests.support.settings import credentials

WA_ID = "5511987654321"
BSUID = "BR.13491208655302741918"


def webhook(wamid: str, text: str, **ids: str) -> bytes:
    message = {
        "id": wamid,
        "timestamp": str(int(time.time())),
        "type": "text",
        "text": {"body": text},
    }
    contact: dict[str, Any] = {"profile": {"name": "Maria"}}
    if "wa_id" in ids:
        message["from"] = contact["wa_id"] = ids["wa_id"]
    if "user_id" in ids:
        message["from_user_id"] = contact["user_id"] = ids["user_id"]
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550783881", "phone_number_id": PHONE_NUMBER_ID},
        "contacts": [contact],
        "messages": [message],
    }
    payload = {
        "object": "whatsapp_business_account",
        "entry": [{"id": "1", "changes": [{"field": "messages", "value": value}]}],
    }
    return json.dumps(payload).encode()


async def test_phone_and_bsuid_messages_of_one_person_do_not_overlap() -> None:
    turns: list[tuple[str, str, str]] = []

    async def deliver(bot_input: BotInput) -> None:
        turns.append(("start", bot_input.text, bot_input.sender_id))
        if bot_input.text == "first":
            await asyncio.sleep(0.3)
        turns.append(("end", bot_input.text, bot_input.sender_id))

    config = WhatsAppConfig.from_mapping(credentials("http://127.0.0.1:9", mark_as_read=False))
    endpoint = WebhookEndpoint(config, deliver)

    async def post(body: bytes) -> int:
        request = WebhookRequest("POST", body, {"X-Hub-Signature-256": sign(body, APP_SECRET)})
        return (await endpoint.receive(request)).status

    try:
        assert await post(webhook("wamid.A0", "hello", wa_id=WA_ID, user_id=BSUID)) == 200
        await endpoint.join()
        turns.clear()
        assert await post(webhook("wamid.A1", "first", wa_id=WA_ID, user_id=BSUID)) == 200
        assert await post(webhook("wamid.A2", "second", user_id=BSUID)) == 200
        await endpoint.join()
    finally:
        await endpoint.close()

    assert turns == [
        ("start", "first", WA_ID),
        ("end", "first", WA_ID),
        ("start", "second", WA_ID),
        ("end", "second", WA_ID),
    ]
