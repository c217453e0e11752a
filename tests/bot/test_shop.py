"""actions/shop.py and actions/catalogue.py: plans, categories and products."""

from typing import Any

import pytest
from rasa_sdk import Action

from actions.catalogue import CATEGORIES, PLANS, PRODUCTS, PRODUCTS_BY_KEY, SITE, Product
from actions.shop import ActionChoosePlan, ActionChooseProduct, ActionShowCategory, payload
from connectors.whatsapp import limits
from tests.bot.turns import (
    DOMAIN,
    customs,
    domain_buttons,
    parse_like_rasa,
    run,
    slot_events,
    texts,
    tracker_for,
)


@pytest.mark.parametrize("button", domain_buttons("utter_planos"), ids=lambda b: b["title"])
async def test_each_plan_button_leads_to_a_sign_up_cta(button: dict[str, Any]) -> None:
    tracker = tracker_for(button["payload"])

    messages, events = await run(ActionChoosePlan(), tracker)

    plan = PLANS[tracker.get_slot("plano")]
    assert texts(messages).startswith(f"Ótimo, você escolheu o plano *{plan.name}*")
    [cta] = customs(messages)
    assert cta["interactive"]["type"] == "cta_url"
    assert cta["interactive"]["header"] == {"type": "text", "text": f"Plano {plan.name}"}
    assert slot_events(events) == {"plano": tracker.get_slot("plano")}


async def test_a_plan_on_other_channels_is_a_url_button() -> None:
    tracker = tracker_for('/escolher_plano{"plano":"Básico"}', channel="rest")

    messages, events = await run(ActionChoosePlan(), tracker)

    assert customs(messages) == []
    [button] = [button for message in messages for button in message["buttons"]]
    assert button == {"title": "Assinar agora", "url": f"{SITE}/assinar?plano=basico"}
    assert slot_events(events) == {"plano": "basico"}


@pytest.mark.parametrize(
    ("action", "trigger", "response"),
    [
        (ActionChoosePlan(), '/escolher_plano{"plano":"ouro"}', "utter_planos"),
        (ActionChoosePlan(), "/escolher_plano", "utter_planos"),
        (ActionShowCategory(), '/escolher_categoria{"categoria":9}', "utter_categorias"),
        (ActionChooseProduct(), '/escolher_produto{"produto":"x"}', "utter_categorias"),
    ],
)
async def test_an_unknown_choice_shows_the_options_again(
    action: Action, trigger: str, response: str
) -> None:
    messages, events = await run(action, tracker_for(trigger))

    assert messages[-1]["response"] == response
    assert response in DOMAIN.responses
    assert all(event["value"] is None for event in events)


@pytest.mark.parametrize("button", domain_buttons("utter_categorias"), ids=lambda b: b["title"])
async def test_each_category_is_a_whatsapp_list_of_products(button: dict[str, Any]) -> None:
    tracker = tracker_for(button["payload"])

    messages, events = await run(ActionShowCategory(), tracker)

    [body] = customs(messages)
    interactive = body["interactive"]
    assert interactive["type"] == "list"
    assert interactive["body"]["text"].startswith(f"*{button['title']}*")
    rows = [row for section in interactive["action"]["sections"] for row in section["rows"]]
    category = tracker.get_slot("categoria")
    products = [p for p in PRODUCTS if p.category == category]
    assert sorted(row["title"] for row in rows) == sorted(p.name for p in products)
    for row in rows:  # what comes back when the user picks the row
        parsed = parse_like_rasa(row["id"])
        assert parsed["intent"]["name"] == "escolher_produto"
        [entity] = parsed["entities"]
        assert entity["entity"] == "produto" and entity["value"] in PRODUCTS_BY_KEY
    assert slot_events(events) == {"categoria": category}


async def test_a_category_on_other_channels_is_text_with_buttons() -> None:
    tracker = tracker_for('/escolher_categoria{"categoria":"livros"}', channel="rest")

    messages, _ = await run(ActionShowCategory(), tracker)

    assert customs(messages) == []
    [message] = messages
    assert [button["payload"] for button in message["buttons"]] == [
        '/escolher_produto{"produto":"romance"}',
        '/escolher_produto{"produto":"poesia"}',
        '/escolher_produto{"produto":"hq"}',
    ]


@pytest.mark.parametrize("product", PRODUCTS, ids=lambda p: p.key)
async def test_each_product_is_shown_as_an_image_and_a_cta(product: Product) -> None:
    tracker = tracker_for(payload("escolher_produto", produto=product.key))

    messages, events = await run(ActionChooseProduct(), tracker)

    image, cta = customs(messages)
    assert image["type"] == "image"
    assert image["image"]["caption"] == f"*{product.name}*\n{product.description}\n{product.price}"
    assert cta["interactive"]["action"]["parameters"]["url"] == product.url
    assert slot_events(events) == {"produto": product.key}


async def test_a_product_on_other_channels_is_text_image_and_url_button() -> None:
    tracker = tracker_for('/escolher_produto{"produto":"bola"}', channel="rest")

    messages, _ = await run(ActionChooseProduct(), tracker)

    [message] = messages
    assert message["image"] == PRODUCTS_BY_KEY["bola"].image
    assert message["buttons"] == [{"title": "Comprar", "url": f"{SITE}/produtos/bola"}]


def test_list_row_payloads_stay_short() -> None:
    longest = max((payload("escolher_produto", produto=p.key) for p in PRODUCTS), key=len)
    assert len(longest) <= limits.LIST_ROW_ID


def test_categories_of_the_domain_are_in_the_catalogue() -> None:
    for button in domain_buttons("utter_categorias"):
        [entity] = parse_like_rasa(button["payload"])["entities"]
        assert CATEGORIES[entity["value"]] == button["title"]
        assert any(p.category == entity["value"] for p in PRODUCTS)
