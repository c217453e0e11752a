"""How the bot writes things for Brazilian users: quotes, distances, amounts in reais."""

from connectors.whatsapp.core.textfit import fit_label


def quote(text: str, limit: int = 200) -> str:
    """`text` between quotes, shortened: for echoing what the user wrote."""
    return f"“{fit_label(' '.join(text.split()), limit)}”"


def format_distance(km: float) -> str:
    """A distance as people say it in Brazil: "350 m", "2,4 km", "357 km"."""
    metres = max(10, round(km * 1000, -1))
    if metres < 1000:
        return f"{metres:.0f} m"
    if round(km, 1) < 100:
        return f"{km:.1f} km".replace(".", ",")
    return f"{km:.0f} km"


def format_brl(amount: float) -> str:
    """An amount in reais the Brazilian way: "R$ 1.234,50"."""
    units, cents = f"{amount:,.2f}".split(".")
    return f"R$ {units.replace(',', '.')},{cents}"
