"""A local stand-in for the WhatsApp Cloud API, with a chat page, for demos and tests.

`create_app(SandboxConfig(...))` builds the aiohttp application; `python -m sandbox` serves it;
`python -m devtools.run` (behind `make run`) serves it together with the Rasa bot.
"""

from .config import SandboxConfig, SimulatedContact
from .server import create_app

__all__ = ["SandboxConfig", "SimulatedContact", "create_app"]
