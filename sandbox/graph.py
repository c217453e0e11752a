"""The Graph API routes the project uses, answered the way the Cloud API answers them.

- `POST /{version}/{phone_number_id}/messages`: messages, read receipts and typing indicators
  (https://developers.facebook.com/docs/whatsapp/cloud-api/reference/messages)
- `POST /{version}/{phone_number_id}/media`, `GET|DELETE /{version}/{media_id}` and the download
  URL (https://developers.facebook.com/docs/whatsapp/cloud-api/reference/media)

Every call needs `Authorization: Bearer <access token>`; errors use Meta's envelope (`errors.py`).
"""

import asyncio
import hmac
import json
import logging
import secrets
from dataclasses import dataclass
from typing import NoReturn

from aiohttp import web

from .config import SimulatedContact, SimulatedGroup
from .context import Sandbox, sandbox_of
from .delivery import BotMessageOutcome
from .errors import (
    ERROR_TITLES,
    GraphError,
    invalid_parameter,
    invalid_token,
    invalid_value,
    missing_parameter,
    missing_token,
    unknown_object,
)
from .faults import Target
from .media import check_upload, url_is_valid, url_signature
from .state import ChatEntry, new_wamid
from .validation import OutboundMessage, ReadReceipt, validate_request

logger = logging.getLogger(__name__)

VERSION = r"{version:v[0-9]+\.[0-9]+}"
WINDOW_DETAILS = (
    "Message failed to send because more than 24 hours have passed since the customer last "
    "replied to this number."
)


def add_routes(app: web.Application) -> None:
    app.router.add_post(f"/{VERSION}/{{phone_number_id}}/messages", send_message)
    app.router.add_post(f"/{VERSION}/{{phone_number_id}}/media", upload_media)
    app.router.add_get(f"/{VERSION}/{{media_id:[0-9]+}}", get_media)
    app.router.add_delete(f"/{VERSION}/{{media_id:[0-9]+}}", delete_media)
    app.router.add_get("/_media/{media_id:[0-9]+}", download_media)


def authorize(request: web.Request, sandbox: Sandbox) -> None:
    """The bearer token (or Graph's `access_token` query parameter) must be the configured one."""
    header = request.headers.get("Authorization", "")
    token = request.query.get("access_token", "")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer":
            raise invalid_token()
    if not token.strip():
        tell_terminal(
            sandbox,
            "token",
            "the bot called the Graph API without an access token (code 190): set its "
            "WHATSAPP_ACCESS_TOKEN to the sandbox's (--access-token)",
        )
        raise missing_token()
    if not hmac.compare_digest(token.strip().encode(), sandbox.config.access_token.encode()):
        tell_terminal(
            sandbox,
            "token",
            "the bot's access token differs from the sandbox's, so its Graph API calls get 401 "
            "(code 190): set the bot's WHATSAPP_ACCESS_TOKEN to the sandbox's (--access-token)",
        )
        raise invalid_token()


def tell_terminal(sandbox: Sandbox, problem: str, text: str) -> None:
    """A WARNING in the sandbox's terminal (and the page's log), once per problem.

    The bot's own log shows Meta's error; whoever runs the sandbox beside it should not have to
    read the bot's log to learn that their settings differ (as for the webhook's verify token
    and app secret, `delivery.py`).
    """
    if problem in sandbox.warned:
        return
    sandbox.warned.add(problem)
    logger.warning("%s", text)
    sandbox.state.add_log("graph", text, ok=False)


async def apply_fault(sandbox: Sandbox, call: Target) -> None:
    fault = sandbox.faults.take(call)
    if fault is None:
        return
    pending = [f.to_json() for f in sandbox.faults.pending()]
    sandbox.state.publish({"type": "faults", "faults": pending})
    if fault.kind == "slow":
        sandbox.state.add_log("fault", f"slow: {call} call waits {fault.seconds:g} s")
        await asyncio.sleep(fault.seconds)
        return
    sandbox.state.add_log(
        "fault", f"{fault.kind}: {call} call answered {fault.status} (#{fault.code})", ok=False
    )
    raise fault.error()


def _check_phone_number(request: web.Request, sandbox: Sandbox) -> None:
    phone_number_id = request.match_info["phone_number_id"]
    if phone_number_id != sandbox.config.phone_number_id:
        tell_terminal(
            sandbox,
            f"number:{phone_number_id}",
            f"the bot sent from business number {phone_number_id!r}, not the sandbox's "
            f"{sandbox.config.phone_number_id!r} (code 100): set the bot's "
            "WHATSAPP_PHONE_NUMBER_ID to the sandbox's (--phone-number-id)",
        )
        raise unknown_object(phone_number_id, "post")


async def send_message(request: web.Request) -> web.Response:
    sandbox = sandbox_of(request)
    authorize(request, sandbox)
    _check_phone_number(request, sandbox)
    try:
        body = json.loads(await request.read())
    except ValueError:
        raise invalid_parameter("The request body is not valid JSON") from None
    await apply_fault(sandbox, "read" if isinstance(body, dict) and "status" in body else "send")
    try:
        parsed = validate_request(body)
    except GraphError as error:
        sandbox.state.add_log("api", f"POST messages -> {error.status} {error}", ok=False)
        raise
    if isinstance(parsed, ReadReceipt):
        return _read_receipt(sandbox, parsed)
    return _accept_message(sandbox, parsed)


def _read_receipt(sandbox: Sandbox, receipt: ReadReceipt) -> web.Response:
    state = sandbox.state
    entry = state.entries.get(receipt.message_id)
    if entry is None or entry.direction != "user":
        error = invalid_parameter(f"Message with id {receipt.message_id} was not found")
        state.add_log("api", f"POST messages (read) -> 400 {error}", ok=False)
        raise error
    if entry.chat in state.groups:
        # Groups take no read receipts and no typing indicators (Meta, "Groups"); the code is the
        # sandbox's choice (see GROUP_TYPES in validation.py).
        error = invalid_value(
            "Read receipts and typing indicators are not supported for group messages"
        )
        state.add_log("api", f"POST messages (read) -> 400 {error}", ok=False)
        raise error
    state.mark_read(entry.id)
    if receipt.typing_indicator:
        state.set_typing(entry.chat, 25)
    typing = " + typing indicator" if receipt.typing_indicator else ""
    state.add_log("api", f"POST messages read{typing} -> 200")
    return web.json_response({"success": True})


@dataclass(frozen=True, slots=True)
class _Target:
    """Who a valid message goes to: a contact, a group, or nobody the sandbox knows."""

    chat: str | None
    """The conversation it shows in; None when nobody would receive it."""
    contact: SimulatedContact | None = None
    group: SimulatedGroup | None = None


def _target(sandbox: Sandbox, message: OutboundMessage) -> _Target:
    state = sandbox.state
    if message.group_id is not None:
        group = state.groups.get(message.group_id)
        return _Target(message.group_id if group else None, group=group)
    if message.user_id is not None:
        contact = state.by_user_id(message.user_id)
    elif message.to_holds_user_id:
        # Shown in that user's conversation as dropped, so the pitfall is visible.
        contact = state.by_user_id(message.to)
    else:
        contact = state.by_phone(message.wa_id or "")
    return _Target(contact.key if contact else None, contact=contact)


def _refuse_outside_window(sandbox: Sandbox, message: OutboundMessage, target: _Target) -> bool:
    """Whether Meta would refuse this free-form message for the 24-hour window."""
    return (
        sandbox.settings.enforce_service_window
        and target.chat is not None
        and message.type != "template"
        and not sandbox.state.in_service_window(target.chat)
    )


def _delivery_failure(
    sandbox: Sandbox, message: OutboundMessage, target: _Target
) -> tuple[int, str] | None:
    """Why WhatsApp would not deliver an accepted message: reported later in a `failed` status."""
    state = sandbox.state
    if target.chat is None:
        what = "group" if message.group_id is not None else "contact"
        return 131026, f"{message.to} is not a {what} of the sandbox; add it in the chat page"
    if _refuse_outside_window(sandbox, message, target):
        return 131047, WINDOW_DETAILS
    for kind in ("image", "audio", "video", "document", "sticker"):
        media_id = message.body.get(kind, {}).get("id") if message.type == kind else None
        if media_id is not None and media_id not in state.media:
            return 131053, f"Media with id {media_id} was not found"
    if message.type == "reaction":
        reacted = message.body["reaction"]["message_id"]
        if reacted not in state.entries:
            return 131009, f"Message with id {reacted} was not found"
    return None


def _refuse(
    sandbox: Sandbox, message: OutboundMessage, error: GraphError, chat: str | None
) -> NoReturn:
    """Log a send refused at once and show it in the conversation, then raise Meta's error."""
    state = sandbox.state
    state.add_log(
        "api", f"POST messages {message.type} to {message.to} -> {error.status} {error}", ok=False
    )
    if chat is not None:
        state.add_entry(
            ChatEntry(
                f"refused.{secrets.token_hex(8)}",
                chat,
                "bot",
                message.type,
                message.body,
                state.clock(),
                "refused",
                {
                    "code": error.code,
                    "title": ERROR_TITLES.get(error.code, error.message),
                    "details": error.details,
                },
            )
        )
    raise error


def _accept_message(sandbox: Sandbox, message: OutboundMessage) -> web.Response:
    state = sandbox.state
    target = _target(sandbox, message)
    try:
        sandbox.rates.check(target.chat or message.to)
    except GraphError as limited:
        _refuse(sandbox, message, limited, None)
    if sandbox.settings.window_refusal == "http" and _refuse_outside_window(
        sandbox, message, target
    ):
        _refuse(
            sandbox,
            message,
            GraphError(131047, "(#131047) Re-engagement message", details=WINDOW_DETAILS),
            target.chat,
        )
    wamid = new_wamid(target.chat or message.to)
    if message.to_holds_user_id:
        return _drop(sandbox, message, target, wamid)
    failure = _delivery_failure(sandbox, message, target)
    if target.chat is not None:
        status = "accepted" if failure is None else "failed"
        problem = None if failure is None else {"code": failure[0], "details": failure[1]}
        entry = ChatEntry(
            wamid, target.chat, "bot", message.type, message.body, state.clock(), status, problem
        )
        state.add_entry(entry)
    contact = target.contact
    sandbox.sender.follow(
        BotMessageOutcome(
            message_id=wamid,
            recipient=contact.wa_id if contact else (message.group_id or message.wa_id),
            recipient_user_id=contact.user_id if contact else message.user_id,
            group_members=target.group.members if target.group else (),
            callback_data=message.callback_data,
            failure_code=None if failure is None else failure[0],
            failure_details=None if failure is None else failure[1],
            sent_only=message.type == "reaction",
            template=message.type == "template",
        )
    )
    note = "" if failure is None else f" (will fail: #{failure[0]})"
    state.add_log(
        "api", f"POST messages {message.type} to {message.to} -> 200{note}", ok=failure is None
    )
    return _sent(message, wamid, contact)


def _drop(sandbox: Sandbox, message: OutboundMessage, target: _Target, wamid: str) -> web.Response:
    """A BSUID in `to`: Meta answers 200 with a message id, and the message never arrives."""
    state = sandbox.state
    details = (
        f"{message.to!r} is a business-scoped user id in `to`: WhatsApp answers 200 and drops "
        "the message silently. Send to a BSUID with `recipient`."
    )
    if target.chat is not None:
        state.add_entry(
            ChatEntry(
                wamid,
                target.chat,
                "bot",
                message.type,
                message.body,
                state.clock(),
                "dropped",
                {"code": None, "title": "", "details": details},
            )
        )
    state.add_log("api", f"POST messages {message.type} -> 200, then dropped: {details}", ok=False)
    logger.warning("message %s dropped: %s", wamid, details)
    return _sent(message, wamid, None)


def _sent(message: OutboundMessage, wamid: str, contact: SimulatedContact | None) -> web.Response:
    result: dict[str, object] = {"id": wamid}
    if message.type == "template":
        result["message_status"] = "accepted"
    answer: dict[str, object] = {"input": message.to}
    if message.wa_id is not None:
        answer["wa_id"] = message.wa_id
    elif message.user_id is not None:
        answer["user_id"] = message.user_id
    return web.json_response(
        {"messaging_product": "whatsapp", "contacts": [answer], "messages": [result]}
    )


async def upload_media(request: web.Request) -> web.Response:
    sandbox = sandbox_of(request)
    authorize(request, sandbox)
    _check_phone_number(request, sandbox)
    await apply_fault(sandbox, "media")
    if not request.content_type.startswith("multipart/"):
        raise invalid_parameter("Upload media as multipart/form-data")
    form = await request.post()
    if form.get("messaging_product") != "whatsapp":
        raise missing_parameter("messaging_product")
    upload = form.get("file")
    if not isinstance(upload, web.FileField):
        raise missing_parameter("file")
    data = upload.file.read()
    declared = form.get("type")
    mime_type = declared if isinstance(declared, str) and declared else upload.content_type
    try:
        check_upload(mime_type, len(data))
    except GraphError as error:
        sandbox.state.add_log("api", f"POST media -> 400 {error}", ok=False)
        raise
    item = sandbox.state.store_media(data, mime_type, upload.filename)
    sandbox.state.add_log("api", f"POST media {mime_type} ({len(data)} bytes) -> {item.id}")
    return web.json_response({"id": item.id})


async def get_media(request: web.Request) -> web.Response:
    """The media URL look-up: a URL valid for `media_url_ttl` seconds, plus type, hash, size."""
    sandbox = sandbox_of(request)
    authorize(request, sandbox)
    await apply_fault(sandbox, "media")
    media_id = request.match_info["media_id"]
    item = sandbox.state.media.get(media_id)
    if item is None:
        raise unknown_object(media_id, "get")
    expires = int(sandbox.state.clock() + sandbox.config.media_url_ttl)
    signature = url_signature(sandbox.url_secret, media_id, expires)
    # Built from the Host header: `request.url` tripped over "host:port" with aiohttp 3.9 + yarl
    # >= 1.10 (the lock now pins yarl 1.9); kept, as it does not depend on yarl at all.
    origin = f"{request.scheme}://{request.host}"
    url = f"{origin}/_media/{media_id}?ext={expires}&hash={signature}"
    return web.json_response(
        {
            "messaging_product": "whatsapp",
            "url": url,
            "mime_type": item.mime_type,
            "sha256": item.sha256,
            "file_size": len(item.data),
            "id": item.id,
        }
    )


async def delete_media(request: web.Request) -> web.Response:
    sandbox = sandbox_of(request)
    authorize(request, sandbox)
    media_id = request.match_info["media_id"]
    if sandbox.state.media.pop(media_id, None) is None:
        raise unknown_object(media_id, "delete")
    return web.json_response({"success": True})


async def download_media(request: web.Request) -> web.Response:
    """The download URL: needs the bearer token, and stops working when it expires."""
    sandbox = sandbox_of(request)
    authorize(request, sandbox)
    await apply_fault(sandbox, "media")
    media_id = request.match_info["media_id"]
    try:
        expires = int(request.query.get("ext", ""))
    except ValueError:
        expires = 0
    item = sandbox.state.media.get(media_id)
    valid = url_is_valid(
        sandbox.url_secret, media_id, expires, request.query.get("hash", ""), sandbox.state.clock()
    )
    if item is None or not valid:
        raise GraphError(
            100, "URL signature mismatch or expired", status=404, error_type="GraphMethodException"
        )
    return web.Response(body=item.data, content_type=_content_type(item.mime_type))


def _content_type(mime_type: str) -> str:
    return mime_type.split(";", 1)[0].strip() or "application/octet-stream"
