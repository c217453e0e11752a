"""Custom actions of Loja Exemplo, the sample bot (a fictional shop in São Paulo).

They show what a bot can do on WhatsApp beyond domain responses:

- messages built with the channel's own builders (`connectors.whatsapp.builders`): a list with
  sections, a location pin, a CTA URL button, an image, a reaction. An action sends one with
  `dispatcher.utter_message(json_message=body)`; the WhatsApp channel sends it as given, filling
  in `messaging_product` and the recipient, so the builders are called without `to`;
- the raw WhatsApp data that the channel puts in each user message's metadata
  (`tracker.latest_message["metadata"]["whatsapp"]`: profile name, raw message, ...);
- the entities the channel sends for what is not text, such as `/whatsapp_location{"latitude":
  -23.56, "longitude": -46.65}` for a shared location.

On other channels (REST, `rasa shell`, tests) the same actions answer with text and Rasa buttons,
since a Cloud API body means nothing there.
"""

import json
import math
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import quote_plus

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from connectors.whatsapp import builders
from connectors.whatsapp.textfit import fit_label

WHATSAPP: Final = "whatsapp"
"""`input_channel` of the messages that come from the WhatsApp channel."""

SITE: Final = "https://example.com/loja"
EARTH_RADIUS_KM: Final = 6371.0088
"""Mean Earth radius (IUGG), the usual choice for haversine distances."""
LONGE_KM: Final = 50.0
"""Farther than this from every store, the user is told that we deliver instead."""

Events = list[dict[str, Any]]


# --------------------------------------------------------------------------------------------
# Fake catalogue: stores, plans, categories and products.


@dataclass(frozen=True, slots=True)
class Loja:
    nome: str
    endereco: str
    latitude: float
    longitude: float


@dataclass(frozen=True, slots=True)
class Plano:
    nome: str
    preco: str
    beneficios: str


@dataclass(frozen=True, slots=True)
class Produto:
    chave: str
    nome: str
    categoria: str
    preco: str
    descricao: str
    novidade: bool = False

    @property
    def imagem(self) -> str:
        """A placeholder picture with the product's name (PNG: WhatsApp takes JPEG or PNG)."""
        return f"https://placehold.co/800x600/png?text={quote_plus(self.nome)}"

    @property
    def url(self) -> str:
        return f"{SITE}/produtos/{self.chave}"


LOJAS: Final = (
    Loja("Loja Paulista", "Av. Paulista, 1578 - Bela Vista", -23.5614, -46.6559),
    Loja("Loja Pinheiros", "Rua dos Pinheiros, 870 - Pinheiros", -23.5665, -46.6862),
    Loja("Loja Moema", "Av. Ibirapuera, 3103 - Moema", -23.6099, -46.6663),
    Loja("Loja Santana", "Rua Voluntários da Pátria, 1500 - Santana", -23.5034, -46.6262),
    Loja("Loja Tatuapé", "Rua Tuiuti, 2000 - Tatuapé", -23.5405, -46.5764),
)
HORARIO: Final = "Aberta de segunda a sábado, das 9h às 21h."

PLANOS: Final = {
    "basico": Plano("Básico", "R$ 29,90/mês", "Descontos exclusivos em todas as compras."),
    "plus": Plano("Plus", "R$ 49,90/mês", "Descontos exclusivos e frete grátis."),
    "premium": Plano(
        "Premium", "R$ 89,90/mês", "Descontos exclusivos, frete grátis e suporte 24h."
    ),
}

CATEGORIAS: Final = {
    "eletronicos": "Eletrônicos",
    "moda": "Moda",
    "casa": "Casa e cozinha",
    "esportes": "Esportes",
    "livros": "Livros",
    "beleza": "Beleza",
}
"""Keys are the `categoria` values of the `utter_categorias` buttons in domain.yml."""

PRODUTOS: Final = (
    Produto("fone-bluetooth", "Fone Bluetooth", "eletronicos", "R$ 199,90", "Até 30 h de bateria"),
    Produto("smartwatch", "Smartwatch Fit", "eletronicos", "R$ 349,90", "Monitor cardíaco e GPS"),
    Produto("caixa-som", "Caixa de som portátil", "eletronicos", "R$ 249,90", "À prova d'água"),
    Produto("carregador", "Carregador turbo", "eletronicos", "R$ 89,90", "USB-C, 30 W", True),
    Produto("camiseta", "Camiseta básica", "moda", "R$ 49,90", "100% algodão"),
    Produto("tenis", "Tênis casual", "moda", "R$ 229,90", "Do 34 ao 44"),
    Produto("jaqueta", "Jaqueta jeans", "moda", "R$ 189,90", "Coleção inverno", True),
    Produto("cafeteira", "Cafeteira elétrica", "casa", "R$ 159,90", "Até 30 xícaras"),
    Produto("panelas", "Jogo de panelas", "casa", "R$ 299,90", "5 peças antiaderentes"),
    Produto("air-fryer", "Air fryer 4 L", "casa", "R$ 399,90", "Sem óleo", True),
    Produto("bola", "Bola de futebol", "esportes", "R$ 99,90", "Tamanho oficial"),
    Produto("tapete-yoga", "Tapete de yoga", "esportes", "R$ 79,90", "Antiderrapante"),
    Produto("garrafa", "Garrafa térmica", "esportes", "R$ 69,90", "Gelada por 24 h", True),
    Produto("romance", "Dom Casmurro", "livros", "R$ 29,90", "Machado de Assis"),
    Produto("poesia", "Antologia poética", "livros", "R$ 39,90", "Carlos Drummond de Andrade"),
    Produto("hq", "Turma da Mônica", "livros", "R$ 24,90", "Edição de colecionador", True),
    Produto("protetor", "Protetor solar FPS 50", "beleza", "R$ 59,90", "Toque seco"),
    Produto("perfume", "Perfume floral", "beleza", "R$ 189,90", "100 ml"),
    Produto("hidratante", "Hidratante corporal", "beleza", "R$ 39,90", "Pele seca", True),
)
PRODUTOS_POR_CHAVE: Final = {produto.chave: produto for produto in PRODUTOS}


# --------------------------------------------------------------------------------------------
# Helpers.


def is_whatsapp(tracker: Tracker) -> bool:
    """Whether the user writes from WhatsApp, where Cloud API bodies can be sent."""
    channel: object = tracker.get_latest_input_channel()
    return channel == WHATSAPP


def whatsapp_metadata(tracker: Tracker) -> Mapping[str, Any]:
    """`metadata["whatsapp"]` of the latest user message, or {} (other channels, tests)."""
    latest: object = tracker.latest_message
    metadata = latest.get("metadata") if isinstance(latest, Mapping) else None
    whatsapp = metadata.get(WHATSAPP) if isinstance(metadata, Mapping) else None
    return whatsapp if isinstance(whatsapp, Mapping) else {}


def first_name(tracker: Tracker) -> str | None:
    """The user's first name from their WhatsApp profile, if the channel passed it on.

    The profile name is whatever the user typed in WhatsApp: only its first word is used, and a
    long one is shortened.
    """
    metadata = whatsapp_metadata(tracker)
    name = metadata.get("profile_name")
    if not isinstance(name, str):
        contact = metadata.get("contact")
        profile = contact.get("profile") if isinstance(contact, Mapping) else None
        name = profile.get("name") if isinstance(profile, Mapping) else None
    if not isinstance(name, str) or not name.split():
        return None
    return fit_label(name.split()[0], 25)


def latest_intent(tracker: Tracker) -> str | None:
    latest: object = tracker.latest_message
    intent = latest.get("intent") if isinstance(latest, Mapping) else None
    name = intent.get("name") if isinstance(intent, Mapping) else None
    return name if isinstance(name, str) else None


def latest_entity(tracker: Tracker, name: str) -> Any:
    """The value of entity `name` in the latest user message, or None."""
    return next(tracker.get_latest_entity_values(name), None)


def entity_or_slot(tracker: Tracker, name: str) -> Any:
    """The entity of the latest message, else the slot of the same name."""
    value = latest_entity(tracker, name)
    return value if value is not None else tracker.get_slot(name)


def as_text(value: object) -> str | None:
    """A non-blank string, or None: entity values come from JSON and may be anything."""
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        stripped = str(value).strip()
        return stripped or None
    return None


def as_float(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def as_bool(value: object) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes", "sim")
    return value is True


def chave(value: object) -> str | None:
    """A catalogue key from what the user sent: lower case, no accents ("Básico" -> "basico")."""
    text = as_text(value)
    if text is None:
        return None
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(char for char in decomposed if not unicodedata.combining(char))


def citar(text: str, limit: int = 200) -> str:
    """`text` between quotes, shortened: for echoing what the user wrote."""
    return f"“{fit_label(' '.join(text.split()), limit)}”"


def payload(intent: str, **entities: str) -> str:
    """A button or list row payload that Rasa parses without NLU: `/intent{"key":"value"}`.

    Compact JSON keeps it short: a list row id takes at most 200 characters.
    """
    if not entities:
        return f"/{intent}"
    return f"/{intent}{json.dumps(entities, ensure_ascii=False, separators=(',', ':'))}"


def distancia_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance by the haversine formula, in kilometres."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi = phi2 - phi1
    dlambda = math.radians(lon2 - lon1)
    h = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlambda / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def loja_mais_proxima(latitude: float, longitude: float) -> tuple[Loja, float]:
    """The nearest store and its distance in km."""
    distancias = [
        (loja, distancia_km(latitude, longitude, loja.latitude, loja.longitude)) for loja in LOJAS
    ]
    return min(distancias, key=lambda pair: pair[1])


def formatar_distancia(km: float) -> str:
    """A distance as people say it in Brazil: "350 m", "2,4 km", "357 km"."""
    metros = max(10, round(km * 1000, -1))
    if metros < 1000:
        return f"{metros:.0f} m"
    if round(km, 1) < 100:
        return f"{km:.1f} km".replace(".", ",")
    return f"{km:.0f} km"


def como_chegar(loja: Loja) -> str:
    return f"https://www.google.com/maps/dir/?api=1&destination={loja.latitude},{loja.longitude}"


def total_do_pedido(message: object) -> float | None:
    """Sum of quantity x price of a raw order message, if every line is in reais."""
    order = message.get("order") if isinstance(message, Mapping) else None
    items = order.get("product_items") if isinstance(order, Mapping) else None
    if not isinstance(items, list) or not items:
        return None
    total = 0.0
    for item in items:
        if not isinstance(item, Mapping) or item.get("currency") != "BRL":
            return None
        quantidade = as_float(item.get("quantity"))
        preco = as_float(item.get("item_price"))
        if quantidade is None or preco is None:
            return None
        total += quantidade * preco
    return total


def formatar_reais(valor: float) -> str:
    """An amount the Brazilian way: "R$ 1.234,50"."""
    inteiro, centavos = f"{valor:,.2f}".split(".")
    return f"R$ {inteiro.replace(',', '.')},{centavos}"


# --------------------------------------------------------------------------------------------
# Actions.


class ActionSaudar(Action):
    """Greets by the WhatsApp profile name, in English when the user greeted in English.

    The rules follow it with `utter_menu`, which stays in Portuguese.
    """

    def name(self) -> str:
        return "action_saudar"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Events:
        nome = first_name(tracker)
        if latest_intent(tracker) == "greet_en":
            hello = f"Hi, {nome}! 👋" if nome else "Hi! 👋"
            dispatcher.utter_message(
                text=f"{hello} I'm the virtual assistant of Loja Exemplo. I speak Brazilian "
                "Portuguese, so the menu below is in Portuguese: just tap an option."
            )
        else:
            ola = f"Olá, {nome}! 👋" if nome else "Olá! 👋"
            dispatcher.utter_message(text=f"{ola} Eu sou o assistente virtual da Loja Exemplo.")
        return []


class ActionEscolherPlano(Action):
    """Confirms the plan chosen with a reply button and links to the sign-up page.

    On WhatsApp the link is a CTA URL message (`builders.cta_url`).
    """

    def name(self) -> str:
        return "action_escolher_plano"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Events:
        key = chave(entity_or_slot(tracker, "plano"))
        if key is None or (plano := PLANOS.get(key)) is None:
            dispatcher.utter_message(response="utter_planos")
            return [SlotSet("plano", None)]
        dispatcher.utter_message(
            text=f"Ótimo, você escolheu o plano *{plano.nome}* ({plano.preco}). {plano.beneficios}"
        )
        url = f"{SITE}/assinar?plano={key}"
        body = "Para concluir a assinatura, é só tocar no botão abaixo."
        if is_whatsapp(tracker):
            dispatcher.utter_message(
                json_message=builders.cta_url(
                    body, "Assinar agora", url, header=f"Plano {plano.nome}"
                )
            )
        else:
            dispatcher.utter_message(text=body, buttons=[{"title": "Assinar agora", "url": url}])
        return [SlotSet("plano", key)]


class ActionMostrarCategoria(Action):
    """Lists the products of the category chosen in `utter_categorias`.

    On WhatsApp: a list message with two sections (`builders.list_message`); each row's id is the
    payload that comes back when the user picks it.
    """

    def name(self) -> str:
        return "action_mostrar_categoria"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Events:
        key = chave(entity_or_slot(tracker, "categoria"))
        if key is None or (categoria := CATEGORIAS.get(key)) is None:
            dispatcher.utter_message(response="utter_categorias")
            return [SlotSet("categoria", None)]
        produtos = [produto for produto in PRODUTOS if produto.categoria == key]
        body = f"*{categoria}*: escolha um produto para ver a foto e o preço."
        if is_whatsapp(tracker):
            sections: list[builders.Section] = []
            for title, novidade in (("Mais vendidos", False), ("Novidades", True)):
                rows = [
                    (
                        payload("escolher_produto", produto=produto.chave),
                        produto.nome,
                        f"{produto.preco} · {produto.descricao}",
                    )
                    for produto in produtos
                    if produto.novidade is novidade
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
                        "title": f"{produto.nome} ({produto.preco})",
                        "payload": payload("escolher_produto", produto=produto.chave),
                    }
                    for produto in produtos
                ],
            )
        return [SlotSet("categoria", key)]


class ActionEscolherProduto(Action):
    """Shows the product picked from the list: its picture, price and a link to buy it.

    On WhatsApp: an image with a caption (`builders.image`), then a CTA URL (`builders.cta_url`).
    """

    def name(self) -> str:
        return "action_escolher_produto"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Events:
        key = chave(entity_or_slot(tracker, "produto"))
        if key is None or (produto := PRODUTOS_POR_CHAVE.get(key)) is None:
            dispatcher.utter_message(text="Não encontrei esse produto. Veja as categorias:")
            dispatcher.utter_message(response="utter_categorias")
            return [SlotSet("produto", None)]
        legenda = f"*{produto.nome}*\n{produto.descricao}\n{produto.preco}"
        if is_whatsapp(tracker):
            dispatcher.utter_message(
                json_message=builders.image(link=produto.imagem, caption=legenda)
            )
            dispatcher.utter_message(
                json_message=builders.cta_url(
                    "Gostou? Compre pelo site, com entrega para todo o Brasil.",
                    "Comprar",
                    produto.url,
                )
            )
        else:
            dispatcher.utter_message(
                text=legenda,
                image=produto.imagem,
                buttons=[{"title": "Comprar", "url": produto.url}],
            )
        return [SlotSet("produto", key)]


class ActionLojaMaisProxima(Action):
    """Answers a shared location with the nearest store and the distance to it.

    The WhatsApp channel sends a shared location as `/whatsapp_location{"latitude": ...,
    "longitude": ..., "location_name": ..., "location_address": ...}` (name and address only for
    a place, not for the user's own position). On WhatsApp the store comes as a location pin
    (`builders.location`) that opens in the maps app; elsewhere as a directions link.
    """

    def name(self) -> str:
        return "action_loja_mais_proxima"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Events:
        latitude = as_float(entity_or_slot(tracker, "latitude"))
        longitude = as_float(entity_or_slot(tracker, "longitude"))
        if (
            latitude is None
            or longitude is None
            or not -90 <= latitude <= 90
            or not -180 <= longitude <= 180
        ):
            dispatcher.utter_message(text="Não consegui ler a sua localização. 😕")
            dispatcher.utter_message(response="utter_pedir_localizacao")
            return []

        nome = as_text(latest_entity(tracker, "location_name"))
        endereco = as_text(latest_entity(tracker, "location_address"))
        lugar = " - ".join(part for part in (nome, endereco) if part)
        onde = f"📍 Você está em {citar(lugar)}." if lugar else "📍 Recebi sua localização."

        loja, km = loja_mais_proxima(latitude, longitude)
        distancia = formatar_distancia(km)
        if km > LONGE_KM:
            resposta = (
                f"{onde} Ainda não temos loja na sua região: a mais próxima é a *{loja.nome}*, "
                f"a {distancia} daí. Mas entregamos em todo o Brasil pelo site!"
            )
        else:
            resposta = (
                f"{onde} A loja mais próxima é a *{loja.nome}*, a {distancia} de você:\n"
                f"{loja.endereco}, São Paulo - SP\n{HORARIO}"
            )
        dispatcher.utter_message(text=resposta)
        if is_whatsapp(tracker):
            dispatcher.utter_message(
                json_message=builders.location(
                    loja.latitude, loja.longitude, name=loja.nome, address=loja.endereco
                )
            )
        else:
            dispatcher.utter_message(
                text="Como chegar:", buttons=[{"title": "Abrir no mapa", "url": como_chegar(loja)}]
            )
        return [SlotSet("latitude", latitude), SlotSet("longitude", longitude)]


class ActionReceberMidia(Action):
    """Acknowledges a photo, voice note, audio file, video, document or sticker.

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
        legenda = f" com a legenda {citar(caption)}" if caption else ""
        if intent == "whatsapp_image":
            resposta = (
                f"Recebi sua foto 📷{legenda}. Ainda não consigo analisar imagens, "
                "mas ela fica registrada no seu atendimento."
            )
            self._reagir(dispatcher, tracker, "👍")
        elif intent == "whatsapp_audio":
            if as_bool(latest_entity(tracker, "voice")):
                resposta = (
                    "Recebi sua mensagem de voz 🎤, mas ainda não consigo transcrever áudios. "
                    "Pode escrever sua dúvida em texto?"
                )
            else:
                resposta = (
                    "Recebi seu arquivo de áudio 🎵, mas ainda não consigo ouvir áudios. "
                    "Pode escrever sua dúvida em texto?"
                )
        elif intent == "whatsapp_video":
            resposta = f"Recebi seu vídeo 🎬{legenda}. Obrigado!"
        elif intent == "whatsapp_document":
            filename = as_text(latest_entity(tracker, "filename"))
            nome = f" {citar(filename, 80)}" if filename else ""
            resposta = f"Recebi o documento{nome} 📄. Vamos analisar e te respondemos por aqui."
        elif intent == "whatsapp_sticker":
            resposta = "Adorei a figurinha! 😄"
        else:
            resposta = "Recebi seu arquivo. Obrigado!"
        dispatcher.utter_message(text=resposta)
        return []

    @staticmethod
    def _reagir(dispatcher: CollectingDispatcher, tracker: Tracker, emoji: str) -> None:
        """React to the user's message itself (WhatsApp only; needs its `wamid`)."""
        if not is_whatsapp(tracker):
            return
        message = whatsapp_metadata(tracker).get("message")
        message_id = message.get("id") if isinstance(message, Mapping) else None
        if isinstance(message_id, str) and message_id.strip():
            dispatcher.utter_message(json_message=builders.reaction(message_id, emoji))


class ActionReceberContato(Action):
    """Thanks for a shared contact card (`/whatsapp_contacts{"contact_name", "contact_phone"}`)."""

    def name(self) -> str:
        return "action_receber_contato"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Events:
        nome = as_text(latest_entity(tracker, "contact_name"))
        telefone = as_text(latest_entity(tracker, "contact_phone"))
        if telefone and telefone.isdigit():
            telefone = f"+{telefone}"
        if nome and telefone:
            quem = f" de {fit_label(nome, 60)} ({telefone})"
        elif nome or telefone:
            quem = f" de {fit_label(nome or telefone or '', 60)}"
        else:
            quem = ""
        dispatcher.utter_message(
            text=f"Obrigado! Recebi o contato{quem}. Vamos falar com essa pessoa em breve."
        )
        return []


class ActionReceberPedido(Action):
    """Acknowledges a cart sent from the WhatsApp catalogue (`/whatsapp_order{"item_count"}`).

    The total comes from the raw order in the metadata (`metadata["whatsapp"]["message"]`),
    which has every product line with its quantity and price.
    https://developers.facebook.com/docs/whatsapp/cloud-api/webhooks/reference/messages/order
    """

    def name(self) -> str:
        return "action_receber_pedido"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Events:
        quantidade = as_float(latest_entity(tracker, "item_count"))
        if quantidade is None or quantidade < 1 or not quantidade.is_integer():
            itens = ""
        elif quantidade == 1:
            itens = " com 1 produto"
        else:
            itens = f" com {quantidade:.0f} produtos"
        total = total_do_pedido(whatsapp_metadata(tracker).get("message"))
        valor = f" no valor de {formatar_reais(total)}" if total is not None else ""
        dispatcher.utter_message(
            text=f"🛒 Recebi seu carrinho{itens}{valor}! Um atendente vai confirmar o frete e a "
            "forma de pagamento em instantes."
        )
        return []
