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
    recipient: str
    callback_data: str | None = None
    failure_code: int | None = None
    failure_details: str | None = None
    sent_only: bool = False
    """Reactions get a `sent` status only, never `delivered` or `read`."""


class WebhookSender:
    """Sends the sandbox's webhooks to `config.webhook_url` from one background worker."""

    def __init__(self, config: SandboxConfig, state: SandboxState) -> None:
        self.config = config
        self.state = state
        self._queue: asyncio.Queue[_Job] = asyncio.Queue()
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[object]] = set()
        self.verified = False

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
            self._status(outcome, status)

    def _status(self, outcome: BotMessageOutcome, status: str) -> None:
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
            try:
                async with self._session.post(
                    self.config.webhook_url, data=body, headers=headers
                ) as response:
                    await response.read()
                    if response.status == 200:
                        self.state.add_log("webhook", f"{job.label} -> 200")
                        return True
                    outcome = f"HTTP {response.status}"
            except (aiohttp.ClientError, asyncio.TimeoutError) as error:
                outcome = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
            retry = " (retrying)" if attempt < len(delays) else " (giving up)"
            self.state.add_log("webhook", f"{job.label} -> {outcome}{retry}", ok=False)
        logger.warning(
            "webhook %s not delivered to %s: %s", job.label, self.config.webhook_url, outcome
        )
        return False

    async def verify(self) -> bool:
        """Verify the webhook URL like Meta does when it is registered, retrying until it is up.

        `GET <url>?hub.mode=subscribe&hub.verify_token=...&hub.challenge=...` must answer 200 with
        the challenge echoed back (https://developers.facebook.com/docs/graph-api/webhooks/getting-started).
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
                        self.state.add_log("verify", "webhook URL verified (hub.challenge echoed)")
                        return True
                    if response.status != 404:  # 404: the channel is not mounted yet
                        self.state.add_log(
                            "verify",
                            f"webhook verification failed: HTTP {response.status} {text[:80]!r}",
                            ok=False,
                        )
                        return False
            except (aiohttp.ClientError, asyncio.TimeoutError):
                pass
            await asyncio.sleep(1.0)
        self.state.add_log("verify", "the bot did not answer the verification request", ok=False)
        return False
