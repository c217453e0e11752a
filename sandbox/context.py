"""The sandbox's parts, reachable from every route through one typed application key."""

import secrets
from dataclasses import dataclass, field

from aiohttp import web

from .config import SandboxConfig, WindowRefusal
from .delivery import WebhookSender
from .faults import FaultQueue
from .rates import RateLimits
from .state import SandboxState


@dataclass(slots=True)
class Settings:
    """What the page or a test may change while the sandbox runs (`POST /_sandbox/settings`)."""

    enforce_service_window: bool
    window_refusal: WindowRefusal

    @classmethod
    def from_config(cls, config: SandboxConfig) -> "Settings":
        return cls(config.enforce_service_window, config.window_refusal)


@dataclass(frozen=True, slots=True)
class Sandbox:
    config: SandboxConfig
    state: SandboxState
    faults: FaultQueue
    sender: WebhookSender
    settings: Settings
    rates: RateLimits
    url_secret: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)
    """Signs the media download URLs, so that they cannot be guessed or extended."""
    warned: set[str] = field(default_factory=set, repr=False)
    """Problems with the bot's Graph API calls already told in the terminal (once each)."""


SANDBOX = web.AppKey("sandbox", Sandbox)


def sandbox_of(request: web.Request) -> Sandbox:
    return request.app[SANDBOX]
