"""Delivering webhooks to the bot: in order, signed, retried like Meta retries them.

One worker sends the queued webhooks one after the other, so a user's messages reach the bot in
the order they were typed. A webhook that does not get a 200 is retried after
`config.webhook_retry_delays` (Meta retries for much longer, with decreasing frequency:
https://developers.facebook.com/docs/whatsapp/cloud-api/webhooks/overview).
"""

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import aiohttp

from .config import SandboxConfig
from .state import SandboxState
from .webhooks import Payload, signed, status_object, statuses_payload

logger = logging.getLogger(__name__)

Done = Callable[[bool], None]


@dataclass(frozen=True, slots=True)
class _Job:
    payload: Payload
    label: str
    done: Done | None


@dataclass(frozen=True, slots=True)
class BotMessageOutcome:
    """What happens to a bot message after the API accepted it."""

    message_id: str
    recipient: str | None
    """`recipient_id`: the phone number, or the group id; None for a user without a phone."""
    recipient_user_id: str | None = None
    group_members: tuple[str, ...] = ()
    """For a group: `delivered` and `read` come once per member (`recipient_participant_id`)."""
    callback_data: str | None = None
    failure_code: int | None = None
    failure_details: str | None = None
    sent_only: bool = False
    """Reactions get a `sent` status only, never `delivered` or `read`."""
    template: bool = False
    """Templates are billable (per-message pricing), service messages are free."""


class WebhookSender:
    """Sends the sandbox's webhooks to `config.webhook_url` from one background worker."""

    def __init__(self, config: SandboxConfig, state: SandboxState) -> None:
        self.config = config
        self.state = state
        self._queue: asyncio.Queue[_Job] = asyncio.Queue()
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[object]] = set()
        self.verified = False
        self._problem: tuple[str, str] | None = None

    async def start(self) -> None:
        timeout = aiohttp.ClientTimeout(total=self.config.webhook_timeout)
        self._session = aiohttp.ClientSession(timeout=timeout)
        self._spawn(self._worker())
        if self.config.verify_on_start:
            self._spawn(self.verify())

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._session is not None:
            await self._session.close()

    def _spawn(self, coro: Coroutine[Any, Any, object]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- what the routes call

    def send(self, payload: Payload, label: str, done: Done | None = None) -> None:
        """Queue a webhook; `done(ok)` is called once it got a 200 or all retries failed."""
        self._queue.put_nowait(_Job(payload, label, done))

    def follow(self, outcome: BotMessageOutcome) -> None:
        """Send the status webhooks of an accepted bot message, after short delays."""
        self._spawn(self._statuses(outcome))

    async def idle(self) -> None:
        """Wait until every queued webhook has been handled (for tests)."""
        await self._queue.join()

    # --- background work

    async def _statuses(self, outcome: BotMessageOutcome) -> None:
        if outcome.failure_code is not None:
            await asyncio.sleep(self.config.status_delays[0])
            self._status(outcome, "failed")
            return
        steps = ("sent",) if outcome.sent_only else ("sent", "delivered", "read")
        for status, delay in zip(steps, self.config.status_delays, strict=False):
            await asyncio.sleep(delay)
            members = outcome.group_members if status != "sent" else ()
            for member in members or (None,):
                self._status(outcome, status, member)

    def _status(self, outcome: BotMessageOutcome, status: str, member: str | None = None) -> None:
        failed = status == "failed"
        item = status_object(
            message_id=outcome.message_id,
            status=status,
            recipient_id=outcome.recipient,
            timestamp=self.state.clock(),
            error_code=outcome.failure_code if failed else None,
            error_details=outcome.failure_details if failed else None,
            callback_data=outcome.callback_data,
            billable=not outcome.sent_only,
            recipient_user_id=outcome.recipient_user_id,
            group=bool(outcome.group_members),
            participant_id=member,
            template=outcome.template,
        )
        error = item["errors"][0] if failed else None
        self.state.set_status(outcome.message_id, status, error)
        self.send(statuses_payload(self.config, item), f"status {status} {outcome.message_id}")

    async def _worker(self) -> None:
        while True:
            job = await self._queue.get()
            try:
                ok = await self._deliver(job)
                if job.done is not None:
                    job.done(ok)
            except Exception:  # a bug here must not stop every later webhook
                logger.exception("webhook delivery failed: %s", job.label)
            finally:
                self._queue.task_done()

    async def _deliver(self, job: _Job) -> bool:
        assert self._session is not None
        body, headers = signed(job.payload, self.config.app_secret)
        delays = (0.0, *self.config.webhook_retry_delays)
        outcome = ""
        for attempt, delay in enumerate(delays, start=1):
            if delay:
                await asyncio.sleep(delay)
            status: int | None = None
            what = ""
            try:
                async with self._session.post(
                    self.config.webhook_url, data=body, headers=headers
                ) as response:
                    await response.read()
                    if response.status == 200:
                        self.state.add_log("webhook", f"{job.label} -> 200")
                        self._problem = None
                        return True
                    status = response.status
                    outcome = f"HTTP {response.status}"
                    what = f"the bot refused a signed webhook POST with HTTP {status}"
            except (aiohttp.ClientError, asyncio.TimeoutError) as error:
                outcome = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
                what = f"the bot's webhook URL is unreachable ({type(error).__name__})"
            retry = " (retrying)" if attempt < len(delays) else " (giving up)"
            self.state.add_log("webhook", f"{job.label} -> {outcome}{retry}", ok=False)
            self._warn(what, post_hint(status))
        logger.warning(
            "webhook %s not delivered to %s: %s", job.label, self.config.webhook_url, outcome
        )
        return False

    def _warn(self, what: str, hint: str) -> None:
        """A WARNING in the sandbox's terminal, once per problem (not once per retry)."""
        if (what, hint) == self._problem:
            return
        self._problem = (what, hint)
        logger.warning("%s (%s): %s", what, self.config.webhook_url, hint)

    async def verify(self) -> bool:
        """Verify the webhook URL like Meta does when it is registered, retrying until it is up.

        `GET <url>?hub.mode=subscribe&hub.verify_token=...&hub.challenge=...` must answer 200 with
        the challenge echoed back (https://developers.facebook.com/docs/graph-api/webhooks/getting-started).
        A refusal is logged as a WARNING in the terminal, with the likely fix.
        """
        assert self._session is not None
        challenge = str(secrets.randbelow(10**10))
        params = {
            "hub.mode": "subscribe",
            "hub.verify_token": self.config.verify_token,
            "hub.challenge": challenge,
        }
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.verify_timeout
        while loop.time() < deadline:
            try:
                async with self._session.get(self.config.webhook_url, params=params) as response:
                    text = await response.text()
                    if response.status == 200 and text == challenge:
                        self.verified = True
                        self._problem = None
                        self.state.add_log("verify", "webhook URL verified (hub.challenge echoed)")
                        logger.info("the bot's webhook %s is verified", self.config.webhook_url)
                        return True
                    if response.status != 404:  # 404: the channel is not mounted yet
                        self.state.add_log(
                            "verify",
                            f"webhook verification failed: HTTP {response.status} {text[:80]!r}",
                            ok=False,
                        )
                        self._warn(
                            f"the bot refused the verification GET with HTTP {response.status}",
                            verify_hint(response.status),
                        )
                        return False
                    self._warn("the verification GET got HTTP 404", verify_hint(404))
            except (aiohttp.ClientError, asyncio.TimeoutError) as error:
                self._warn(
                    f"the bot's webhook URL is unreachable ({type(error).__name__})",
                    f"is the bot running? Check --webhook-url; retrying for up to "
                    f"{self.config.verify_timeout:g} s",
                )
            await asyncio.sleep(1.0)
        self.state.add_log("verify", "the bot did not answer the verification request", ok=False)
        logger.warning(
            "the bot's webhook %s never answered the verification GET", self.config.webhook_url
        )
        return False


def post_hint(status: int | None) -> str:
    """The likely fix for a webhook POST the bot did not answer with 200."""
    if status is None:
        return "nothing answers there: is the bot running, and is --webhook-url right?"
    if status in (401, 403):
        return (
            "the bot refused the X-Hub-Signature-256 signature: the bot's WHATSAPP_APP_SECRET "
            "differs from the sandbox's (--app-secret)"
        )
    if status == 404:
        return "no webhook route there: check --webhook-url (Rasa: /webhooks/whatsapp/webhook)"
    if status == 413:
        return "the bot refused the body size"
    if status == 503:
        return "the bot is starting or stopping, or its queue is unavailable; the sandbox retries"
    if status >= 500:
        return "the bot failed while handling it; see the bot's log"
    return "the bot refused it; see the bot's log"


def verify_hint(status: int) -> str:
    """The likely fix for a verification GET the bot did not answer with the challenge."""
    if status == 403:
        return (
            "the bot's WHATSAPP_VERIFY_TOKEN differs from the sandbox's (--verify-token); "
            "messages are still sent"
        )
    if status == 404:
        return "no webhook route there yet: check --webhook-url (Rasa: /webhooks/whatsapp/webhook)"
    if status == 200:
        return "the bot answered 200 without echoing hub.challenge as the body"
    return "see the bot's log"
