"""The sandbox's parts, reachable from every route through one typed application key."""

import secrets
from dataclasses import dataclass, field

from aiohttp import web

from .config import SandboxConfig
from .delivery import WebhookSender
from .faults import FaultQueue
from .state import SandboxState


@dataclass(frozen=True, slots=True)
class Sandbox:
    config: SandboxConfig
    state: SandboxState
    faults: FaultQueue
    sender: WebhookSender
    url_secret: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)
    """Signs the media download URLs, so that they cannot be guessed or extended."""


SANDBOX = web.AppKey("sandbox", Sandbox)


def sandbox_of(request: web.Request) -> Sandbox:
    return request.app[SANDBOX]
