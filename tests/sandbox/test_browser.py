"""A user in headless Chromium, talking to the real sample bot through the sandbox's chat page.

The whole stack runs as `make run` runs it (`python -m devtools.run`): the action server, `rasa run`
with the WhatsApp channel pointed at the sandbox, and the sandbox. Chromium is Debian's
(`apt-get install chromium`), driven by Playwright; Playwright's own browsers are never used.

`SANDBOX_SCREENSHOT=docs/sandbox.png` saves the README's screenshot of the conversation (with
Debian's `fonts-noto-color-emoji` installed, or the bot's emoji show as boxes).
"""

import json
import os
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Locator, Page, expect, sync_playwright

from devtools.supervisor import port_in_use
from sandbox.config import DEFAULT_ACCESS_TOKEN, DEFAULT_GROUP_ID, DEFAULT_PHONE_NUMBER_ID
from tests.sandbox.conftest import REMINDER_SECONDS, RunningStack

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


def graph_error(stack: RunningStack, body: dict[str, Any]) -> tuple[int, Any]:
    """A Graph API call that Meta (and the sandbox) refuses: (HTTP status, error envelope)."""
    try:
        graph(stack, "messages", body)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())
    raise AssertionError("the call was accepted")


def as_group(page: Page, member: str) -> None:
    page.locator(f"[data-testid=group-item][data-group-id='{DEFAULT_GROUP_ID}']").click()
    page.get_by_test_id("member-select").select_option(member)


def test_a_group_with_two_members_and_what_groups_refuse(page: Page, stack: RunningStack) -> None:
    """The sandbox side of groups, driven through its Graph API as the channel drives it."""
    as_group(page, BRUNO)
    expect(page.get_by_test_id("you-are")).to_contain_text("Amigos da Loja")
    say(page, "bom dia, grupo")
    mine = page.get_by_test_id("message-out").filter(has_text="bom dia, grupo").last
    expect(mine.get_by_test_id("author")).to_have_text("Bruno Oliveira")
    as_group(page, ANA)
    say(page, "oi")
    expect(page.get_by_test_id("message-out").last.get_by_test_id("author")).to_have_text(
        "Ana Souza"
    )
    group = {"messaging_product": "whatsapp", "recipient_type": "group", "to": DEFAULT_GROUP_ID}
    menu = "Como posso ajudar? Responda com o número:\n1. Planos\n2. Loja mais próxima"
    graph(stack, "messages", group | {"type": "text", "text": {"body": menu}})
    bot_says(page, "2. Loja mais próxima")
    buttons = {
        "type": "interactive",
        "interactive": {
            "type": "button",
            "body": {"text": "Escolha"},
            "action": {"buttons": [{"type": "reply", "reply": {"id": "/a", "title": "A"}}]},
        },
    }
    status, body = graph_error(stack, group | buttons)
    assert (status, body["error"]["code"]) == (400, 131009)
    page.get_by_test_id("dev-toggle").click()
    expect(page.get_by_test_id("event-log")).to_contain_text("not supported for groups")


def test_the_bot_answers_in_the_group_with_a_numbered_menu(page: Page) -> None:
    """Groups take no interactive messages: the menu's buttons arrive as a numbered text menu,
    in the group, and nothing of it in the member's private chat."""
    as_group(page, ANA)
    answers = page.get_by_test_id("message-in")
    before = answers.count()
    say(page, "menu")
    expect(answers).to_have_count(before + 1, timeout=15_000)
    expect(answers.last).to_contain_text("1.")
    as_contact(page, ANA)
    expect(page.get_by_test_id("message-in").filter(has_text="menu")).to_have_count(0)


def test_25_hours_later_only_a_template_gets_through(page: Page, stack: RunningStack) -> None:
    """The bot's reminder is a template: it arrives after the window closed; free-form does not."""
    as_contact(page, BRUNO)
    say(page, "quero um lembrete")
    bot_says(page, "Combinado! Vou te mandar um lembrete")
    page.get_by_test_id("skip-25h").click()
    expect(page.get_by_test_id("time-skip").last).to_contain_text("25 hours later")
    status, body = graph_error(
        stack,
        {"messaging_product": "whatsapp", "to": BRUNO, "type": "text", "text": {"body": "Oi?"}},
    )
    assert (status, body["error"]["code"]) == (400, 131047)
    refused = page.locator("[data-testid=message-in][data-status=refused]").last
    expect(refused.get_by_test_id("delivery-error")).to_contain_text("#131047")
    # The reminder fires (REMINDER_SECONDS after it was asked for) as the template utter_lembrete.
    template = page.locator("[data-testid=message-in][data-kind=template]").last
    expect(template).to_be_visible(timeout=BOT_TIMEOUT + REMINDER_SECONDS * 1000)
    expect(template.get_by_test_id("template-name")).to_have_text("lembrete_loja")
    expect(template.get_by_test_id("template-language")).to_have_text("pt_BR")
    params = template.get_by_test_id("template-param")
    expect(params.first).to_have_text("Bruno")
    screenshot = os.environ.get("SANDBOX_TEMPLATE_SCREENSHOT")
    if screenshot:
        page.screenshot(path=screenshot)


def test_the_start_up_output_says_only_what_matters(stack: RunningStack) -> None:
    """No warning a user would worry about before the chat page is offered: the sandbox starts
    once the bot answers (so its webhook is verified at once, never "unreachable"), and the
    deprecation warnings of Rasa's libraries are left out."""
    start_up = stack.output().split("to chat with the bot")[0]
    assert "unreachable" not in start_up, start_up
    assert "DeprecationWarning" not in start_up and "MovedIn20Warning" not in start_up, start_up
    assert "webhooks/whatsapp/webhook is verified" in stack.output()


def test_ctrl_c_stops_everything(stack: RunningStack) -> None:
    """Last: the run command stops its children on Ctrl-C and exits 0."""
    assert stack.stop() == 0, stack.output()[-3000:]
    port = int(stack.url.rsplit(":", 1)[1])
    assert not port_in_use(port)
    assert not port_in_use(5055)
