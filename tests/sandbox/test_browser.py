"""A user in headless Chromium, talking to the real sample bot through the sandbox's chat page.

The whole stack runs as `make run` runs it (`python -m devtools.run`): the action server, `rasa run`
with the WhatsApp channel pointed at the sandbox, and the sandbox. Chromium is Debian's
(`apt-get install chromium`), driven by Playwright; Playwright's own browsers are never used.

`SANDBOX_SCREENSHOT=docs/sandbox.png` saves the README's screenshot of the conversation.
"""

import json
import os
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Locator, Page, expect, sync_playwright

from devtools.supervisor import port_in_use
from sandbox.config import DEFAULT_ACCESS_TOKEN, DEFAULT_PHONE_NUMBER_ID
from tests.sandbox.conftest import RunningStack

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    # No test reaches an outside host: the browser resolves loopback names only (the sample bot's
    # pictures are public URLs; offline they show the sandbox's "not reachable" placeholder).
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost",
]


def _is_local(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    return url.startswith(("data:", "blob:", "about:")) or host in ("127.0.0.1", "localhost")


ANA, BRUNO, CARLA = "5511987654321", "5521998765432", "5531987651234"
BOT_TIMEOUT = 30_000
"""Milliseconds for the bot to answer (the first turn also loads the model's components)."""
PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f"
    b"\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\xcf\xc0\xf0\x1f\x00\x05\x00\x01\xff\x89\x99=\x1d"
    b"\x00\x00\x00\x00IEND\xaeB`\x82"
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser, stack: RunningStack) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="pt-BR")
    context.route(lambda url: not _is_local(url), lambda route: route.abort())
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(stack.url)
    expect(page.get_by_test_id("connection")).to_contain_text("Bot number")
    yield page
    context.close()
    assert errors == [], f"JavaScript errors in the page: {errors}"


def bot_says(page: Page, text: str) -> Locator:
    """The bot's bubble containing `text`, once it is there."""
    bubble = page.get_by_test_id("message-in").filter(has_text=text)
    expect(bubble.last).to_be_visible(timeout=BOT_TIMEOUT)
    return bubble.last


def as_contact(page: Page, wa_id: str) -> None:
    page.locator(f"[data-testid=contact-item][data-wa-id='{wa_id}']").click()


def say(page: Page, text: str) -> None:
    composer = page.get_by_test_id("composer-input")
    composer.fill(text)
    composer.press("Enter")


def test_greet_tap_a_button_choose_a_row_share_a_location(page: Page) -> None:
    as_contact(page, ANA)
    say(page, "oi")
    bot_says(page, "Olá, Ana! 👋 Eu sou o assistente virtual da Loja Exemplo.")
    menu = bot_says(page, "Como posso ajudar? Escolha uma opção:")
    buttons = menu.get_by_test_id("reply-button")
    expect(buttons).to_have_text(["Planos", "Loja mais próxima", "Categorias"])
    # The bot marked "oi" read: blue ticks, driven by its read receipt.
    greeting = page.get_by_test_id("message-out").filter(has_text="oi").first
    expect(greeting).to_have_attribute("data-status", "read", timeout=BOT_TIMEOUT)

    buttons.filter(has_text="Categorias").click()
    expect(page.get_by_test_id("message-out").last).to_contain_text("Categorias")
    categories = bot_says(page, "Escolha uma categoria para ver os produtos:")
    expect(categories).to_have_attribute("data-kind", "list")
    categories.get_by_test_id("list-open-button").click()
    sheet = page.get_by_test_id("list-sheet")
    expect(sheet.get_by_test_id("list-row")).to_have_count(6)
    sheet.get_by_test_id("list-row").filter(has_text="Livros").click()
    page.get_by_test_id("list-send").click()
    expect(sheet).to_be_hidden()
    expect(page.get_by_test_id("message-out").last).to_contain_text("Livros")
    products = bot_says(page, "Livros: escolha um produto para ver a foto e o preço.")
    expect(products.get_by_test_id("list-open-button")).to_have_text("Ver produtos")
    screenshot = os.environ.get("SANDBOX_SCREENSHOT")
    if screenshot:  # buttons, a list, replies and read ticks in one view
        expect(page.get_by_test_id("message-out").last).to_have_attribute("data-status", "read")
        page.screenshot(path=screenshot)

    buttons.filter(has_text="Loja mais próxima").click()
    request = bot_says(page, "Para encontrar a loja mais próxima, toque no botão abaixo")
    request.get_by_test_id("location-request-button").click()
    page.locator("[data-testid=location-option][data-name='Avenida Paulista'] input").check()
    page.get_by_test_id("location-send").click()
    shared = page.locator("[data-testid=message-out][data-kind=location]").last
    expect(shared).to_contain_text("Avenida Paulista")
    bot_says(page, "A loja mais próxima é a Loja Paulista")
    pin = page.locator("[data-testid=message-in][data-kind=location]").last
    expect(pin).to_contain_text("Loja Paulista")
    expect(page.get_by_test_id("typing-indicator")).to_have_count(0)


def test_send_a_photo_and_see_the_reaction(page: Page, tmp_path: Path) -> None:
    photo = tmp_path / "sala.png"
    photo.write_bytes(PNG)
    as_contact(page, BRUNO)
    page.get_by_test_id("attach-button").click()
    with page.expect_file_chooser() as chooser:
        page.get_by_test_id("attach-photo").click()
    chooser.value.set_files(str(photo))
    page.get_by_test_id("photo-caption").fill("minha sala")
    page.get_by_test_id("photo-send").click()
    sent = page.locator("[data-testid=message-out][data-kind=image]").last
    expect(sent).to_contain_text("minha sala")
    expect(sent.locator("img")).to_have_js_property("naturalWidth", 1)
    bot_says(page, "Recebi sua foto 📷 com a legenda")
    expect(sent.get_by_test_id("reaction")).to_have_text("👍", timeout=BOT_TIMEOUT)


def graph(stack: RunningStack, path: str, body: dict[str, Any]) -> Any:
    """Call the sandbox's Graph API the way the bot does."""
    request = urllib.request.Request(
        f"{stack.url}/v23.0/{DEFAULT_PHONE_NUMBER_ID}/{path}",
        data=json.dumps(body).encode(),
        headers={
            "Authorization": f"Bearer {DEFAULT_ACCESS_TOKEN}",
            "Content-Type": "application/json",
        },
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def test_typing_indicator_images_and_documents(page: Page, stack: RunningStack) -> None:
    as_contact(page, CARLA)
    say(page, "tchau")
    bot_says(page, "Até logo!")
    last_user_message = page.get_by_test_id("message-out").last.get_attribute("data-id")
    assert last_user_message
    graph(
        stack,
        "messages",
        {
            "messaging_product": "whatsapp",
            "status": "read",
            "message_id": last_user_message,
            "typing_indicator": {"type": "text"},
        },
    )
    expect(page.get_by_test_id("typing-indicator")).to_be_visible()
    expect(page.get_by_test_id("chat-subtitle")).to_have_text("digitando…")
    envelope = {"messaging_product": "whatsapp", "to": CARLA}
    graph(
        stack,
        "messages",
        envelope
        | {
            "type": "image",
            "image": {"link": f"{stack.url}/static/icon.svg", "caption": "Nossa logo"},
        },
    )
    expect(page.get_by_test_id("typing-indicator")).to_have_count(0)
    image = page.locator("[data-testid=message-in][data-kind=image]").last
    expect(image).to_contain_text("Nossa logo")
    expect(image.get_by_test_id("bot-image")).to_have_attribute(
        "src", f"{stack.url}/static/icon.svg"
    )
    graph(
        stack,
        "messages",
        envelope
        | {
            "type": "document",
            "document": {"link": "https://example.com/catalogo.pdf", "filename": "catalogo.pdf"},
        },
    )
    document = page.locator("[data-testid=message-in][data-kind=document]").last
    expect(document.get_by_test_id("document")).to_contain_text("catalogo.pdf")
    graph(
        stack,
        "messages",
        envelope
        | {
            "type": "interactive",
            "interactive": {
                "type": "cta_url",
                "body": {"text": "Veja o catálogo"},
                "action": {
                    "name": "cta_url",
                    "parameters": {"display_text": "Abrir", "url": "https://example.com/c"},
                },
            },
        },
    )
    cta = page.get_by_test_id("cta-button").last
    expect(cta).to_have_text("Abrir")
    expect(cta).to_have_attribute("href", "https://example.com/c")


def test_add_a_contact_and_watch_the_bot_retry_through_injected_throttling(page: Page) -> None:
    page.get_by_test_id("add-contact").click()
    page.get_by_test_id("add-contact-name").fill("Diego Lima")
    page.get_by_test_id("add-contact-phone").fill("+55 11 91234-5678")
    page.get_by_test_id("add-contact-save").click()
    diego = page.locator("[data-testid=contact-item][data-wa-id='5511912345678']")
    expect(diego).to_contain_text("Diego Lima")
    expect(diego).to_have_class("contact active")
    page.get_by_test_id("dev-toggle").click()
    page.get_by_test_id("fault-throttle").click()
    expect(page.get_by_test_id("pending-faults")).to_contain_text("throttle #130429")
    say(page, "oi")
    bot_says(page, "Olá, Diego! 👋")
    expect(page.get_by_test_id("pending-faults")).to_be_empty()
    log = page.get_by_test_id("event-log")
    expect(log).to_contain_text("throttle: send call answered 400 (#130429)")


def test_ctrl_c_stops_everything(stack: RunningStack) -> None:
    """Last: the run command stops its children on Ctrl-C and exits 0."""
    assert stack.stop() == 0, stack.output()[-3000:]
    port = int(stack.url.rsplit(":", 1)[1])
    assert not port_in_use(port)
    assert not port_in_use(5055)
