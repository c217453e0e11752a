"""What `WebhookEndpoint` builds from `WhatsAppConfig`: every setting reaches the part it is for."""

import pytest

from connectors.whatsapp.core.client import UntrustedMediaURLError
from connectors.whatsapp.core.config import WhatsAppConfig
from connectors.whatsapp.core.endpoint import WebhookEndpoint
from tests.support.settings import credentials


async def test_media_hosts_reach_the_endpoints_graph_client() -> None:
    config = WhatsAppConfig.from_mapping(
        credentials("http://127.0.0.1:9", media_hosts=["media.example"])
    )
    endpoint = WebhookEndpoint(config)
    try:
        # Refused before any request, naming the configured hosts instead of Meta's defaults.
        with pytest.raises(UntrustedMediaURLError, match=r"from media\.example or"):
            await endpoint.client.download_media("https://elsewhere.example/photo.jpg")
        with pytest.raises(UntrustedMediaURLError):
            await endpoint.client.download_media("https://lookaside.fbsbx.com/x?mid=1")
    finally:
        await endpoint.close()
