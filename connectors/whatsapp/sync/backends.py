"""Answer backends: what answers a WhatsApp message when Rasa's own channel is not the server.

The Flask server (`server.py`) and the DRF view hand every inbound message to an *answer
backend* and send what it returns. A backend is any callable that takes a `BotInput` (the text,
sender, message id and metadata the Rasa channel would give Rasa) and returns a list of bot
messages in Rasa's format: `{"text": ..., "buttons": [...]}`, `{"image": ...}`,
`{"custom": {...}}` and so on. The core renderer turns them into Cloud API messages, exactly as
for the Rasa channel, so a backend never deals with WhatsApp's limits or shapes.

A backend may be a coroutine function (awaited on the service's event loop) or a plain function
(run in a worker thread with `asyncio.to_thread`, so it may block). Built in, chosen with
`WHATSAPP_BACKEND`:

- `echo` (the default): answers each message with its own text, so the server runs with nothing
  else configured;
- `rasa`: forwards to a running Rasa server's REST channel (`POST /webhooks/rest/webhook`, see
  https://rasa.com/docs/rasa/connectors/your-own-website#restinput) at `WHATSAPP_RASA_URL`, and
  relays what it answers;
- `package.module:callable`: any callable by import path (a class is instantiated without
  arguments first).
"""

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Iterable, Mapping, Sequence
from typing import Any, Protocol

import aiohttp

from connectors.whatsapp.core.config import ConfigError
from connectors.whatsapp.core.importing import import_object
from connectors.whatsapp.core.inbound import BotInput

logger = logging.getLogger(__name__)

BotMessage = Mapping[str, Any]
"""One bot message in Rasa's format (what Rasa's REST channel returns, minus `recipient_id`)."""

DEFAULT_RASA_URL = "http://127.0.0.1:5005"
DEFAULT_RASA_TIMEOUT_SECONDS = 30.0
"""Rasa answers when every action of the turn ran; custom actions can take a few seconds."""
RASA_REST_PATH = "/webhooks/rest/webhook"
WHATSAPP_INPUT_CHANNEL = "whatsapp"


class AnswerBackend(Protocol):
    """Takes a message for the bot, returns the bot's answers (possibly none).

    Sync or async; see the module docstring. Exceptions are logged by the service and nothing is
    sent for that message.
    """

    def __call__(
        self, bot_input: BotInput, /
    ) -> Awaitable[Sequence[BotMessage]] | Sequence[BotMessage]: ...


class EchoBackend:
    """Answers every message with its own text: the server's default, for trying it out.

    Non-text messages arrive as the intent text the Rasa channel would send
    (`/whatsapp_location{...}`), so that is what is echoed for them.
    """

    name = "echo"

    async def __call__(self, bot_input: BotInput) -> list[dict[str, Any]]:
        return [{"text": bot_input.text}]


class RasaBackendError(Exception):
    """Rasa answered, but not with a list of bot messages."""


class RasaRestBackend:
    """Forwards each message to a Rasa server's REST channel and relays the bot's answers.

    The request carries what the Rasa WhatsApp channel gives Rasa: `sender` (the WhatsApp id),
    `message` (the text or intent trigger), `metadata` (with `metadata["whatsapp"]`) and
    `input_channel: "whatsapp"`, so custom actions that check
    `tracker.get_latest_input_channel()` send their WhatsApp-only messages (`custom`), which this
    backend relays as they are. The Rasa server needs `rest:` in its credentials.yml.

    If Rasa cannot be reached, times out or answers an error, the failure is logged and the user
    gets `apology` (if one is configured) instead of silence. One `aiohttp` session is made
    lazily on the running loop and reused; `close()` releases it.
    """

    name = "rasa"

    def __init__(
        self,
        url: str = DEFAULT_RASA_URL,
        *,
        timeout: float = DEFAULT_RASA_TIMEOUT_SECONDS,
        apology: str | None = None,
        input_channel: str = WHATSAPP_INPUT_CHANNEL,
    ) -> None:
        base = url.strip().rstrip("/")
        if not base.startswith(("http://", "https://")):
            raise ConfigError(f"the Rasa URL must be an http(s) URL, got {url!r}")
        if timeout <= 0:
            raise ConfigError(f"the Rasa timeout must be positive, got {timeout!r}")
        self.webhook_url = base if base.endswith(RASA_REST_PATH) else base + RASA_REST_PATH
        self.apology = apology.strip() if apology and apology.strip() else None
        self.input_channel = input_channel
        self._timeout = aiohttp.ClientTimeout(total=timeout, connect=min(timeout, 5.0))
        self._session: aiohttp.ClientSession | None = None
        self._session_loop: asyncio.AbstractEventLoop | None = None

    def __repr__(self) -> str:
        return f"RasaRestBackend({self.webhook_url!r})"

    async def __call__(self, bot_input: BotInput) -> list[dict[str, Any]]:
        payload = {
            "sender": bot_input.sender_id,
            "message": bot_input.text,
            "metadata": bot_input.metadata,
            "input_channel": self.input_channel,
        }
        try:
            answers = await self._post(payload)
        except (aiohttp.ClientError, asyncio.TimeoutError, RasaBackendError, ValueError) as error:
            logger.error(
                "Rasa at %s did not answer message %s from %s: %s",
                self.webhook_url,
                bot_input.message_id,
                bot_input.sender_id,
                _describe(error),
            )
            return [{"text": self.apology}] if self.apology else []
        return answers

    async def close(self) -> None:
        session, self._session, self._session_loop = self._session, None, None
        if session is not None and not session.closed:
            await session.close()

    async def _post(self, payload: Mapping[str, Any]) -> list[dict[str, Any]]:
        session = await self._get_session()
        async with session.post(self.webhook_url, json=payload) as response:
            if response.status != 200:
                text = (await response.text(errors="replace"))[:300]
                raise RasaBackendError(f"HTTP {response.status}: {text}")
            data = await response.json(content_type=None)
        if not isinstance(data, list):
            raise RasaBackendError(f"expected a list of bot messages, got {type(data).__name__}")
        messages = [item for item in data if isinstance(item, dict)]
        if len(messages) != len(data):
            logger.warning(
                "Rasa answered %d item(s) that are not bot messages; skipped.",
                len(data) - len(messages),
            )
        return messages

    async def _get_session(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._session is not None and not self._session.closed:
            if self._session_loop is loop:
                return self._session
            # Made on another loop (a restarted service): it cannot be used here.
            await self.close()
        self._session = aiohttp.ClientSession(timeout=self._timeout)
        self._session_loop = loop
        return self._session


def load_backend(spec: str | None, environ: Mapping[str, str] | None = None) -> AnswerBackend:
    """The backend `spec` names: "echo" (also when empty), "rasa", or "package.module:callable".

    "rasa" reads `WHATSAPP_RASA_URL` (default http://127.0.0.1:5005), `WHATSAPP_RASA_TIMEOUT`
    (seconds, default 30) and `WHATSAPP_RASA_APOLOGY` (text sent when Rasa fails; default none)
    from `environ`.

    Raises:
        ConfigError: naming `WHATSAPP_BACKEND` when the spec cannot be loaded.
    """
    env = environ or {}
    name = (spec or "").strip()
    if name.lower() in ("", "echo"):
        return EchoBackend()
    if name.lower() == "rasa":
        raw_timeout = (env.get("WHATSAPP_RASA_TIMEOUT") or "").strip()
        try:
            timeout = float(raw_timeout) if raw_timeout else DEFAULT_RASA_TIMEOUT_SECONDS
        except ValueError:
            raise ConfigError(
                f"WHATSAPP_RASA_TIMEOUT must be a number of seconds, got {raw_timeout!r}"
            ) from None
        return RasaRestBackend(
            (env.get("WHATSAPP_RASA_URL") or "").strip() or DEFAULT_RASA_URL,
            timeout=timeout,
            apology=env.get("WHATSAPP_RASA_APOLOGY"),
        )
    if "." not in name and ":" not in name:
        raise ConfigError(
            f"WHATSAPP_BACKEND must be 'echo', 'rasa' or 'package.module:callable', got {spec!r}"
        )
    found = import_object(name, "WHATSAPP_BACKEND")
    if inspect.isclass(found):
        try:
            found = found()
        except TypeError as error:
            raise ConfigError(
                f"WHATSAPP_BACKEND {spec!r} is a class that cannot be made without arguments: "
                f"{error}"
            ) from None
    if not callable(found):
        raise ConfigError(f"WHATSAPP_BACKEND {spec!r} is not callable")
    backend: AnswerBackend = found
    return backend


def backend_name(backend: AnswerBackend) -> str:
    """A short name for logs and the health route."""
    name = getattr(backend, "name", None)
    if isinstance(name, str) and name:
        return name
    qualname = getattr(backend, "__qualname__", None) or type(backend).__qualname__
    return f"{getattr(backend, '__module__', None) or type(backend).__module__}:{qualname}"


def is_async_backend(backend: AnswerBackend) -> bool:
    """Whether calling the backend returns a coroutine (then it runs on the event loop)."""
    # An object with an `async def __call__` is not itself a coroutine function: ask its class.
    return inspect.iscoroutinefunction(backend) or inspect.iscoroutinefunction(
        type(backend).__call__
    )


async def ask_backend(backend: AnswerBackend, bot_input: BotInput) -> list[dict[str, Any]]:
    """Call the backend (sync ones in a worker thread) and return its answers as bot messages.

    Leniently shaped answers are accepted: None (no answer), one dict, or a string (a text).
    Items that are none of these are skipped with a warning. The backend's own exceptions
    propagate; the caller logs them.
    """
    if is_async_backend(backend):
        result = backend(bot_input)
    else:
        result = await asyncio.to_thread(backend, bot_input)
    if inspect.isawaitable(result):  # a coroutine, or a sync function that returned one
        result = await result
    return as_bot_messages(result)


def as_bot_messages(result: object) -> list[dict[str, Any]]:
    """Normalise what a backend returned to a list of Rasa bot-message dicts."""
    if result is None:
        return []
    if isinstance(result, str):
        return [{"text": result}] if result.strip() else []
    if isinstance(result, Mapping):
        return [dict(result)]
    if not isinstance(result, Iterable):
        logger.warning(
            "Answer backend returned %s, not a list of bot messages; ignored.",
            type(result).__name__,
        )
        return []
    messages: list[dict[str, Any]] = []
    for item in result:
        if isinstance(item, Mapping):
            messages.append(dict(item))
        elif isinstance(item, str):
            if item.strip():
                messages.append({"text": item})
        else:
            logger.warning(
                "Answer backend returned a %s among its bot messages; skipped.", type(item).__name__
            )
    return messages


def _describe(error: BaseException) -> str:
    if isinstance(error, asyncio.TimeoutError):
        return "timed out"
    return str(error) or type(error).__name__
