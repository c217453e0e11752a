"""actions/received.py: photos, voice notes, other media, contact cards and orders."""

import json

import pytest

from actions.received import (
    ActionReceiveContact,
    ActionReceiveMedia,
    ActionReceiveOrder,
    order_total,
)
from actions.wording import format_brl
from connectors.whatsapp.core.textfit import text_length
from tests.bot.turns import customs, run, texts, tracker_for, tracker_from_webhook


async def test_a_photo_is_acknowledged_with_its_caption_and_a_reaction() -> None:
    tracker = tracker_from_webhook("image")

    messages, _ = await run(ActionReceiveMedia(), tracker)

    assert texts(messages).startswith(
        "Recebi sua foto 📷 com a legenda “This is the damaged box”. Ainda não consigo analisar"
    )
    [reaction] = customs(messages)
    wamid = tracker.latest_message["metadata"]["whatsapp"]["message"]["id"]
    assert reaction["reaction"] == {"message_id": wamid, "emoji": "👍"}


async def test_a_photo_without_caption_on_another_channel_gets_no_reaction() -> None:
    tracker = tracker_for('/whatsapp_image{"media_id": "1"}', channel="rest")

    messages, _ = await run(ActionReceiveMedia(), tracker)

    assert texts(messages).startswith("Recebi sua foto 📷. Ainda não consigo analisar imagens")
    assert customs(messages) == []


async def test_a_long_caption_is_quoted_shortened() -> None:
    caption = "muito " * 100
    trigger = f"/whatsapp_image{json.dumps({'media_id': '1', 'caption': caption})}"

    messages, _ = await run(ActionReceiveMedia(), tracker_for(trigger))

    quoted = texts(messages).split("“")[1].split("”")[0]
    assert quoted.endswith("…") and text_length(quoted) <= 200


async def test_a_voice_note_is_received_but_not_transcribed() -> None:
    messages, _ = await run(ActionReceiveMedia(), tracker_from_webhook("audio_voice"))

    assert texts(messages) == (
        "Recebi sua mensagem de voz 🎤, mas ainda não consigo transcrever áudios. "
        "Pode escrever sua dúvida em texto?"
    )


async def test_an_audio_file_is_not_called_a_voice_note() -> None:
    trigger = '/whatsapp_audio{"media_id": "1", "mime_type": "audio/mpeg", "voice": false}'

    messages, _ = await run(ActionReceiveMedia(), tracker_for(trigger))

    assert texts(messages).startswith("Recebi seu arquivo de áudio 🎵")


@pytest.mark.parametrize(
    ("fixture", "expected"),
    [
        ("document", "Recebi o documento “invoice-1234.pdf” 📄."),
        ("sticker", "Adorei a figurinha! 😄"),
    ],
)
async def test_documents_and_stickers_are_acknowledged(fixture: str, expected: str) -> None:
    messages, _ = await run(ActionReceiveMedia(), tracker_from_webhook(fixture))

    assert texts(messages).startswith(expected)
    assert customs(messages) == []


async def test_a_video_is_acknowledged_with_its_caption() -> None:
    trigger = '/whatsapp_video{"media_id": "1", "caption": "unboxing"}'

    messages, _ = await run(ActionReceiveMedia(), tracker_for(trigger))

    assert texts(messages) == "Recebi seu vídeo 🎬 com a legenda “unboxing”. Obrigado!"


async def test_a_shared_contact_is_named() -> None:
    messages, _ = await run(ActionReceiveContact(), tracker_from_webhook("contacts"))

    assert texts(messages) == (
        "Obrigado! Recebi o contato de Ana Costa (+5511912345678). "
        "Vamos falar com essa pessoa em breve."
    )


async def test_an_order_is_acknowledged_with_its_total() -> None:
    # Two lines: 1 x 349.90 and 2 x 39.90.
    messages, _ = await run(ActionReceiveOrder(), tracker_from_webhook("order"))

    assert texts(messages).startswith(
        "🛒 Recebi seu carrinho com 2 produtos no valor de R$ 429,70!"
    )


@pytest.mark.parametrize(
    ("amount", "expected"),
    [(0.5, "R$ 0,50"), (429.7, "R$ 429,70"), (1234.5, "R$ 1.234,50"), (1e6, "R$ 1.000.000,00")],
)
def test_amounts_are_written_the_brazilian_way(amount: float, expected: str) -> None:
    assert format_brl(amount) == expected


def test_an_order_in_another_currency_has_no_total() -> None:
    message = {"order": {"product_items": [{"quantity": 1, "item_price": 5, "currency": "USD"}]}}

    assert order_total(message) is None
