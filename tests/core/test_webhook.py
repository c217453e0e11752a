import json

import pytest

from connectors.whatsapp.core.events import InboundMessage
from connectors.whatsapp.core.signature import sign
from connectors.whatsapp.core.webhook import (
    WebhookRequest,
    WebhookResponse,
    accept_notification,
    verify_subscription,
)
from tests.conftest import APP_SECRET, VERIFY_TOKEN
from tests.support.webhooks import encode, text_message


def test_verification_echoes_the_challenge_verbatim() -> None:
    query = {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "0012"}
    answer = verify_subscription(query, VERIFY_TOKEN)
    assert (answer.status, answer.body) == (200, "0012")


@pytest.mark.parametrize(
    "query",
    [
        {"hub.mode": "subscribe", "hub.verify_token": "wrong", "hub.challenge": "1"},
        {"hub.mode": "unsubscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1"},
        {"hub.challenge": "1"},
        {},
    ],
)
def test_verification_refuses_with_403(query: dict[str, str]) -> None:
    assert verify_subscription(query, VERIFY_TOKEN).status == 403


def test_verification_accepts_php_style_names() -> None:
    query = {"hub_mode": "subscribe", "hub_verify_token": VERIFY_TOKEN, "hub_challenge": "7"}
    assert verify_subscription(query, VERIFY_TOKEN).body == "7"


def _post(body: bytes, signature: str | None) -> WebhookRequest:
    headers = {"x-hub-signature-256": signature} if signature is not None else {}
    return WebhookRequest(method="POST", body=body, headers=headers)


def test_signed_notification_is_accepted_and_parsed() -> None:
    body = encode(text_message("5511987654321", "Olá")[0])
    acceptance = accept_notification(_post(body, sign(body, APP_SECRET)), app_secret=APP_SECRET)
    assert acceptance.response.status == 200
    [message] = acceptance.events
    assert isinstance(message, InboundMessage) and message.text == "Olá"


@pytest.mark.parametrize(
    ("signature", "status"),
    [(None, 401), ("", 401), ("sha256=" + "0" * 64, 403), ("sha1=abc", 403), ("garbage", 403)],
)
def test_unsigned_or_badly_signed_notification_is_refused(
    signature: str | None, status: int
) -> None:
    body = encode(text_message("5511987654321", "oi")[0])
    acceptance = accept_notification(_post(body, signature), app_secret=APP_SECRET)
    assert acceptance.response.status == status
    assert acceptance.events == ()


def test_signature_is_checked_on_raw_bytes_not_reencoded_json() -> None:
    # Meta escapes non-ASCII; the same JSON re-encoded with UTF-8 must not verify.
    body = json.dumps(text_message("5511987654321", "ação 😀")[0]).encode()
    reencoded = json.dumps(json.loads(body), ensure_ascii=False).encode()
    signature = sign(body, APP_SECRET)
    assert accept_notification(_post(body, signature), app_secret=APP_SECRET).accepted
    assert (
        accept_notification(_post(reencoded, signature), app_secret=APP_SECRET).response.status
        == 403
    )


def test_oversized_body_is_refused_before_anything_else() -> None:
    body = b"{" + b" " * (3 * 1024 * 1024) + b"}"
    acceptance = accept_notification(_post(body, None), app_secret=APP_SECRET)
    assert acceptance.response.status == 413


@pytest.mark.parametrize(
    "body", [b"not json", b"[1, 2]", b'"text"', b"{}", b'{"entry": 3}', b"\xff\xfe"]
)
def test_signed_body_that_is_not_a_webhook_gets_400(body: bytes) -> None:
    acceptance = accept_notification(_post(body, sign(body, APP_SECRET)), app_secret=APP_SECRET)
    assert acceptance.response.status == 400
    assert acceptance.response.body.startswith("not a webhook")


def test_signature_check_can_be_turned_off() -> None:
    body = encode(text_message("5511987654321", "oi")[0])
    acceptance = accept_notification(_post(body, None), app_secret=None, validate_signature=False)
    assert acceptance.accepted


def test_validation_without_secret_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="app_secret"):
        accept_notification(_post(b"{}", None), app_secret=None)


def test_verification_without_a_challenge_echoes_an_empty_one() -> None:
    query = {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN}
    assert verify_subscription(query, VERIFY_TOKEN) == WebhookResponse(200, "")


def test_a_hand_made_webhook_without_metadata_or_field_is_still_answered() -> None:
    payload, _ = text_message("5511987654321", "oi")
    change = payload["entry"][0]["changes"][0]
    del change["field"], change["value"]["metadata"]
    body = encode(payload)
    acceptance = accept_notification(
        _post(body, sign(body, APP_SECRET)),
        app_secret=APP_SECRET,
        default_phone_number_id="123456",
    )
    [message] = acceptance.events
    assert isinstance(message, InboundMessage)
    assert message.business.phone_number_id == "123456"
