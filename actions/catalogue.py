"""The fake catalogue of Loja Exemplo: stores, plans, categories and products.

Keys (`basico`, `eletronicos`, `fone-bluetooth`) are what the domain's buttons and the list rows
send back as entities; names, prices and descriptions are shown to users, in Portuguese.
"""

import unicodedata
from dataclasses import dataclass
from typing import Final
from urllib.parse import quote_plus

SITE: Final = "https://example.com/loja"


@dataclass(frozen=True, slots=True)
class Store:
    name: str
    address: str
    latitude: float
    longitude: float


@dataclass(frozen=True, slots=True)
class Plan:
    name: str
    price: str
    benefits: str


@dataclass(frozen=True, slots=True)
class Product:
    key: str
    name: str
    category: str
    price: str
    description: str
    new: bool = False

    @property
    def image(self) -> str:
        """A placeholder picture with the product's name (PNG: WhatsApp takes JPEG or PNG)."""
        return f"https://placehold.co/800x600/png?text={quote_plus(self.name)}"

    @property
    def url(self) -> str:
        return f"{SITE}/produtos/{self.key}"


STORES: Final = (
    Store("Loja Paulista", "Av. Paulista, 1578 - Bela Vista", -23.5614, -46.6559),
    Store("Loja Pinheiros", "Rua dos Pinheiros, 870 - Pinheiros", -23.5665, -46.6862),
    Store("Loja Moema", "Av. Ibirapuera, 3103 - Moema", -23.6099, -46.6663),
    Store("Loja Santana", "Rua Voluntários da Pátria, 1500 - Santana", -23.5034, -46.6262),
    Store("Loja Tatuapé", "Rua Tuiuti, 2000 - Tatuapé", -23.5405, -46.5764),
)
OPENING_HOURS: Final = "Aberta de segunda a sábado, das 9h às 21h."

PLANS: Final = {
    "basico": Plan("Básico", "R$ 29,90/mês", "Descontos exclusivos em todas as compras."),
    "plus": Plan("Plus", "R$ 49,90/mês", "Descontos exclusivos e frete grátis."),
    "premium": Plan("Premium", "R$ 89,90/mês", "Descontos exclusivos, frete grátis e suporte 24h."),
}

CATEGORIES: Final = {
    "eletronicos": "Eletrônicos",
    "moda": "Moda",
    "casa": "Casa e cozinha",
    "esportes": "Esportes",
    "livros": "Livros",
    "beleza": "Beleza",
}
"""Keys are the `categoria` values of the `utter_categorias` buttons in domain.yml."""

PRODUCTS: Final = (
    Product("fone-bluetooth", "Fone Bluetooth", "eletronicos", "R$ 199,90", "Até 30 h de bateria"),
    Product("smartwatch", "Smartwatch Fit", "eletronicos", "R$ 349,90", "Monitor cardíaco e GPS"),
    Product("caixa-som", "Caixa de som portátil", "eletronicos", "R$ 249,90", "À prova d'água"),
    Product("carregador", "Carregador turbo", "eletronicos", "R$ 89,90", "USB-C, 30 W", True),
    Product("camiseta", "Camiseta básica", "moda", "R$ 49,90", "100% algodão"),
    Product("tenis", "Tênis casual", "moda", "R$ 229,90", "Do 34 ao 44"),
    Product("jaqueta", "Jaqueta jeans", "moda", "R$ 189,90", "Coleção inverno", True),
    Product("cafeteira", "Cafeteira elétrica", "casa", "R$ 159,90", "Até 30 xícaras"),
    Product("panelas", "Jogo de panelas", "casa", "R$ 299,90", "5 peças antiaderentes"),
    Product("air-fryer", "Air fryer 4 L", "casa", "R$ 399,90", "Sem óleo", True),
    Product("bola", "Bola de futebol", "esportes", "R$ 99,90", "Tamanho oficial"),
    Product("tapete-yoga", "Tapete de yoga", "esportes", "R$ 79,90", "Antiderrapante"),
    Product("garrafa", "Garrafa térmica", "esportes", "R$ 69,90", "Gelada por 24 h", True),
    Product("romance", "Dom Casmurro", "livros", "R$ 29,90", "Machado de Assis"),
    Product("poesia", "Antologia poética", "livros", "R$ 39,90", "Carlos Drummond de Andrade"),
    Product("hq", "Turma da Mônica", "livros", "R$ 24,90", "Edição de colecionador", True),
    Product("protetor", "Protetor solar FPS 50", "beleza", "R$ 59,90", "Toque seco"),
    Product("perfume", "Perfume floral", "beleza", "R$ 189,90", "100 ml"),
    Product("hidratante", "Hidratante corporal", "beleza", "R$ 39,90", "Pele seca", True),
)
PRODUCTS_BY_KEY: Final = {product.key: product for product in PRODUCTS}


def catalogue_key(text: str | None) -> str | None:
    """A catalogue key from what the user sent: lower case, no accents ("Básico" -> "basico")."""
    if text is None:
        return None
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(char for char in decomposed if not unicodedata.combining(char))
