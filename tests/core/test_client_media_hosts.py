"""download_media sends the access token only over https to Meta's media hosts, or to the
configured Graph API host: a media URL from a webhook is not a reason to hand the token out."""

import pytest

from connectors.whatsapp.core.client import GraphClient, UntrustedMediaURLError
from tests.conftest import ACCESS_TOKEN
from tests.support.graph_server import GraphServer


@pytest.mark.parametrize(
    "url",
    [
        "http://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=1",  # plain http
        "https://lookaside.fbsbx.com.evil.example/x",
        "https://evil.example/lookaside.fbsbx.com",
        "https://fbcdn.net.evil.example/x",
        "https://example.com/image.jpg",
        "http://127.0.0.1:9/x",  # loopback, but not the configured Graph API port
    ],
)
async def test_other_hosts_are_refused_before_any_request(url: str) -> None:
    async with GraphServer(access_token=ACCESS_TOKEN) as graph:
        client = GraphClient(access_token=ACCESS_TOKEN, base_url=graph.base_url)
        try:
            with pytest.raises(UntrustedMediaURLError, match="refusing to send the access token"):
                await client.download_media(url)
        finally:
            await client.close()
        assert graph.requests == []


async def test_the_graph_api_host_and_the_configured_media_hosts_are_used() -> None:
    async with GraphServer(access_token=ACCESS_TOKEN) as graph:
        media_id = graph.add_media(b"\x89PNG...", "image/png")
        client = GraphClient(access_token=ACCESS_TOKEN, base_url=graph.base_url, media_hosts=())
        try:
            info = await client.get_media(media_id)
            assert await client.download_media(info.url) == b"\x89PNG..."
        finally:
            await client.close()


def test_wildcards_match_subdomains_only() -> None:
    from connectors.whatsapp.core.client import _host_matches

    assert _host_matches("scontent.xx.fbcdn.net", "*.fbcdn.net")
    assert not _host_matches("fbcdn.net", "*.fbcdn.net")
    assert not _host_matches("evilfbcdn.net", "*.fbcdn.net")
    assert _host_matches("lookaside.fbsbx.com", "lookaside.fbsbx.com")
