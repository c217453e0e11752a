"""WhatsApp Cloud API for Rasa and any Python backend.

The tree shows the layers (docs/architecture.md):

- `connectors.whatsapp.core`: framework-free (parsing, signatures, rendering, the Graph client,
  de-duplication, the webhook endpoint);
- `connectors.whatsapp.adapters`: Rasa, Flask and DRF, each converting requests only;
- `connectors.whatsapp.sync`: the thread bridge and answer backends for Flask and Django.

Public entry points re-exported here:

- `WhatsAppInput` / `WhatsAppOutput`: the Rasa channel (`connectors.whatsapp.WhatsAppInput` in
  credentials.yml). Loaded lazily, so that importing the core never imports Rasa or Sanic; without
  Rasa installed, using them raises an ImportError that names the extra to install.
- `builders`: the Cloud API message builders custom actions use
  (`from connectors.whatsapp import builders`).

Modules of the first, flat layout (`connectors.whatsapp.parsing`, `.drf`, `.flask_adapter`,
`.service`, ...) still import, as aliases of their new homes (see `_moved.py`).
"""

from typing import TYPE_CHECKING, Any

from connectors.whatsapp._moved import install_aliases

if TYPE_CHECKING:
    from connectors.whatsapp.adapters.rasa_channel import WhatsAppInput, WhatsAppOutput
    from connectors.whatsapp.core import builders

__all__ = ["WhatsAppInput", "WhatsAppOutput", "builders"]

install_aliases(__name__)

_RASA_HINT = (
    "connectors.whatsapp.{name} is the Rasa channel and needs Rasa: install the 'rasa' extra "
    '(pip install "rasa-whatsapp-cloud[rasa]", on Python 3.10). The core, Flask and Django '
    "adapters work without it."
)


def __getattr__(name: str) -> Any:
    if name == "builders":
        from connectors.whatsapp.core import builders

        return builders
    if name in ("WhatsAppInput", "WhatsAppOutput"):
        try:
            from connectors.whatsapp.adapters import rasa_channel
        except ModuleNotFoundError as error:
            if error.name and error.name.split(".")[0] in ("rasa", "sanic"):
                raise ImportError(_RASA_HINT.format(name=name), name=error.name) from error
            raise
        return getattr(rasa_channel, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
