"""Plans, categories and products: reply buttons, lists with sections, images and CTA URLs."""

import json

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.catalogue import CATEGORIES, PLANS, PRODUCTS, PRODUCTS_BY_KEY, SITE, catalogue_key
from actions.tracker import Events, as_text, entity_or_slot, is_whatsapp
from connectors.whatsapp import builders


def payload(intent: str, **entities: str) -> str:
    """A button or list row payload that Rasa parses without NLU: `/intent{"key":"value"}`.

    Compact JSON keeps it short: a list row id takes at most 200 characters.
    """
    if not entities:
        return f"/{intent}"
    return f"/{intent}{json.dumps(entities, ensure_ascii=False, separators=(',', ':'))}"


class ActionChoosePlan(Action):
    """`action_escolher_plano`: confirms the plan chosen and links to the sign-up page.

    On WhatsApp the link is a CTA URL message (`builders.cta_url`).
    """

    def name(self) -> str:
        return "action_escolher_plano"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Events:
        key = catalogue_key(as_text(entity_or_slot(tracker, "plano")))
        if key is None or (plan := PLANS.get(key)) is None:
            dispatcher.utter_message(response="utter_planos")
            return [SlotSet("plano", None)]
        dispatcher.utter_message(
            text=f"Ótimo, você escolheu o plano *{plan.name}* ({plan.price}). {plan.benefits}"
        )
        url = f"{SITE}/assinar?plano={key}"
        body = "Para concluir a assinatura, é só tocar no botão abaixo."
        if is_whatsapp(tracker):
            dispatcher.utter_message(
                json_message=builders.cta_url(
                    body, "Assinar agora", url, header=f"Plano {plan.name}"
                )
            )
        else:
            dispatcher.utter_message(text=body, buttons=[{"title": "Assinar agora", "url": url}])
        return [SlotSet("plano", key)]


class ActionShowCategory(Action):
    """`action_mostrar_categoria`: lists the products of the category chosen in `utter_categorias`.

    On WhatsApp: a list message with two sections (`builders.list_message`); each row's id is the
    payload that comes back when the user picks it.
    """

    def name(self) -> str:
        return "action_mostrar_categoria"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Events:
        key = catalogue_key(as_text(entity_or_slot(tracker, "categoria")))
        if key is None or (category := CATEGORIES.get(key)) is None:
            dispatcher.utter_message(response="utter_categorias")
            return [SlotSet("categoria", None)]
        products = [product for product in PRODUCTS if product.category == key]
        body = f"*{category}*: escolha um produto para ver a foto e o preço."
        if is_whatsapp(tracker):
            sections: list[builders.Section] = []
            for title, new in (("Mais vendidos", False), ("Novidades", True)):
                rows = [
                    (
                        payload("escolher_produto", produto=product.key),
                        product.name,
                        f"{product.price} · {product.description}",
                    )
                    for product in products
                    if product.new is new
                ]
                if rows:
                    sections.append((title, rows))
            dispatcher.utter_message(
                json_message=builders.list_message(body, "Ver produtos", sections)
            )
        else:
            dispatcher.utter_message(
                text=body,
                buttons=[
                    {
                        "title": f"{product.name} ({product.price})",
                        "payload": payload("escolher_produto", produto=product.key),
                    }
                    for product in products
                ],
            )
        return [SlotSet("categoria", key)]


class ActionChooseProduct(Action):
    """`action_escolher_produto`: shows the product picked from the list, its price and a link.

    On WhatsApp: an image with a caption (`builders.image`), then a CTA URL (`builders.cta_url`).
    """

    def name(self) -> str:
        return "action_escolher_produto"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Events:
        key = catalogue_key(as_text(entity_or_slot(tracker, "produto")))
        if key is None or (product := PRODUCTS_BY_KEY.get(key)) is None:
            dispatcher.utter_message(text="Não encontrei esse produto. Veja as categorias:")
            dispatcher.utter_message(response="utter_categorias")
            return [SlotSet("produto", None)]
        caption = f"*{product.name}*\n{product.description}\n{product.price}"
        if is_whatsapp(tracker):
            dispatcher.utter_message(
                json_message=builders.image(link=product.image, caption=caption)
            )
            dispatcher.utter_message(
                json_message=builders.cta_url(
                    "Gostou? Compre pelo site, com entrega para todo o Brasil.",
                    "Comprar",
                    product.url,
                )
            )
        else:
            dispatcher.utter_message(
                text=caption,
                image=product.image,
                buttons=[{"title": "Comprar", "url": product.url}],
            )
        return [SlotSet("produto", key)]
