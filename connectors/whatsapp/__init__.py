"""WhatsApp Cloud API for Rasa and any Python backend.

`connectors.whatsapp.WhatsAppInput` is the class path for Rasa's credentials.yml. It (and
`WhatsAppOutput`) are loaded lazily, so that importing the framework-free core (for example
`connectors.whatsapp.parsing` from Flask or Django) never imports Rasa or Sanic.
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from connectors.whatsapp.rasa_channel import WhatsAppInput, WhatsAppOutput

__all__ = ["WhatsAppInput", "WhatsAppOutput"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from connectors.whatsapp import rasa_channel

        return getattr(rasa_channel, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
