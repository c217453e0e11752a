"""Settings of a WhatsApp channel, from Rasa's credentials.yml or from `WHATSAPP_*` variables.

The same settings serve every adapter: the Rasa channel reads them from its credentials.yml block
(values may be `${ENV_VAR}`, which Rasa expands), the Flask server and the DRF view from the
environment. Any key missing from credentials.yml falls back to its `WHATSAPP_*` variable, then to
its default. Every key is documented in the README ("Configuration").
"""

import difflib
import json
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any
from urllib.parse import urlsplit

from connectors.whatsapp.core import defaults
from connectors.whatsapp.core.client import DEFAULT_MEDIA_HOSTS
from connectors.whatsapp.core.events import MessageKind
from connectors.whatsapp.core.identity import DEFAULT_IDENTITY_TTL_SECONDS
from connectors.whatsapp.core.inbound import (
    DEFAULT_OPT_OUT_INTENT,
    DEFAULT_OPT_OUT_KEYWORDS,
    InboundOptions,
    intent_names,
)
from connectors.whatsapp.core.rendering import RenderOptions
from connectors.whatsapp.core.window import (
    WINDOW_SECONDS,
    ReengagementTemplate,
    TemplateConfigError,
)

logger = logging.getLogger(__name__)

DEFAULT_API_VERSION = defaults.API_VERSION
DEFAULT_API_BASE_URL = defaults.API_BASE_URL

DEFAULT_DEDUP_TTL_SECONDS = 7 * 24 * 3600
"""Meta redelivers an unacknowledged webhook for up to 7 days; remember message ids that long."""
DEFAULT_DEDUP_MAX_ENTRIES = 100_000

DEFAULT_REDIS_URL = "redis://localhost:6379/0"
DEFAULT_CLAIM_IDLE_SECONDS = 30.0
DEFAULT_MAX_ATTEMPTS = 5
DEFAULT_MAX_PENDING = 10_000
"""About 20 MB of waiting messages; Meta redelivers what gets a 503, for up to 7 days."""
DEFAULT_OUTBOX_RETRY_SECONDS = 900.0
"""15 minutes: long enough for a Graph API outage, well inside the 24-hour window."""
CUSTOMER_SERVICE_WINDOW_SECONDS = WINDOW_SECONDS
DEFAULT_EMPTY_BODY = defaults.EMPTY_BODY
DEFAULT_MORE_OPTIONS = defaults.MORE_OPTIONS_BODY

ENV_PREFIX = "WHATSAPP_"
OTHER_ENV_SETTINGS = frozenset({"BACKEND", "RASA_URL", "RASA_TIMEOUT", "RASA_APOLOGY", "SERVICE"})
"""`WHATSAPP_*` names used by other parts: the sync answer backends' variables, and the DRF
view's `WHATSAPP_SERVICE` (a Django setting, which some projects fill from the environment)."""

_REQUIRED = ("access_token", "phone_number_id", "verify_token")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class ConfigError(ValueError):
    """A setting is missing or invalid; the message names the key."""


@dataclass(frozen=True, slots=True)
class WhatsAppConfig:
    """Everything a WhatsApp adapter needs to know. Build it with `from_mapping` or `from_env`."""

    access_token: str = field(repr=False)
    phone_number_id: str
    verify_token: str = field(repr=False)
    app_secret: str | None = field(default=None, repr=False)
    api_version: str = DEFAULT_API_VERSION
    api_base_url: str = DEFAULT_API_BASE_URL
    validate_signature: bool = True
    """Check `X-Hub-Signature-256`. Turn off only behind a proxy that already checked it."""
    mark_as_read: bool = True
    """Mark each accepted message as read (blue ticks)."""
    typing_indicator: bool = True
    """Show "typing..." with the read receipt until the bot answers (at most 25 s)."""
    dedup: str = "memory"
    """Where seen message ids are kept: "memory" (one process) or "redis" (shared by instances)."""
    redis_url: str = DEFAULT_REDIS_URL
    dedup_ttl_seconds: int = DEFAULT_DEDUP_TTL_SECONDS
    dedup_max_entries: int = DEFAULT_DEDUP_MAX_ENTRIES
    intents: Mapping[str, str | None] = field(default_factory=dict)
    """Overrides of the intent names used for non-text messages, by kind (see inbound.py)."""
    media_caption_as_text: bool = False
    """Send a captioned photo's caption as the text instead of the `/whatsapp_image` intent."""
    status_hook: str | None = None
    """Import path ("package.module.function") of a callable given every failed status."""
    event_hook: str | None = None
    """Import path of a callable given every status (with its pricing), `user_preferences`
    update, group, standby, handover and calls webhook: what never reaches the bot."""
    reengagement_template: ReengagementTemplate | None = None
    """The template sent instead of a bot message outside the 24-hour window, and once more
    for a free-form send Meta refused with 131047 (`window.py`)."""
    opt_out_keywords: tuple[str, ...] = DEFAULT_OPT_OUT_KEYWORDS
    """Whole messages (case and accents ignored) that reach the bot as `opt_out_intent`."""
    opt_out_intent: str | None = DEFAULT_OPT_OUT_INTENT
    """The intent opt-out keywords become; empty: they reach the bot as plain text."""
    edits: bool = True
    """Hand an edited message's new text to the bot, flagged `edited` (false: nothing is sent)."""
    media_hosts: tuple[str, ...] = DEFAULT_MEDIA_HOSTS
    """Hosts `download_media` sends the access token to (https only), besides `api_base_url`'s;
    "*.fbcdn.net" matches every subdomain."""
    identity_ttl_seconds: int = DEFAULT_IDENTITY_TTL_SECONDS
    """How long the ids seen together for a person are kept after their last message."""
    list_button_label: str = defaults.LIST_BUTTON_LABEL
    """Label of the button that opens a list (at most 20 characters)."""
    empty_body: str = DEFAULT_EMPTY_BODY
    """Body of buttons the bot sent without text (Meta requires one)."""
    more_options_body: str = DEFAULT_MORE_OPTIONS
    """Body of the second and later lists when a message has more than 10 options."""
    drain_timeout_seconds: float = 30.0
    """On shutdown, how long accepted messages may still take to be processed."""
    queue: str = "memory"
    """Where accepted messages wait: "memory" (this process) or "redis" (durable, shared)."""
    claim_idle_seconds: float = DEFAULT_CLAIM_IDLE_SECONDS
    """`queue: redis`: a turn silent this long is taken for dead and handed to another instance."""
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    """`queue: redis`: a message whose turn raised this many times becomes a dead letter."""
    max_pending: int = DEFAULT_MAX_PENDING
    """Accepted messages not processed yet beyond which webhooks get 503 with Retry-After."""
    outbox_retry_seconds: float = DEFAULT_OUTBOX_RETRY_SECONDS
    """How long an answer whose send failed for a retryable reason is retried (0: never)."""
    metrics: bool = False
    """Serve Prometheus metrics on the metrics route (404 while off)."""
    metrics_token: str | None = field(default=None, repr=False)
    """If set, the metrics route wants `Authorization: Bearer <metrics_token>` (401, 403)."""
    max_messages_per_second: float = 80.0
    """Sends per second from one business number (Meta: 80 by default, 1000 after the upgrade)."""
    pair_interval_seconds: float = 6.0
    """Sustained spacing of messages to one recipient (Meta's pair rate limit: 1 per 6 s)."""
    pair_burst: int = 40
    """Messages one recipient may get at once before the spacing applies (Meta allows 45: 40 keeps
    a margin for the jitter between our clock and Meta's)."""

    @classmethod
    def from_mapping(
        cls, values: Mapping[str, Any] | None, environ: Mapping[str, str] | None = None
    ) -> "WhatsAppConfig":
        """Build from a credentials.yml block; a missing key falls back to `WHATSAPP_<KEY>`.

        Raises:
            ConfigError: naming the first key that is missing, empty or invalid.
        """
        values = dict(values or {})
        env = environ or {}
        _check_known_keys(cls, values, env)

        def raw(key: str) -> Any:
            value = values.get(key)
            if value is None or (isinstance(value, str) and not value.strip()):
                value = env.get(ENV_PREFIX + key.upper())
            return value

        def text(key: str, default: str | None = None) -> str | None:
            value = raw(key)
            if value is None or (isinstance(value, str) and not value.strip()):
                return default
            if isinstance(value, bool) or not isinstance(value, str | int | float):
                raise ConfigError(f"'{key}' must be a string, got {type(value).__name__}")
            result = str(value).strip()
            if result.startswith("${"):
                raise ConfigError(
                    f"'{key}' is the unexpanded placeholder {result!r}: write ${{VAR}} without "
                    "quotes in credentials.yml (Rasa does not expand quoted values), and set VAR"
                )
            return result

        def required(key: str) -> str:
            value = text(key)
            if not value:
                raise ConfigError(
                    f"credentials key '{key}' is missing or empty "
                    f"(set it in credentials.yml or in {ENV_PREFIX}{key.upper()})"
                )
            return value

        def flag(key: str, default: bool) -> bool:
            value = raw(key)
            if value is None or value == "":
                return default
            if isinstance(value, bool):
                return value
            lowered = str(value).strip().lower()
            if lowered in _TRUE:
                return True
            if lowered in _FALSE:
                return False
            raise ConfigError(f"'{key}' must be true or false, got {value!r}")

        def number(key: str, default: float, minimum: float) -> float:
            value = raw(key)
            if value is None or value == "":
                return default
            try:
                result = float(value)
            except (TypeError, ValueError):
                raise ConfigError(f"'{key}' must be a number, got {value!r}") from None
            if not math.isfinite(result):
                raise ConfigError(f"'{key}' must be a finite number, got {value!r}")
            if result < minimum:
                raise ConfigError(f"'{key}' must be at least {minimum}, got {value!r}")
            return result

        for key in _REQUIRED:
            required(key)
        validate_signature = flag("validate_signature", True)
        app_secret = required("app_secret") if validate_signature else text("app_secret")
        queue = (text("queue", "memory") or "memory").lower()
        if queue not in ("memory", "redis"):
            raise ConfigError(f"'queue' must be 'memory' or 'redis', got {queue!r}")
        dedup = (text("dedup", queue) or queue).lower()
        if dedup not in ("memory", "redis"):
            raise ConfigError(f"'dedup' must be 'memory' or 'redis', got {dedup!r}")
        if queue == "redis" and dedup != "redis":
            raise ConfigError(
                "'queue: redis' keeps message ids in Redis: leave 'dedup' out or set it to redis"
            )
        outbox_retry_seconds = number("outbox_retry_seconds", DEFAULT_OUTBOX_RETRY_SECONDS, 0)
        if outbox_retry_seconds > CUSTOMER_SERVICE_WINDOW_SECONDS:
            raise ConfigError(
                "'outbox_retry_seconds' must be at most 86400: past the 24-hour window Meta "
                f"refuses a free-form answer anyway, got {outbox_retry_seconds:g}"
            )
        intents = values.get("intents") or env.get(ENV_PREFIX + "INTENTS") or {}
        if isinstance(intents, str):  # WHATSAPP_INTENTS='{"sticker": null, "location": "onde"}'
            try:
                intents = json.loads(intents)
            except ValueError:
                raise ConfigError("'intents' (WHATSAPP_INTENTS) must be a JSON object") from None
        if not isinstance(intents, Mapping) or not all(
            isinstance(k, str) and (v is None or isinstance(v, str)) for k, v in intents.items()
        ):
            raise ConfigError("'intents' must map message kinds to intent names (or null)")
        try:
            intent_names(intents)
        except ValueError as error:
            raise ConfigError(str(error)) from None
        list_button_label = (
            text("list_button_label", defaults.LIST_BUTTON_LABEL) or defaults.LIST_BUTTON_LABEL
        )
        if len(list_button_label) > 20:
            raise ConfigError("'list_button_label' must be at most 20 characters (Meta's limit)")
        empty_body = text("empty_body", DEFAULT_EMPTY_BODY) or DEFAULT_EMPTY_BODY
        more_options_body = text("more_options_body", DEFAULT_MORE_OPTIONS) or DEFAULT_MORE_OPTIONS
        try:
            RenderOptions(list_button_label, empty_body, more_options_body)
        except ValueError as error:
            raise ConfigError(str(error)) from None
        try:
            reengagement_template = ReengagementTemplate.from_value(
                values.get("reengagement_template") or env.get(ENV_PREFIX + "REENGAGEMENT_TEMPLATE")
            )
        except TemplateConfigError as error:
            raise ConfigError(f"'reengagement_template' {error}") from None
        opt_out_words = _words(raw("opt_out_keywords"), "opt_out_keywords")
        # Present but empty turns opt-outs off, so `raw` (which skips empty values) is not used.
        opt_out_intent_value = (
            values["opt_out_intent"]
            if "opt_out_intent" in values
            else env.get(ENV_PREFIX + "OPT_OUT_INTENT", DEFAULT_OPT_OUT_INTENT)
        )
        if opt_out_intent_value is not None and not isinstance(opt_out_intent_value, str):
            raise ConfigError("'opt_out_intent' must be an intent name (or empty to turn it off)")
        media_hosts = _words(raw("media_hosts"), "media_hosts")
        api_base_url = (text("api_base_url", DEFAULT_API_BASE_URL) or "").rstrip("/")
        if (
            urlsplit(api_base_url).scheme not in ("http", "https")
            or not urlsplit(api_base_url).netloc
        ):
            raise ConfigError(f"'api_base_url' must be an http(s) URL, got {api_base_url!r}")
        redis_url = text("redis_url", DEFAULT_REDIS_URL) or DEFAULT_REDIS_URL
        if urlsplit(redis_url).scheme not in ("redis", "rediss", "unix"):
            raise ConfigError(
                f"'redis_url' must be a redis://, rediss:// or unix:// URL, got {redis_url!r}"
            )
        api_version = text("api_version", DEFAULT_API_VERSION) or DEFAULT_API_VERSION
        if not api_version.startswith("v"):
            api_version = "v" + api_version

        return cls(
            access_token=required("access_token"),
            phone_number_id=required("phone_number_id"),
            verify_token=required("verify_token"),
            app_secret=app_secret,
            api_version=api_version,
            api_base_url=api_base_url,
            validate_signature=validate_signature,
            mark_as_read=flag("mark_as_read", True),
            typing_indicator=flag("typing_indicator", True),
            dedup=dedup,
            redis_url=redis_url,
            dedup_ttl_seconds=int(number("dedup_ttl_seconds", DEFAULT_DEDUP_TTL_SECONDS, 1)),
            dedup_max_entries=int(number("dedup_max_entries", DEFAULT_DEDUP_MAX_ENTRIES, 1)),
            intents=dict(intents),
            media_caption_as_text=flag("media_caption_as_text", False),
            status_hook=text("status_hook"),
            event_hook=text("event_hook"),
            reengagement_template=reengagement_template,
            opt_out_keywords=DEFAULT_OPT_OUT_KEYWORDS if opt_out_words is None else opt_out_words,
            opt_out_intent=(opt_out_intent_value or "").strip().lstrip("/") or None,
            edits=flag("edits", True),
            media_hosts=DEFAULT_MEDIA_HOSTS if media_hosts is None else media_hosts,
            identity_ttl_seconds=int(
                number("identity_ttl_seconds", DEFAULT_IDENTITY_TTL_SECONDS, 60)
            ),
            list_button_label=list_button_label,
            empty_body=empty_body,
            more_options_body=more_options_body,
            drain_timeout_seconds=number("drain_timeout_seconds", 30.0, 0),
            queue=queue,
            claim_idle_seconds=number("claim_idle_seconds", DEFAULT_CLAIM_IDLE_SECONDS, 0.1),
            max_attempts=int(number("max_attempts", DEFAULT_MAX_ATTEMPTS, 1)),
            max_pending=int(number("max_pending", DEFAULT_MAX_PENDING, 1)),
            outbox_retry_seconds=outbox_retry_seconds,
            metrics=flag("metrics", False),
            metrics_token=text("metrics_token"),
            max_messages_per_second=_positive(
                number("max_messages_per_second", 80.0, 0), "max_messages_per_second"
            ),
            pair_interval_seconds=number("pair_interval_seconds", 6.0, 0),
            pair_burst=int(number("pair_burst", 40, 1)),
        )

    def __post_init__(self) -> None:
        """Refuse a mode no part knows, also when the config is built directly (not by
        `from_mapping`): `dedup="redsi"` must not silently mean memory."""
        for key in ("dedup", "queue"):
            value = getattr(self, key)
            if value not in ("memory", "redis"):
                raise ConfigError(f"'{key}' must be 'memory' or 'redis', got {value!r}")

    def intent_names(self) -> dict[MessageKind, str | None]:
        """The intent for each message kind: the defaults with `intents` applied."""
        return intent_names(self.intents)

    def inbound_options(self) -> InboundOptions:
        """What turns messages into bot input: intents, captions, opt-outs, edits."""
        return InboundOptions(
            intents=self.intent_names(),
            caption_as_text=self.media_caption_as_text,
            opt_out_keywords=self.opt_out_keywords,
            opt_out_intent=self.opt_out_intent,
            edits=self.edits,
        )

    def render_options(self) -> RenderOptions:
        """The wording the renderer adds (list button, bodies Meta requires)."""
        return RenderOptions(self.list_button_label, self.empty_body, self.more_options_body)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> "WhatsAppConfig":
        """Build from `WHATSAPP_*` variables only (Flask, DRF)."""
        return cls.from_mapping({}, environ)


def _positive(value: float, key: str) -> float:
    if value <= 0:
        raise ConfigError(f"'{key}' must be more than 0, got {value:g}")
    return value


def _words(value: object, key: str) -> tuple[str, ...] | None:
    """A list of words from credentials.yml, or one comma-separated string (an env variable)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list | tuple) or not all(isinstance(item, str) for item in value):
        raise ConfigError(f"'{key}' must be a list of strings (or one comma-separated string)")
    return tuple(item.strip() for item in value if item.strip())


def known_keys() -> frozenset[str]:
    """Every key a credentials.yml block may hold (the fields of `WhatsAppConfig`)."""
    return frozenset(item.name for item in fields(WhatsAppConfig))


def _check_known_keys(
    cls: type[WhatsAppConfig], values: Mapping[str, Any], env: Mapping[str, str]
) -> None:
    """Refuse an unknown credentials key (a typo would silently do nothing); warn for variables.

    An unknown `WHATSAPP_*` variable only gets a warning: the environment is shared with other
    programs, and a variable set for another tool must not stop this one.
    """
    known = known_keys()
    unknown = sorted(str(key) for key in values if key not in known)
    if unknown:
        hints = []
        for key in unknown:
            close = difflib.get_close_matches(key, known, n=1)
            hints.append(f"'{key}'" + (f" (did you mean '{close[0]}'?)" if close else ""))
        raise ConfigError(
            "unknown credentials key(s): "
            + ", ".join(hints)
            + "; every key is listed in the README, Configuration"
        )
    known_env = {key.upper() for key in known} | OTHER_ENV_SETTINGS
    for name in sorted(env):
        if name.startswith(ENV_PREFIX) and name[len(ENV_PREFIX) :] not in known_env:
            logger.warning(
                "Unknown variable %s ignored (not a WhatsApp channel setting; see the README).",
                name,
            )
