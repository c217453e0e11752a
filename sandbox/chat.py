"""The chat page and its control API (`/_sandbox/...`): what the simulated users do.

The page gets live updates through server-sent events (`GET /_sandbox/events`) and acts through
small JSON POSTs, which tests can also use directly:

- `POST /_sandbox/contacts/{key}/messages` `{"type": "text", "text": "oi"}` (and button_reply,
  list_reply, location): the user sends something; the bot gets a signed webhook. `key` is the
  contact's phone number, or its BSUID when it has no phone number.
- `POST /_sandbox/contacts/{key}/media` (multipart `file`, `caption`): a photo or a file.
- `POST /_sandbox/groups/{group_id}/messages` `{"member": key, "type": "text", ...}`: a member
  writes in a group (`.../media` with a `member` form field: a file).
- `GET /_sandbox/conversations/{key or group_id}`: what was said, both ways, with statuses.
- `POST /_sandbox/conversations/{key or group_id}/skip` `{"hours": 25}`: time passes (the 24-hour
  window closes; the user's next message opens it again).
- `GET|POST /_sandbox/settings`: the window, how 131047 comes back, the rate limits.
- `GET|POST|DELETE /_sandbox/faults`: inject throttling, 5xx or slowness (`faults.py`).

docs/sandbox.md documents every route with examples.
"""

import asyncio
import contextlib
import json
import re
import secrets
from pathlib import Path
from typing import Any

from aiohttp import web

from .config import WINDOW_REFUSALS, SimulatedContact, SimulatedGroup
from .context import Sandbox, sandbox_of
from .faults import Fault, FaultError
from .state import ChatEntry, contact_json, new_wamid
from .user_actions import ActionError, UserMessage, media_message, parse_action
from .webhooks import inbound_message, messages_payload

MAX_USER_FILE = 16 * 1024 * 1024
KEEP_ALIVE_SECONDS = 15.0
_WA_ID = re.compile(r"[0-9]{8,15}")


def add_routes(app: web.Application, static_dir: Path) -> None:
    app.router.add_get("/", index)
    app.router.add_static("/static/", static_dir)
    app.router.add_get("/_sandbox/health", health)
    app.router.add_get("/_sandbox/state", state_snapshot)
    app.router.add_get("/_sandbox/events", events)
    app.router.add_post("/_sandbox/contacts", add_contact)
    app.router.add_post("/_sandbox/contacts/{key}/messages", user_sends)
    app.router.add_post("/_sandbox/contacts/{key}/media", user_sends_file)
    app.router.add_post("/_sandbox/groups/{group_id}/messages", member_sends)
    app.router.add_post("/_sandbox/groups/{group_id}/media", user_sends_file)
    app.router.add_get("/_sandbox/conversations/{chat}", conversation)
    app.router.add_post("/_sandbox/conversations/{chat}/skip", skip_time)
    app.router.add_get("/_sandbox/settings", get_settings)
    app.router.add_post("/_sandbox/settings", change_settings)
    app.router.add_get("/_sandbox/media/{media_id}", view_media)
    app.router.add_get("/_sandbox/faults", list_faults)
    app.router.add_post("/_sandbox/faults", add_fault)
    app.router.add_delete("/_sandbox/faults", clear_faults)
    app.router.add_post("/_sandbox/reset", reset)
    app.router.add_post("/_sandbox/verify", verify)


def _bad_request(message: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(text=json.dumps({"error": message}), content_type="application/json")


async def _json(request: web.Request) -> Any:
    try:
        return await request.json()
    except ValueError:
        raise _bad_request("the body must be JSON") from None


def _not_found(what: str) -> web.HTTPNotFound:
    return web.HTTPNotFound(text=json.dumps({"error": what}), content_type="application/json")


def _contact(sandbox: Sandbox, key: str) -> SimulatedContact:
    contact = sandbox.state.contacts.get(key)
    if contact is None:
        raise _not_found("unknown contact")
    return contact


def _settings_json(sandbox: Sandbox) -> dict[str, Any]:
    return {
        "enforce_service_window": sandbox.settings.enforce_service_window,
        "window_refusal": sandbox.settings.window_refusal,
        **sandbox.rates.to_json(),
    }


def _info(sandbox: Sandbox) -> dict[str, Any]:
    config = sandbox.config
    return {
        "business_name": config.business_name,
        "display_phone_number": config.display_phone_number,
        "phone_number_id": config.phone_number_id,
        "webhook_url": config.webhook_url,
        "verified": sandbox.sender.verified,
        "faults": [f.to_json() for f in sandbox.faults.pending()],
        "settings": _settings_json(sandbox),
    }


async def index(request: web.Request) -> web.FileResponse:
    static = Path(sandbox_of(request).config.static_dir)
    return web.FileResponse(static / "index.html", headers={"Cache-Control": "no-cache"})


async def health(request: web.Request) -> web.Response:
    return web.json_response({"ok": True, "verified": sandbox_of(request).sender.verified})


async def state_snapshot(request: web.Request) -> web.Response:
    sandbox = sandbox_of(request)
    return web.json_response({**sandbox.state.snapshot(), "info": _info(sandbox)})


async def events(request: web.Request) -> web.StreamResponse:
    """Server-sent events: a snapshot first, then every change, with keep-alive comments."""
    sandbox = sandbox_of(request)
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
    )
    await response.prepare(request)
    queue = sandbox.state.subscribe()
    try:
        first = {**sandbox.state.snapshot(), "info": _info(sandbox)}
        await response.write(f"data: {json.dumps(first)}\n\n".encode())
        while True:
            try:
                event = await asyncio.wait_for(queue.get(), KEEP_ALIVE_SECONDS)
            except asyncio.TimeoutError:
                await response.write(b": keep-alive\n\n")
                continue
            if event is None:
                break
            await response.write(f"data: {json.dumps(event)}\n\n".encode())
    except ConnectionResetError:
        pass  # the page went away
    finally:
        sandbox.state.unsubscribe(queue)
    return response


async def add_contact(request: web.Request) -> web.Response:
    """`{"name", "wa_id"?, "user_id"?, "username"?}`: a phone number, a BSUID, or both.

    Without either, the contact gets a random Brazilian phone number. A `username` without a
    phone number is the 2026 user who hides their number (a BSUID is made up if none is given).
    """
    sandbox = sandbox_of(request)
    data = await _json(request)
    if not isinstance(data, dict):
        raise _bad_request('send {"name": ..., "wa_id": ...}')
    name = str(data.get("name") or "").strip()[:60] or "New contact"
    wa_id = str(data.get("wa_id") or "").replace("+", "").replace(" ", "").replace("-", "")
    user_id = str(data.get("user_id") or "").strip() or None
    username = str(data.get("username") or "").strip().lstrip("@")[:35] or None
    if username and not wa_id and not user_id:
        user_id = "BR.1" + secrets.token_urlsafe(15).replace("-", "x").replace("_", "y")
    if not wa_id and not user_id:
        wa_id = "55119" + "".join(secrets.choice("0123456789") for _ in range(8))
    if wa_id and not _WA_ID.fullmatch(wa_id):
        raise _bad_request("wa_id must be 8 to 15 digits, with the country code")
    try:
        contact = SimulatedContact(wa_id or None, name, user_id=user_id, username=username)
    except ValueError as error:
        raise _bad_request(str(error)) from None
    contact = sandbox.state.add_contact(contact)
    return web.json_response(contact_json(contact))


def _submit(
    sandbox: Sandbox,
    contact: SimulatedContact,
    message: UserMessage,
    group: SimulatedGroup | None = None,
) -> ChatEntry:
    """Record what the user sent and deliver it to the bot as Meta's webhook."""
    state = sandbox.state
    chat = group.group_id if group else contact.key
    wamid = new_wamid(chat)
    now = state.clock()
    context = message.context_id
    if context is not None:
        replied = state.entries.get(context)
        if replied is None or replied.direction != "bot" or replied.chat != chat:
            context = None  # WhatsApp only quotes messages it knows
    inbound = inbound_message(
        wamid=wamid,
        wa_id=contact.wa_id,
        user_id=contact.user_id,
        group_id=group.group_id if group else None,
        timestamp=now,
        kind=message.kind,
        content=message.content,
        context_id=context,
        business_number=sandbox.config.display_phone_number,
    )
    author = contact.key if group else None
    entry = state.add_entry(
        ChatEntry(wamid, chat, "user", message.kind, inbound, now, "sent", author=author)
    )

    def delivered(ok: bool) -> None:
        state.set_status(wamid, "delivered" if ok else "failed")

    where = f" in {group.subject}" if group else ""
    label = f"{contact.name}{where}: {message.kind}"
    sandbox.sender.send(messages_payload(sandbox.config, contact, inbound), label, delivered)
    return entry


async def user_sends(request: web.Request) -> web.Response:
    sandbox = sandbox_of(request)
    contact = _contact(sandbox, request.match_info["key"])
    try:
        message = parse_action(await _json(request))
    except ActionError as error:
        raise _bad_request(str(error)) from None
    entry = _submit(sandbox, contact, message)
    return web.json_response(entry.to_json())


async def member_sends(request: web.Request) -> web.Response:
    """A member of a group writes in it: `{"member": <contact key>, "type": ..., ...}`."""
    sandbox = sandbox_of(request)
    group = sandbox.state.groups.get(request.match_info["group_id"])
    if group is None:
        raise _not_found("unknown group")
    action = await _json(request)
    if not isinstance(action, dict) or action.get("member") not in group.members:
        raise _bad_request(f"member must be one of the group's members: {list(group.members)}")
    contact = _contact(sandbox, str(action["member"]))
    try:
        message = parse_action({k: v for k, v in action.items() if k != "member"})
    except ActionError as error:
        raise _bad_request(str(error)) from None
    entry = _submit(sandbox, contact, message, group)
    return web.json_response(entry.to_json())


async def skip_time(request: web.Request) -> web.Response:
    """`{"hours": 25}` (the default): the conversation's 24-hour window closes."""
    sandbox = sandbox_of(request)
    chat = request.match_info["chat"]
    if chat not in sandbox.state.contacts and chat not in sandbox.state.groups:
        raise _not_found("unknown conversation")
    data = await _json(request) if request.can_read_body else {}
    hours = data.get("hours", 25) if isinstance(data, dict) else None
    if isinstance(hours, bool) or not isinstance(hours, int | float) or not 0 < hours <= 24 * 60:
        raise _bad_request("hours must be a number of hours, more than 0 and at most 1440")
    entry = sandbox.state.skip_time(chat, float(hours))
    sandbox.state.add_log("control", f"{hours:g} hours later in {chat}")
    return web.json_response(entry.to_json())


async def get_settings(request: web.Request) -> web.Response:
    return web.json_response(_settings_json(sandbox_of(request)))


async def change_settings(request: web.Request) -> web.Response:
    """Change any of the settings `GET /_sandbox/settings` shows; the others stay."""
    sandbox = sandbox_of(request)
    data = await _json(request)
    if not isinstance(data, dict):
        raise _bad_request("send a JSON object of settings")
    current = _settings_json(sandbox)
    unknown = sorted(set(data) - set(current))
    if unknown:
        raise _bad_request(f"unknown settings: {', '.join(unknown)}; known: {', '.join(current)}")
    merged = current | data
    enforce, refusal = merged["enforce_service_window"], merged["window_refusal"]
    if not isinstance(enforce, bool):
        raise _bad_request("enforce_service_window must be true or false")
    if refusal not in WINDOW_REFUSALS:
        raise _bad_request(f"window_refusal must be one of {', '.join(WINDOW_REFUSALS)}")
    numbers = [merged[k] for k in ("throughput_per_second", "pair_interval", "pair_burst")]
    if any(isinstance(n, bool) or not isinstance(n, int | float) for n in numbers):
        raise _bad_request("the rate settings are numbers (0 turns one off)")
    if not isinstance(merged["pair_burst"], int):
        raise _bad_request("pair_burst is a whole number of messages")
    try:
        sandbox.rates.configure(float(numbers[0]), float(numbers[1]), int(numbers[2]))
    except ValueError as error:
        raise _bad_request(str(error)) from None
    sandbox.settings.enforce_service_window = enforce
    sandbox.settings.window_refusal = refusal
    changed = _settings_json(sandbox)
    sandbox.state.add_log("control", f"settings: {json.dumps(changed)}")
    sandbox.state.publish({"type": "settings", "settings": changed})
    return web.json_response(changed)


async def user_sends_file(request: web.Request) -> web.Response:
    """A file from a contact (`/contacts/{key}/media`), or from a group member (`/groups/{id}/media`
    with a `member` field)."""
    sandbox = sandbox_of(request)
    if not request.content_type.startswith("multipart/"):
        raise _bad_request("send the file as multipart/form-data")
    form = await request.post()
    group = None
    if "group_id" in request.match_info:
        group = sandbox.state.groups.get(request.match_info["group_id"])
        if group is None:
            raise _not_found("unknown group")
        member = form.get("member")
        if member not in group.members:
            raise _bad_request(f"member must be one of the group's members: {list(group.members)}")
        contact = _contact(sandbox, str(member))
    else:
        contact = _contact(sandbox, request.match_info["key"])
    upload = form.get("file")
    if not isinstance(upload, web.FileField):
        raise _bad_request("the form needs a 'file'")
    data = upload.file.read(MAX_USER_FILE + 1)
    if not data or len(data) > MAX_USER_FILE:
        raise _bad_request(f"the file must have 1 to {MAX_USER_FILE} bytes")
    caption = form.get("caption")
    voice = form.get("voice") == "true"
    mime_type = upload.content_type or "application/octet-stream"
    item = sandbox.state.store_media(data, mime_type, upload.filename)
    message = media_message(item, caption if isinstance(caption, str) else None, voice=voice)
    entry = _submit(sandbox, contact, message, group)
    return web.json_response(entry.to_json())


async def conversation(request: web.Request) -> web.Response:
    sandbox = sandbox_of(request)
    entries = sandbox.state.conversation(request.match_info["chat"])
    return web.json_response({"messages": [e.to_json() for e in entries]})


async def view_media(request: web.Request) -> web.Response:
    """Media for the page itself (no token: the page is the user's phone, not the bot)."""
    item = sandbox_of(request).state.media.get(request.match_info["media_id"])
    if item is None:
        raise web.HTTPNotFound()
    headers = {"Cache-Control": "max-age=3600"}
    if item.filename:
        safe = item.filename.replace('"', "")
        headers["Content-Disposition"] = f'inline; filename="{safe}"'
    content_type = item.mime_type.split(";", 1)[0].strip() or "application/octet-stream"
    return web.Response(body=item.data, content_type=content_type, headers=headers)


async def list_faults(request: web.Request) -> web.Response:
    return web.json_response([f.to_json() for f in sandbox_of(request).faults.pending()])


async def add_fault(request: web.Request) -> web.Response:
    sandbox = sandbox_of(request)
    try:
        fault = Fault.from_json(await _json(request))
    except FaultError as error:
        raise _bad_request(str(error)) from None
    sandbox.faults.add(fault)
    sandbox.state.add_log("fault", f"queued {fault.kind} x{fault.count} for {fault.target} calls")
    sandbox.state.publish({"type": "faults", "faults": _info(sandbox)["faults"]})
    return web.json_response(fault.to_json(), status=201)


async def clear_faults(request: web.Request) -> web.Response:
    sandbox = sandbox_of(request)
    sandbox.faults.clear()
    sandbox.state.publish({"type": "faults", "faults": []})
    return web.json_response([])


async def reset(request: web.Request) -> web.Response:
    sandbox = sandbox_of(request)
    sandbox.state.reset()
    sandbox.faults.clear()
    return web.json_response({"ok": True})


async def verify(request: web.Request) -> web.Response:
    sandbox = sandbox_of(request)
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(sandbox.sender.verify(), 10)
    return web.json_response({"verified": sandbox.sender.verified})
