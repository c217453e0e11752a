"""What WhatsApp users send that is not text: media, contact cards and catalogue orders.

The channel sends each as an intent trigger whose entities carry the useful fields
(`/whatsapp_image{"media_id": ..., "caption": ...}`), and the raw message in
`metadata["whatsapp"]["message"]`.
"""

from collections.abc import Mapping

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.tracker import (
    Events,
    as_bool,
    as_float,
    as_text,
    is_whatsapp,
    latest_entity,
    latest_intent,
    whatsapp_metadata,
)
from actions.wording import format_brl, quote
from connectors.whatsapp import builders
from connectors.whatsapp.core.textfit import fit_label


def order_total(message: object) -> float | None:
    """Sum of quantity x price of a raw order message, if every line is in reais.

    https://developers.facebook.com/docs/whatsapp/cloud-api/webhooks/reference/messages/order
    """
    order = message.get("order") if isinstance(message, Mapping) else None
    items = order.get("product_items") if isinstance(order, Mapping) else None
    if not isinstance(items, list) or not items:
        return None
    total = 0.0
    for item in items:
        if not isinstance(item, Mapping) or item.get("currency") != "BRL":
            return None
        quantity = as_float(item.get("quantity"))
        price = as_float(item.get("item_price"))
        if quantity is None or price is None:
            return None
        total += quantity * price
    return total


class ActionReceiveMedia(Action):
    """`action_receber_midia`: acknowledges a photo, voice note, audio, video, document or sticker.

    The bot does not look inside media (the channel passes its `media_id`, which
    `GraphClient.get_media` would turn into a download URL): it says what it received, and quotes
    the caption or the file name the user wrote. On WhatsApp it also reacts to a photo with 👍.
    """

    def name(self) -> str:
        return "action_receber_midia"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Events:
        intent = latest_intent(tracker)
        caption = as_text(latest_entity(tracker, "caption"))
        with_caption = f" com a legenda {quote(caption)}" if caption else ""
        if intent == "whatsapp_image":
            answer = (
                f"Recebi sua foto 📷{with_caption}. Ainda não consigo analisar imagens, "
                "mas ela fica registrada no seu atendimento."
            )
            self._react(dispatcher, tracker, "👍")
        elif intent == "whatsapp_audio":
            if as_bool(latest_entity(tracker, "voice")):
                answer = (
                    "Recebi sua mensagem de voz 🎤, mas ainda não consigo transcrever áudios. "
                    "Pode escrever sua dúvida em texto?"
                )
            else:
                answer = (
                    "Recebi seu arquivo de áudio 🎵, mas ainda não consigo ouvir áudios. "
                    "Pode escrever sua dúvida em texto?"
                )
        elif intent == "whatsapp_video":
            answer = f"Recebi seu vídeo 🎬{with_caption}. Obrigado!"
        elif intent == "whatsapp_document":
            filename = as_text(latest_entity(tracker, "filename"))
            named = f" {quote(filename, 80)}" if filename else ""
            answer = f"Recebi o documento{named} 📄. Vamos analisar e te respondemos por aqui."
        elif intent == "whatsapp_sticker":
            answer = "Adorei a figurinha! 😄"
        else:
            answer = "Recebi seu arquivo. Obrigado!"
        dispatcher.utter_message(text=answer)
        return []

    @staticmethod
    def _react(dispatcher: CollectingDispatcher, tracker: Tracker, emoji: str) -> None:
        """React to the user's message itself (WhatsApp only; needs its `wamid`)."""
        if not is_whatsapp(tracker):
            return
        message = whatsapp_metadata(tracker).get("message")
        message_id = message.get("id") if isinstance(message, Mapping) else None
        if isinstance(message_id, str) and message_id.strip():
            dispatcher.utter_message(json_message=builders.reaction(message_id, emoji))


class ActionReceiveContact(Action):
    """`action_receber_contato`: thanks for a shared contact card.

    The channel sends it as `/whatsapp_contacts{"contact_name": ..., "contact_phone": ...}`.
    """

    def name(self) -> str:
        return "action_receber_contato"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Events:
        name = as_text(latest_entity(tracker, "contact_name"))
        phone = as_text(latest_entity(tracker, "contact_phone"))
        if phone and phone.isdigit():
            phone = f"+{phone}"
        if name and phone:
            whose = f" de {fit_label(name, 60)} ({phone})"
        elif name or phone:
            whose = f" de {fit_label(name or phone or '', 60)}"
        else:
            whose = ""
        dispatcher.utter_message(
            text=f"Obrigado! Recebi o contato{whose}. Vamos falar com essa pessoa em breve."
        )
        return []


class ActionReceiveOrder(Action):
    """`action_receber_pedido`: acknowledges a cart sent from the WhatsApp catalogue.

    The channel sends it as `/whatsapp_order{"catalog_id": ..., "item_count": ...}`; the total
    comes from the raw order in the metadata (`metadata["whatsapp"]["message"]`), which has every
    product line with its quantity and price.
    """

    def name(self) -> str:
        return "action_receber_pedido"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Events:
        count = as_float(latest_entity(tracker, "item_count"))
        if count is None or count < 1 or not count.is_integer():
            items = ""
        elif count == 1:
            items = " com 1 produto"
        else:
            items = f" com {count:.0f} produtos"
        total = order_total(whatsapp_metadata(tracker).get("message"))
        amount = f" no valor de {format_brl(total)}" if total is not None else ""
        dispatcher.utter_message(
            text=f"🛒 Recebi seu carrinho{items}{amount}! Um atendente vai confirmar o frete e a "
            "forma de pagamento em instantes."
        )
        return []
