"""Media: upload, URL look-up and download with the bearer token, and photos users send."""

import hashlib
from typing import Any

import aiohttp

from connectors.whatsapp.core.client import GraphClient
from tests.conftest import ACCESS_TOKEN, PHONE_NUMBER_ID
from tests.sandbox.conftest import ANA, FakeBot, Sandbox, SandboxFactory

PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f"
    b"\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\xcf\xc0\xf0\x1f\x00\x05\x00\x01\xff\x89\x99=\x1d"
    b"\x00\x00\x00\x00IEND\xaeB`\x82"
)
AUTH = {"Authorization": f"Bearer {ACCESS_TOKEN}"}


async def upload(
    sandbox: Sandbox, data: bytes, mime: str, name: str = "f"
) -> tuple[int, dict[str, Any]]:
    form = aiohttp.FormData()
    form.add_field("messaging_product", "whatsapp")
    form.add_field("type", mime)
    form.add_field("file", data, filename=name, content_type=mime)
    url = sandbox.url(f"/v23.0/{PHONE_NUMBER_ID}/media")
    async with sandbox.session.post(url, data=form, headers=AUTH) as response:
        return response.status, await response.json()


async def test_upload_lookup_and_download_with_bearer(sandbox: Sandbox) -> None:
    status, body = await upload(sandbox, PNG, "image/png", "dot.png")
    assert status == 200
    media_id = body["id"]
    assert media_id.isdigit()
    async with sandbox.session.get(sandbox.url(f"/v23.0/{media_id}"), headers=AUTH) as response:
        info = await response.json()
    assert info["messaging_product"] == "whatsapp"
    assert (info["id"], info["mime_type"], info["file_size"]) == (media_id, "image/png", len(PNG))
    assert info["sha256"] == hashlib.sha256(PNG).hexdigest()
    async with sandbox.session.get(info["url"], headers=AUTH) as response:
        assert response.status == 200
        assert response.content_type == "image/png"
        assert await response.read() == PNG
    async with sandbox.session.get(info["url"]) as response:
        assert response.status == 400  # no token
    async with sandbox.session.get(info["url"], headers={"Authorization": "Bearer x"}) as response:
        assert response.status == 401
    async with sandbox.session.get(info["url"].replace("hash=", "hash=0"), headers=AUTH) as r:
        assert r.status == 404


async def test_the_graph_client_round_trip(sandbox: Sandbox) -> None:
    async with GraphClient(access_token=ACCESS_TOKEN, base_url=sandbox.url("/")) as client:
        media_id = await client.upload_media(PHONE_NUMBER_ID, PNG, "image/png", "dot.png")
        info = await client.get_media(media_id)
        assert await client.download_media(info.url) == PNG


async def test_download_urls_expire(make_sandbox: SandboxFactory) -> None:
    sandbox = await make_sandbox(media_url_ttl=-1)
    _, body = await upload(sandbox, PNG, "image/png")
    async with sandbox.session.get(sandbox.url(f"/v23.0/{body['id']}"), headers=AUTH) as r:
        url = (await r.json())["url"]
    async with sandbox.session.get(url, headers=AUTH) as response:
        assert response.status == 404


async def test_unknown_media_id_is_meta_unknown_object(sandbox: Sandbox) -> None:
    async with sandbox.session.get(sandbox.url("/v23.0/123456"), headers=AUTH) as response:
        body = await response.json()
    assert response.status == 400
    assert (body["error"]["code"], body["error"]["error_subcode"]) == (100, 33)


async def test_unsupported_or_too_big_uploads_are_131053(sandbox: Sandbox) -> None:
    status, body = await upload(sandbox, b"MZ...", "application/x-msdownload")
    assert (status, body["error"]["code"]) == (400, 131053)
    status, body = await upload(sandbox, b"x" * (500 * 1024 + 1), "image/webp")
    assert (status, body["error"]["code"]) == (400, 131053)


async def test_a_photo_from_the_user_can_be_fetched_by_the_bot(
    sandbox: Sandbox, bot: FakeBot
) -> None:
    form = aiohttp.FormData()
    form.add_field("file", PNG, filename="me.png", content_type="image/png")
    form.add_field("caption", "minha foto")
    url = sandbox.url(f"/_sandbox/contacts/{ANA}/media")
    async with sandbox.session.post(url, data=form) as response:
        assert response.status == 200
    await bot.wait_for(lambda b: len(b.messages()) == 1)
    message = bot.messages()[0]
    assert message["type"] == "image"
    image = message["image"]
    assert (image["mime_type"], image["caption"]) == ("image/png", "minha foto")
    assert image["sha256"] == hashlib.sha256(PNG).hexdigest()
    async with GraphClient(access_token=ACCESS_TOKEN, base_url=sandbox.url("/")) as client:
        info = await client.get_media(image["id"])
        assert await client.download_media(info.url) == PNG


async def test_a_bot_image_by_unknown_media_id_fails_later(sandbox: Sandbox, bot: FakeBot) -> None:
    await sandbox.user_does({"type": "text", "text": "oi"})
    status, body = await sandbox.send(
        {"messaging_product": "whatsapp", "to": ANA, "type": "image", "image": {"id": "404"}}
    )
    assert status == 200
    wamid = body["messages"][0]["id"]
    await bot.wait_for(lambda b: any(s["id"] == wamid for s in b.statuses()))
    (failed,) = [s for s in bot.statuses() if s["id"] == wamid]
    assert (failed["status"], failed["errors"][0]["code"]) == ("failed", 131053)
