"""The sandbox's settings: one frozen dataclass, defaults that work out of the box.

The defaults match what `python -m devtools.run` (`make run`) gives the bot (`WHATSAPP_*`
variables), so the bot and the sandbox agree on tokens and ids without any configuration.
`from_env` reads the same `WHATSAPP_*` variables as the channel, so a bot started by hand with its
own values can be pointed at a sandbox started with the same environment.
"""

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

DEFAULT_PORT = 5100
DEFAULT_ACCESS_TOKEN = "sandbox-access-token"
DEFAULT_PHONE_NUMBER_ID = "100000000000001"
DEFAULT_DISPLAY_PHONE_NUMBER = "15550001234"
DEFAULT_VERIFY_TOKEN = "sandbox-verify-token"
DEFAULT_APP_SECRET = "sandbox-app-secret"
DEFAULT_WEBHOOK_URL = "http://127.0.0.1:5005/webhooks/whatsapp/webhook"
DEFAULT_API_VERSION = "v23.0"


@dataclass(frozen=True, slots=True)
class SimulatedContact:
    """A WhatsApp user the chat page can act as."""

    wa_id: str
    name: str


DEFAULT_CONTACTS = (
    SimulatedContact("5511987654321", "Ana Souza"),
    SimulatedContact("5521998765432", "Bruno Oliveira"),
    SimulatedContact("5531987651234", "Carla Mendes"),
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
    status_delays: tuple[float, float, float] = (0.3, 0.6, 1.2)
    """Seconds before each `sent`, `delivered` and `read` status webhook of a bot message."""
    webhook_retry_delays: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0, 8.0)
    """Meta retries a webhook that did not get a 200; the sandbox retries after these delays."""
    webhook_timeout: float = 10.0
    enforce_service_window: bool = True
    """Free-form messages outside the 24-hour window fail with 131047, as on WhatsApp."""
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

        return cls(
            host=get("SANDBOX_HOST", "127.0.0.1"),
            port=int(get("SANDBOX_PORT", str(DEFAULT_PORT))),
            access_token=get("WHATSAPP_ACCESS_TOKEN", DEFAULT_ACCESS_TOKEN),
            phone_number_id=get("WHATSAPP_PHONE_NUMBER_ID", DEFAULT_PHONE_NUMBER_ID),
            display_phone_number=get("SANDBOX_DISPLAY_PHONE_NUMBER", DEFAULT_DISPLAY_PHONE_NUMBER),
            business_name=get("SANDBOX_BUSINESS_NAME", "Sample Bot"),
            verify_token=get("WHATSAPP_VERIFY_TOKEN", DEFAULT_VERIFY_TOKEN),
            app_secret=get("WHATSAPP_APP_SECRET", DEFAULT_APP_SECRET),
            webhook_url=get("SANDBOX_WEBHOOK_URL", DEFAULT_WEBHOOK_URL),
            api_version=get("WHATSAPP_API_VERSION", DEFAULT_API_VERSION),
            enforce_service_window=get("SANDBOX_ENFORCE_WINDOW", "1") not in ("0", "false", "no"),
            verify_on_start=get("SANDBOX_VERIFY_ON_START", "1") not in ("0", "false", "no"),
        )
