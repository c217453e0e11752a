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

from aiohttp import web

from .context import Sandbox, sandbox_of
from .delivery import BotMessageOutcome
from .errors import (
    GraphError,
    invalid_parameter,
    invalid_token,
    missing_parameter,
    missing_token,
    unknown_object,
)
from .faults import Target
from .media import check_upload, url_is_valid, url_signature
from .state import ChatEntry, new_wamid
from .validation import OutboundMessage, ReadReceipt, validate_request

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
        raise missing_token()
    if not hmac.compare_digest(token.strip().encode(), sandbox.config.access_token.encode()):
        raise invalid_token()


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
    state.mark_read(entry.id)
    if receipt.typing_indicator:
        state.set_typing(entry.wa_id, 25)
    typing = " + typing indicator" if receipt.typing_indicator else ""
    state.add_log("api", f"POST messages read{typing} -> 200")
    return web.json_response({"success": True})


def _delivery_failure(sandbox: Sandbox, message: OutboundMessage) -> tuple[int, str] | None:
    """Why WhatsApp would not deliver an accepted message: reported later in a `failed` status."""
    state = sandbox.state
    if message.wa_id not in state.contacts:
        return 131026, f"{message.wa_id} is not a contact of the sandbox; add it in the chat page"
    if (
        sandbox.config.enforce_service_window
        and message.type != "template"
        and not state.in_service_window(message.wa_id)
    ):
        return 131047, WINDOW_DETAILS
    for kind in ("image", "audio", "video", "document", "sticker"):
        media_id = message.body.get(kind, {}).get("id") if message.type == kind else None
        if media_id is not None and media_id not in state.media:
            return 131053, f"Media with id {media_id} was not found"
    if message.type == "reaction":
        target = message.body["reaction"]["message_id"]
        if target not in state.entries:
            return 131009, f"Message with id {target} was not found"
    return None


def _accept_message(sandbox: Sandbox, message: OutboundMessage) -> web.Response:
    state = sandbox.state
    wamid = new_wamid(message.wa_id)
    failure = _delivery_failure(sandbox, message)
    if message.wa_id in state.contacts:
        status = "accepted" if failure is None else "failed"
        error = None if failure is None else {"code": failure[0], "details": failure[1]}
        state.add_entry(
            ChatEntry(
                wamid,
                message.wa_id,
                "bot",
                message.type,
                message.body,
                state.clock(),
                status,
                error,
            )
        )
    sandbox.sender.follow(
        BotMessageOutcome(
            message_id=wamid,
            recipient=message.wa_id,
            callback_data=message.callback_data,
            failure_code=None if failure is None else failure[0],
            failure_details=None if failure is None else failure[1],
            sent_only=message.type == "reaction",
        )
    )
    note = "" if failure is None else f" (will fail: #{failure[0]})"
    state.add_log(
        "api", f"POST messages {message.type} to {message.wa_id} -> 200{note}", ok=failure is None
    )
    result: dict[str, object] = {"id": wamid}
    if message.type == "template":
        result["message_status"] = "accepted"
    return web.json_response(
        {
            "messaging_product": "whatsapp",
            "contacts": [{"input": message.to, "wa_id": message.wa_id}],
            "messages": [result],
        }
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
