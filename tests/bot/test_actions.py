"""The sample bot's custom actions, run as the action server runs them.

Each tracker is built the way a real turn builds it: a webhook body in Meta's shape (the shared
fixtures) goes through the channel's parsing and `to_bot_input`, Rasa's own parser turns the text
(`/whatsapp_location{...}`, a button payload) into intent and entities, and slots are filled from
entities as the domain's `from_entity` mappings say. The actions then run with rasa_sdk's
`CollectingDispatcher`, and every Cloud API body they send is checked against Meta's limits.
"""

import copy
import json
import math
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rasa.shared.core.domain import Domain
from rasa.shared.core.training_data.story_reader.yaml_story_reader import YAMLStoryReader
from rasa.shared.nlu.training_data.message import Message
from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions import actions
from connectors.whatsapp import builders, limits
from connectors.whatsapp.events import InboundMessage
from connectors.whatsapp.inbound import BotInput, to_bot_input
from connectors.whatsapp.parsing import parse_webhook
from connectors.whatsapp.textfit import text_length
from tests.core.fixtures import load_fixture
from tests.support.limits_check import assert_within_limits
from tests.support.processes import PROJECT_ROOT

DOMAIN = Domain.load(str(PROJECT_ROOT / "domain.yml"))
SENDER = "5511987654321"

Messages = list[dict[str, Any]]
Events = list[dict[str, Any]]


# --------------------------------------------------------------------------------------------
# Building trackers the way a turn does.


def parse_like_rasa(text: str) -> dict[str, Any]:
    """Intent and entities of an intent trigger, by the parser Rasa itself uses for them."""
    message = YAMLStoryReader.unpack_regex_message(
        Message({"text": text}), DOMAIN, "RegexMessageHandler"
    )
    intent = message.get("intent")
    assert intent, f"Rasa does not parse {text!r} as an intent of the domain"
    return {
        "text": text,
        "intent": intent,
        "intent_ranking": message.get("intent_ranking"),
        "entities": message.get("entities") or [],
    }


def slots_from_entities(entities: list[dict[str, Any]]) -> dict[str, Any]:
    """What the domain's `from_entity` slot mappings fill in for these entities."""
    slots: dict[str, Any] = {slot.name: None for slot in DOMAIN.slots}
    for slot in DOMAIN.slots:
        for mapping in slot.mappings:
            if mapping.get("type") != "from_entity":
                continue
            for entity in entities:
                if entity["entity"] == mapping.get("entity"):
                    slots[slot.name] = entity["value"]
    return slots


def tracker_for(
    text: str,
    *,
    channel: str = "whatsapp",
    metadata: Mapping[str, Any] | None = None,
    slots: Mapping[str, Any] | None = None,
) -> Tracker:
    """The tracker an action sees right after the user sent `text` (an intent trigger)."""
    latest = {**parse_like_rasa(text), "metadata": dict(metadata or {})}
    filled = {**slots_from_entities(latest["entities"]), **(slots or {})}
    events = [
        {"event": "action", "name": "action_listen"},
        {
            "event": "user",
            "text": text,
            "parse_data": latest,
            "input_channel": channel,
            "metadata": latest["metadata"],
        },
    ]
    return Tracker(SENDER, filled, latest, events, False, None, {}, "action_listen")


def webhook_input(fixture: str) -> BotInput:
    """What the WhatsApp channel hands to Rasa for the fixture's message."""
    [message] = [e for e in parse_webhook(load_fixture(fixture)) if isinstance(e, InboundMessage)]
    bot_input = to_bot_input(message)
    assert bot_input is not None
    return bot_input


def tracker_from_webhook(fixture: str) -> Tracker:
    """The tracker after the WhatsApp channel handed the fixture's message to Rasa."""
    bot_input = webhook_input(fixture)
    return tracker_for(bot_input.text, metadata=bot_input.metadata)


async def run(action: Action, tracker: Tracker) -> tuple[Messages, Events]:
    dispatcher = CollectingDispatcher()
    events = await action.run(dispatcher, tracker, DOMAIN.as_dict())
    messages: Messages = dispatcher.messages
    return messages, events


def customs(messages: Messages) -> list[dict[str, Any]]:
    """The Cloud API bodies sent with `json_message`, each checked as the channel would send it."""
    bodies = [message["custom"] for message in messages if message.get("custom")]
    for body in bodies:
        assert_sendable(body)
    return bodies


def texts(messages: Messages) -> str:
    return "\n".join(message["text"] for message in messages if message.get("text"))


def slot_events(events: Events) -> dict[str, Any]:
    return {event["name"]: event["value"] for event in events if event["event"] == "slot"}


# --------------------------------------------------------------------------------------------
# Meta's limits, checked by the independent checker of tests/support.


def assert_label(label: str, limit: int) -> None:
    """Fits, and was not shortened by a builder (the bot's own content is written to fit)."""
    assert text_length(label) <= limit, label
    assert not label.endswith("…"), f"{label!r} was shortened to fit"


def labels(interactive: Mapping[str, Any]) -> list[tuple[str, int]]:
    """The labels of an interactive message that builders shorten, with their limits."""
    action = interactive["action"]
    found: list[tuple[str, int]] = []
    if interactive["type"] == "list":
        found.append((action["button"], limits.LIST_BUTTON_LABEL))
        for section in action["sections"]:
            if "title" in section:
                found.append((section["title"], limits.LIST_SECTION_TITLE))
            for row in section["rows"]:
                found.append((row["title"], limits.LIST_ROW_TITLE))
                if "description" in row:
                    found.append((row["description"], limits.LIST_ROW_DESCRIPTION))
    elif interactive["type"] == "button":
        found += [(b["reply"]["title"], limits.REPLY_BUTTON_TITLE) for b in action["buttons"]]
    elif interactive["type"] == "cta_url":
        found.append((action["parameters"]["display_text"], limits.CTA_DISPLAY_TEXT))
    return found


def assert_sendable(body: Mapping[str, Any]) -> None:
    """A custom body as an action sends it: unaddressed (the channel fills in the recipient),
    within every limit once addressed, and with no label that had to be shortened."""
    assert "to" not in body and "recipient" not in body, "the channel addresses custom bodies"
    assert_within_limits(builders.complete(body, SENDER))
    if body["type"] == "interactive":
        for label, limit in labels(body["interactive"]):
            assert_label(label, limit)
    if body["type"] == "image":
        assert body["image"]["link"].startswith("https://")


# --------------------------------------------------------------------------------------------
# Greeting.


async def test_greets_in_portuguese_by_whatsapp_profile_name() -> None:
    # "oi" from Maria Silva: NLU says saudar, the channel's metadata says who she is.
    tracker = tracker_for("/saudar", metadata=webhook_input("text").metadata)

    messages, events = await run(actions.ActionSaudar(), tracker)

    assert texts(messages) == "Olá, Maria! 👋 Eu sou o assistente virtual da Loja Exemplo."
    assert events == []


async def test_greets_in_english_after_an_english_greeting() -> None:
    metadata = {"whatsapp": {"profile_name": "John Smith"}}

    messages, _ = await run(actions.ActionSaudar(), tracker_for("/greet_en", metadata=metadata))

    assert texts(messages).startswith("Hi, John! 👋 I'm the virtual assistant of Loja Exemplo.")


async def test_greets_without_a_name_on_other_channels() -> None:
    messages, _ = await run(actions.ActionSaudar(), tracker_for("/saudar", channel="rest"))

    assert texts(messages) == "Olá! 👋 Eu sou o assistente virtual da Loja Exemplo."


@pytest.mark.parametrize(
    ("whatsapp", "expected"),
    [
        ({"profile_name": "   "}, None),
        ({"profile_name": None, "contact": {"profile": {"name": "Ana Costa"}}}, "Ana"),
        ({"profile_name": "Bartolomeu" * 5}, "BartolomeuBartolomeuBart…"),
        ({"profile_name": 42}, None),
        ({"contact": "not an object"}, None),
    ],
)
def test_first_name_copes_with_any_profile(whatsapp: dict[str, Any], expected: str | None) -> None:
    tracker = tracker_for("/saudar", metadata={"whatsapp": whatsapp})

    assert actions.first_name(tracker) == expected


# --------------------------------------------------------------------------------------------
# Shared location.


async def test_shared_location_gets_the_nearest_store_as_a_pin() -> None:
    tracker = tracker_from_webhook("location")  # MASP, Av. Paulista

    messages, events = await run(actions.ActionLojaMaisProxima(), tracker)

    text = texts(messages)
    assert "📍 Você está em “MASP - Av. Paulista, 1578" in text
    assert "A loja mais próxima é a *Loja Paulista*, a 10 m de você" in text
    [pin] = customs(messages)
    paulista = actions.LOJAS[0]
    assert pin["location"] == {
        "latitude": paulista.latitude,
        "longitude": paulista.longitude,
        "name": "Loja Paulista",
        "address": paulista.endereco,
    }
    assert slot_events(events) == {"latitude": -23.561414, "longitude": -46.655881}


@pytest.mark.parametrize("loja", actions.LOJAS, ids=lambda loja: loja.nome)
async def test_each_store_is_the_nearest_one_at_its_own_door(loja: actions.Loja) -> None:
    latitude, longitude = loja.latitude + 0.001, loja.longitude  # about 111 m north
    trigger = f'/whatsapp_location{{"latitude": {latitude}, "longitude": {longitude}}}'

    messages, _ = await run(actions.ActionLojaMaisProxima(), tracker_for(trigger))

    assert f"📍 Recebi sua localização. A loja mais próxima é a *{loja.nome}*, a 110 m" in texts(
        messages
    )
    [pin] = customs(messages)
    assert pin["location"]["name"] == loja.nome


async def test_a_location_far_from_every_store_gets_the_delivery_offer() -> None:
    rio = '/whatsapp_location{"latitude": -22.9068, "longitude": -43.1729}'

    messages, _ = await run(actions.ActionLojaMaisProxima(), tracker_for(rio))

    expected_km = min(
        actions.distancia_km(-22.9068, -43.1729, loja.latitude, loja.longitude)
        for loja in actions.LOJAS
    )
    assert 330 < expected_km < 370
    assert f"a {expected_km:.0f} km daí. Mas entregamos em todo o Brasil" in texts(messages)
    assert "Ainda não temos loja na sua região" in texts(messages)


async def test_location_on_other_channels_links_to_directions() -> None:
    trigger = '/whatsapp_location{"latitude": -23.6, "longitude": -46.67}'

    messages, _ = await run(actions.ActionLojaMaisProxima(), tracker_for(trigger, channel="rest"))

    assert customs(messages) == []
    [button] = [button for message in messages for button in message["buttons"]]
    moema = actions.LOJAS[2]
    assert button["url"] == (
        f"https://www.google.com/maps/dir/?api=1&destination={moema.latitude},{moema.longitude}"
    )


@pytest.mark.parametrize(
    "trigger",
    [
        "/whatsapp_location",
        '/whatsapp_location{"latitude": "norte", "longitude": -46.6}',
        '/whatsapp_location{"latitude": 123.0, "longitude": -46.6}',
        '/whatsapp_location{"latitude": -23.5, "longitude": true}',
    ],
)
async def test_an_unreadable_location_is_asked_for_again(trigger: str) -> None:
    messages, events = await run(actions.ActionLojaMaisProxima(), tracker_for(trigger))

    assert texts(messages) == "Não consegui ler a sua localização. 😕"
    assert messages[-1]["response"] == "utter_pedir_localizacao"
    assert events == []


async def test_a_remembered_location_is_used_when_the_message_has_none() -> None:
    tracker = tracker_for("/whatsapp_location", slots={"latitude": -23.54, "longitude": -46.58})

    messages, _ = await run(actions.ActionLojaMaisProxima(), tracker)

    assert "*Loja Tatuapé*" in texts(messages)


def test_haversine_matches_the_length_of_a_degree_of_meridian() -> None:
    one_degree = math.pi * actions.EARTH_RADIUS_KM / 180

    assert actions.distancia_km(0, 0, 1, 0) == pytest.approx(one_degree)
    assert actions.distancia_km(-23.5, -46.6, -24.5, -46.6) == pytest.approx(one_degree)
    assert actions.distancia_km(0, 0, 0, 1) == pytest.approx(one_degree)  # on the equator


coordinates = st.tuples(
    st.floats(min_value=-90, max_value=90), st.floats(min_value=-180, max_value=180)
)


@given(coordinates, coordinates)
def test_haversine_is_a_distance(a: tuple[float, float], b: tuple[float, float]) -> None:
    ab = actions.distancia_km(*a, *b)

    assert ab == pytest.approx(actions.distancia_km(*b, *a), abs=1e-6)
    assert 0 <= ab <= math.pi * actions.EARTH_RADIUS_KM + 1e-6
    assert actions.distancia_km(*a, *a) == pytest.approx(0, abs=1e-6)


@pytest.mark.parametrize(
    ("km", "expected"),
    [(0.0, "10 m"), (0.344, "340 m"), (0.994, "990 m"), (0.996, "1,0 km"), (2.44, "2,4 km"),
     (99.94, "99,9 km"), (99.96, "100 km"), (357.4, "357 km")],
)  # fmt: skip
def test_distances_are_written_the_brazilian_way(km: float, expected: str) -> None:
    assert actions.formatar_distancia(km) == expected


# --------------------------------------------------------------------------------------------
# Photos, voice notes and other media.


async def test_a_photo_is_acknowledged_with_its_caption_and_a_reaction() -> None:
    tracker = tracker_from_webhook("image")

    messages, _ = await run(actions.ActionReceberMidia(), tracker)

    assert texts(messages).startswith(
        "Recebi sua foto 📷 com a legenda “This is the damaged box”. Ainda não consigo analisar"
    )
    [reaction] = customs(messages)
    wamid = tracker.latest_message["metadata"]["whatsapp"]["message"]["id"]
    assert reaction["reaction"] == {"message_id": wamid, "emoji": "👍"}


async def test_a_photo_without_caption_on_another_channel_gets_no_reaction() -> None:
    tracker = tracker_for('/whatsapp_image{"media_id": "1"}', channel="rest")

    messages, _ = await run(actions.ActionReceberMidia(), tracker)

    assert texts(messages).startswith("Recebi sua foto 📷. Ainda não consigo analisar imagens")
    assert customs(messages) == []


async def test_a_long_caption_is_quoted_shortened() -> None:
    caption = "muito " * 100
    trigger = f"/whatsapp_image{json.dumps({'media_id': '1', 'caption': caption})}"

    messages, _ = await run(actions.ActionReceberMidia(), tracker_for(trigger))

    quoted = texts(messages).split("“")[1].split("”")[0]
    assert quoted.endswith("…") and text_length(quoted) <= 200


async def test_a_voice_note_is_received_but_not_transcribed() -> None:
    messages, _ = await run(actions.ActionReceberMidia(), tracker_from_webhook("audio_voice"))

    assert texts(messages) == (
        "Recebi sua mensagem de voz 🎤, mas ainda não consigo transcrever áudios. "
        "Pode escrever sua dúvida em texto?"
    )


async def test_an_audio_file_is_not_called_a_voice_note() -> None:
    trigger = '/whatsapp_audio{"media_id": "1", "mime_type": "audio/mpeg", "voice": false}'

    messages, _ = await run(actions.ActionReceberMidia(), tracker_for(trigger))

    assert texts(messages).startswith("Recebi seu arquivo de áudio 🎵")


@pytest.mark.parametrize(
    ("fixture", "expected"),
    [
        ("document", "Recebi o documento “invoice-1234.pdf” 📄."),
        ("sticker", "Adorei a figurinha! 😄"),
    ],
)
async def test_documents_and_stickers_are_acknowledged(fixture: str, expected: str) -> None:
    messages, _ = await run(actions.ActionReceberMidia(), tracker_from_webhook(fixture))

    assert texts(messages).startswith(expected)
    assert customs(messages) == []


async def test_a_video_is_acknowledged_with_its_caption() -> None:
    trigger = '/whatsapp_video{"media_id": "1", "caption": "unboxing"}'

    messages, _ = await run(actions.ActionReceberMidia(), tracker_for(trigger))

    assert texts(messages) == "Recebi seu vídeo 🎬 com a legenda “unboxing”. Obrigado!"


async def test_a_shared_contact_is_named() -> None:
    messages, _ = await run(actions.ActionReceberContato(), tracker_from_webhook("contacts"))

    assert texts(messages) == (
        "Obrigado! Recebi o contato de Ana Costa (+5511912345678). "
        "Vamos falar com essa pessoa em breve."
    )


async def test_an_order_is_acknowledged_with_its_total() -> None:
    # Two lines: 1 x 349.90 and 2 x 39.90.
    messages, _ = await run(actions.ActionReceberPedido(), tracker_from_webhook("order"))

    assert texts(messages).startswith(
        "🛒 Recebi seu carrinho com 2 produtos no valor de R$ 429,70!"
    )


@pytest.mark.parametrize(
    ("valor", "expected"),
    [(0.5, "R$ 0,50"), (429.7, "R$ 429,70"), (1234.5, "R$ 1.234,50"), (1e6, "R$ 1.000.000,00")],
)
def test_amounts_are_written_the_brazilian_way(valor: float, expected: str) -> None:
    assert actions.formatar_reais(valor) == expected


def test_an_order_in_another_currency_has_no_total() -> None:
    message = {"order": {"product_items": [{"quantity": 1, "item_price": 5, "currency": "USD"}]}}

    assert actions.total_do_pedido(message) is None


# --------------------------------------------------------------------------------------------
# Buttons and lists: plans, categories, products.


def domain_buttons(response: str) -> list[dict[str, Any]]:
    """The response's buttons as Rasa sends them: placeholders filled, `{{` `}}` unescaped."""
    from rasa.core.nlg.interpolator import interpolate

    [variation] = DOMAIN.responses[response]
    buttons: list[dict[str, Any]] = interpolate(copy.deepcopy(variation["buttons"]), {})
    return buttons


@pytest.mark.parametrize("button", domain_buttons("utter_planos"), ids=lambda b: b["title"])
async def test_each_plan_button_leads_to_a_sign_up_cta(button: dict[str, Any]) -> None:
    tracker = tracker_for(button["payload"])

    messages, events = await run(actions.ActionEscolherPlano(), tracker)

    plano = actions.PLANOS[tracker.get_slot("plano")]
    assert texts(messages).startswith(f"Ótimo, você escolheu o plano *{plano.nome}*")
    [cta] = customs(messages)
    assert cta["interactive"]["type"] == "cta_url"
    assert cta["interactive"]["header"] == {"type": "text", "text": f"Plano {plano.nome}"}
    assert slot_events(events) == {"plano": tracker.get_slot("plano")}


async def test_a_plan_on_other_channels_is_a_url_button() -> None:
    tracker = tracker_for('/escolher_plano{"plano":"Básico"}', channel="rest")

    messages, events = await run(actions.ActionEscolherPlano(), tracker)

    assert customs(messages) == []
    [button] = [button for message in messages for button in message["buttons"]]
    assert button == {"title": "Assinar agora", "url": f"{actions.SITE}/assinar?plano=basico"}
    assert slot_events(events) == {"plano": "basico"}


@pytest.mark.parametrize(
    ("action", "trigger", "response"),
    [
        (actions.ActionEscolherPlano(), '/escolher_plano{"plano":"ouro"}', "utter_planos"),
        (actions.ActionEscolherPlano(), "/escolher_plano", "utter_planos"),
        (
            actions.ActionMostrarCategoria(),
            '/escolher_categoria{"categoria":9}',
            "utter_categorias",
        ),
        (actions.ActionEscolherProduto(), '/escolher_produto{"produto":"x"}', "utter_categorias"),
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

    messages, events = await run(actions.ActionMostrarCategoria(), tracker)

    [body] = customs(messages)
    interactive = body["interactive"]
    assert interactive["type"] == "list"
    assert interactive["body"]["text"].startswith(f"*{button['title']}*")
    rows = [row for section in interactive["action"]["sections"] for row in section["rows"]]
    categoria = tracker.get_slot("categoria")
    produtos = [p for p in actions.PRODUTOS if p.categoria == categoria]
    assert sorted(row["title"] for row in rows) == sorted(p.nome for p in produtos)
    for row in rows:  # what comes back when the user picks the row
        parsed = parse_like_rasa(row["id"])
        assert parsed["intent"]["name"] == "escolher_produto"
        [entity] = parsed["entities"]
        assert entity["entity"] == "produto" and entity["value"] in actions.PRODUTOS_POR_CHAVE
    assert slot_events(events) == {"categoria": categoria}


async def test_a_category_on_other_channels_is_text_with_buttons() -> None:
    tracker = tracker_for('/escolher_categoria{"categoria":"livros"}', channel="rest")

    messages, _ = await run(actions.ActionMostrarCategoria(), tracker)

    assert customs(messages) == []
    [message] = messages
    assert [button["payload"] for button in message["buttons"]] == [
        '/escolher_produto{"produto":"romance"}',
        '/escolher_produto{"produto":"poesia"}',
        '/escolher_produto{"produto":"hq"}',
    ]


@pytest.mark.parametrize("produto", actions.PRODUTOS, ids=lambda p: p.chave)
async def test_each_product_is_shown_as_an_image_and_a_cta(produto: actions.Produto) -> None:
    tracker = tracker_for(actions.payload("escolher_produto", produto=produto.chave))

    messages, events = await run(actions.ActionEscolherProduto(), tracker)

    image, cta = customs(messages)
    assert image["type"] == "image"
    assert image["image"]["caption"] == f"*{produto.nome}*\n{produto.descricao}\n{produto.preco}"
    assert cta["interactive"]["action"]["parameters"]["url"] == produto.url
    assert slot_events(events) == {"produto": produto.chave}


async def test_a_product_on_other_channels_is_text_image_and_url_button() -> None:
    tracker = tracker_for('/escolher_produto{"produto":"bola"}', channel="rest")

    messages, _ = await run(actions.ActionEscolherProduto(), tracker)

    [message] = messages
    assert message["image"] == actions.PRODUTOS_POR_CHAVE["bola"].imagem
    assert message["buttons"] == [{"title": "Comprar", "url": f"{actions.SITE}/produtos/bola"}]


def test_list_row_payloads_stay_short() -> None:
    longest = max(
        (actions.payload("escolher_produto", produto=p.chave) for p in actions.PRODUTOS), key=len
    )
    assert len(longest) <= limits.LIST_ROW_ID


# --------------------------------------------------------------------------------------------
# The domain and the actions agree.


def test_every_domain_action_is_implemented() -> None:
    implemented = {
        cls().name()
        for cls in vars(actions).values()
        if isinstance(cls, type) and issubclass(cls, Action) and cls is not Action
    }
    custom = {name for name in DOMAIN.user_actions if not name.startswith("utter_")}

    assert custom == implemented


def test_categories_of_the_domain_are_in_the_catalogue() -> None:
    for button in domain_buttons("utter_categorias"):
        [entity] = parse_like_rasa(button["payload"])["entities"]
        assert actions.CATEGORIAS[entity["value"]] == button["title"]
        assert any(p.categoria == entity["value"] for p in actions.PRODUTOS)


def test_domain_buttons_fit_whatsapp_without_shortening() -> None:
    """Button payloads come back as they are, so they must fit a list row id (200); titles fit
    reply buttons (20) with 1-3 buttons, list rows (24) with 4-10."""
    from rasa.core.nlg.interpolator import interpolate

    for name, variations in DOMAIN.responses.items():
        for variation in variations:
            buttons = interpolate(copy.deepcopy(variation.get("buttons") or []), {})
            title_limit = limits.REPLY_BUTTON_TITLE if len(buttons) <= 3 else limits.LIST_ROW_TITLE
            assert len(buttons) <= limits.LIST_ROWS_MAX, name
            for button in buttons:
                assert_label(button["title"], title_limit)
                if "url" in button:
                    assert button["url"].startswith("https://")
                    continue
                assert len(button["payload"]) <= limits.LIST_ROW_ID
                parsed = parse_like_rasa(button["payload"])  # a known intent, valid JSON
                assert ("{" in button["payload"]) == bool(parsed["entities"]), button["payload"]


def test_whatsapp_variations_are_valid_cloud_api_bodies() -> None:
    whatsapp_only = [
        (name, variation)
        for name, variations in DOMAIN.responses.items()
        for variation in variations
        if variation.get("channel") == "whatsapp"
    ]
    assert [name for name, _ in whatsapp_only] == ["utter_pedir_localizacao"]
    for name, variation in whatsapp_only:
        assert_sendable(variation["custom"])
        assert any(not v.get("channel") for v in DOMAIN.responses[name]), "no fallback"
