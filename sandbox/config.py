"""The sandbox's settings: one frozen dataclass, defaults that work out of the box.

The defaults match what `python -m devtools.run` (`make run`) gives the bot (`WHATSAPP_*`
variables), so the bot and the sandbox agree on tokens and ids without any configuration.
`from_env` reads the same `WHATSAPP_*` variables as the channel, so a bot started by hand with its
own values can be pointed at a sandbox started with the same environment.
"""

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

DEFAULT_PORT = 5100
DEFAULT_ACCESS_TOKEN = "sandbox-access-token"
DEFAULT_PHONE_NUMBER_ID = "100000000000001"
DEFAULT_DISPLAY_PHONE_NUMBER = "15550001234"
DEFAULT_VERIFY_TOKEN = "sandbox-verify-token"
DEFAULT_APP_SECRET = "sandbox-app-secret"
DEFAULT_WEBHOOK_URL = "http://127.0.0.1:5005/webhooks/whatsapp/webhook"
DEFAULT_API_VERSION = "v23.0"
DEFAULT_THROUGHPUT = 80.0
DEFAULT_PAIR_INTERVAL = 6.0
DEFAULT_PAIR_BURST = 45

WindowRefusal = Literal["http", "status"]
WINDOW_REFUSALS: tuple[WindowRefusal, ...] = ("http", "status")


BSUID = re.compile(r"[A-Z]{2}\.[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
"""A business-scoped user id: a country code, a dot, an id ("BR.13kYqJt5m7VwX2pQ9a"); a parent
BSUID of an enterprise portfolio has "ENT" in it (https://developers.facebook.com/docs/whatsapp/
cloud-api/business-scoped-user-ids)."""


@dataclass(frozen=True, slots=True)
class SimulatedContact:
    """A WhatsApp user the chat page can act as.

    Since 2026 Meta identifies a user by a phone number (`wa_id`), a business-scoped user id
    (`user_id`, the BSUID), or both; a user who adopted a username may hide their phone number, and
    then arrives with the BSUID and the `username` only.
    """

    wa_id: str | None
    name: str
    user_id: str | None = None
    username: str | None = None

    def __post_init__(self) -> None:
        if not self.wa_id and not self.user_id:
            raise ValueError("a contact needs a phone number (wa_id), a BSUID (user_id), or both")
        if self.user_id is not None and not BSUID.fullmatch(self.user_id):
            raise ValueError(f"{self.user_id!r} is not a BSUID (country code, dot, id)")

    @property
    def key(self) -> str:
        """What the sandbox files this contact's conversation under: the phone, else the BSUID."""
        return self.wa_id or self.user_id or ""


@dataclass(frozen=True, slots=True)
class SimulatedGroup:
    """A WhatsApp group the business number is in, with simulated members (contact keys)."""

    group_id: str
    subject: str
    members: tuple[str, ...]


DEFAULT_CONTACTS = (
    SimulatedContact("5511987654321", "Ana Souza"),
    SimulatedContact("5521998765432", "Bruno Oliveira", user_id="BR.13kYqJt5m7VwX2pQ9a"),
    SimulatedContact("5531987651234", "Carla Mendes"),
    SimulatedContact(
        None, "Elisa Rocha", user_id="BR.1Hd5Gs8Jf2Ka6Lp9Zx4C", username="elisa.rocha"
    ),
)
"""Phone only (Ana, Carla), phone + BSUID (Bruno), and a username with no phone number (Elisa)."""

DEFAULT_GROUP_ID = "Y2FwaV9ncm91cDoxNTU1MDAwMTIzNDoxMjAzNjMwNDI2OTQyODM4ODk"
"""Shaped like the group ids of Meta's Groups API (base64 of "capi_group:<number>:<id>")."""
DEFAULT_GROUPS = (
    SimulatedGroup(DEFAULT_GROUP_ID, "Amigos da Loja", ("5511987654321", "5521998765432")),
)


@dataclass(frozen=True, slots=True)
class SandboxConfig:
    """Everything the sandbox needs to stand in for one WhatsApp business number."""

    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    access_token: str = DEFAULT_ACCESS_TOKEN
    phone_number_id: str = DEFAULT_PHONE_NUMBER_ID
    display_phone_number: str = DEFAULT_DISPLAY_PHONE_NUMBER
    business_account_id: str = "100000000000002"
    """The WABA id Meta puts in `entry[].id`."""
    business_name: str = "Sample Bot"
    verify_token: str = DEFAULT_VERIFY_TOKEN
    app_secret: str = DEFAULT_APP_SECRET
    webhook_url: str = DEFAULT_WEBHOOK_URL
    api_version: str = DEFAULT_API_VERSION
    """The version used in the media URLs the sandbox hands out; requests may use any version."""
    contacts: tuple[SimulatedContact, ...] = DEFAULT_CONTACTS
    groups: tuple[SimulatedGroup, ...] = DEFAULT_GROUPS
    status_delays: tuple[float, float, float] = (0.3, 0.6, 1.2)
    """Seconds before each `sent`, `delivered` and `read` status webhook of a bot message."""
    webhook_retry_delays: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0, 8.0)
    """Meta retries a webhook that did not get a 200; the sandbox retries after these delays."""
    webhook_timeout: float = 10.0
    enforce_service_window: bool = True
    """Free-form messages outside the 24-hour window fail with 131047, as on WhatsApp."""
    window_refusal: WindowRefusal = "http"
    """How 131047 comes back: `http` (an HTTP 400 at once) or `status` (a 200, then a `failed`
    status webhook); Meta does both."""
    throughput_per_second: float = DEFAULT_THROUGHPUT
    """Messages per second the business number may send (Meta: 80 by default, 1000 after the
    automatic upgrade); over it a send gets 130429. 0 turns the check off."""
    pair_interval: float = DEFAULT_PAIR_INTERVAL
    """Seconds per message to one recipient (Meta: about 1 message every 6 s); 0 turns it off."""
    pair_burst: int = DEFAULT_PAIR_BURST
    """Messages one recipient may get in a burst before 131056 (Meta: up to 45, borrowed from the
    following minutes)."""
    verify_on_start: bool = False
    """Send the GET verification (hub.challenge) at start-up, as Meta does when the URL is set."""
    verify_timeout: float = 600.0
    """How long to keep retrying the verification while the bot starts (model loading is slow)."""
    media_url_ttl: float = 300.0
    """Media download URLs expire after 5 minutes, as Meta's do."""
    static_dir: str = field(
        default_factory=lambda: os.path.join(os.path.dirname(__file__), "static")
    )

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "SandboxConfig":
        """Settings from `SANDBOX_*` and the channel's own `WHATSAPP_*` variables."""
        env = os.environ if environ is None else environ

        def get(name: str, default: str) -> str:
            return env.get(name) or default

        def number(name: str, default: float) -> float:
            try:
                return float(get(name, str(default)))
            except ValueError:
                raise ValueError(f"{name} must be a number, not {env.get(name)!r}") from None

        return cls(
            host=get("SANDBOX_HOST", "127.0.0.1"),
            port=int(number("SANDBOX_PORT", DEFAULT_PORT)),
            access_token=get("WHATSAPP_ACCESS_TOKEN", DEFAULT_ACCESS_TOKEN),
            phone_number_id=get("WHATSAPP_PHONE_NUMBER_ID", DEFAULT_PHONE_NUMBER_ID),
            display_phone_number=get("SANDBOX_DISPLAY_PHONE_NUMBER", DEFAULT_DISPLAY_PHONE_NUMBER),
            business_name=get("SANDBOX_BUSINESS_NAME", "Sample Bot"),
            verify_token=get("WHATSAPP_VERIFY_TOKEN", DEFAULT_VERIFY_TOKEN),
            app_secret=get("WHATSAPP_APP_SECRET", DEFAULT_APP_SECRET),
            webhook_url=get("SANDBOX_WEBHOOK_URL", DEFAULT_WEBHOOK_URL),
            api_version=get("WHATSAPP_API_VERSION", DEFAULT_API_VERSION),
            enforce_service_window=get("SANDBOX_ENFORCE_WINDOW", "1") not in ("0", "false", "no"),
            window_refusal=_window_refusal(get("SANDBOX_WINDOW_REFUSAL", "http")),
            throughput_per_second=number("SANDBOX_THROUGHPUT", DEFAULT_THROUGHPUT),
            pair_interval=number("SANDBOX_PAIR_INTERVAL", DEFAULT_PAIR_INTERVAL),
            pair_burst=int(number("SANDBOX_PAIR_BURST", DEFAULT_PAIR_BURST)),
            verify_on_start=get("SANDBOX_VERIFY_ON_START", "1") not in ("0", "false", "no"),
        )


def _window_refusal(value: str) -> WindowRefusal:
    for refusal in WINDOW_REFUSALS:
        if value == refusal:
            return refusal
    raise ValueError(f"SANDBOX_WINDOW_REFUSAL must be one of {', '.join(WINDOW_REFUSALS)}")
