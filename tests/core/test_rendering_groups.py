"""Rendering for a WhatsApp group: no interactive messages, a numbered menu instead, every body
addressed to the group (Meta: groups take text, media and templates only)."""

from typing import Any

from connectors.whatsapp.core.rendering import render_bot_message, render_group_message

GROUP = "Y2FwaV9ncm91cDoxMjAzNjMwNDI3NzgxNjQ4OTQ="
BUTTONS = [
    {"title": "Ver categorias", "payload": "/ver_categorias"},
    {"title": "Carrinho", "payload": "/ver_carrinho"},
]


def addressed_to_the_group(bodies: list[dict[str, Any]]) -> None:
    assert bodies
    for body in bodies:
        assert body["recipient_type"] == "group"
        assert body["to"] == GROUP
        assert "recipient" not in body
        assert body["type"] != "interactive"


def test_buttons_become_a_numbered_menu_and_its_payloads_are_returned() -> None:
    bodies, menu = render_group_message({"text": "O que deseja?", "buttons": BUTTONS}, to=GROUP)
    addressed_to_the_group(bodies)
    assert [body["text"]["body"] for body in bodies] == [
        "O que deseja?\n\n1. Ver categorias\n2. Carrinho"
    ]
    assert menu == ["/ver_categorias", "/ver_carrinho"]
    # The same message to one person stays interactive.
    [single] = render_bot_message({"text": "O que deseja?", "buttons": BUTTONS}, to="5511987654321")
    assert single["type"] == "interactive"


def test_a_long_list_is_one_menu_with_every_option() -> None:
    buttons = [{"title": f"Opção {n}", "payload": f"/p{n}"} for n in range(1, 15)]
    bodies, menu = render_group_message({"text": "Escolha", "buttons": buttons}, to=GROUP)
    addressed_to_the_group(bodies)
    assert menu == [f"/p{n}" for n in range(1, 15)]
    assert "14. Opção 14" in bodies[-1]["text"]["body"]


def test_links_and_images_become_text_and_media() -> None:
    message = {
        "elements": [
            {
                "title": "Camiseta",
                "image_url": "https://example.com/camiseta.jpg",
                "buttons": [
                    {"title": "Comprar", "payload": "/comprar"},
                    {"title": "Site", "url": "https://example.com/c", "type": "web_url"},
                ],
            }
        ]
    }
    bodies, menu = render_group_message(message, to=GROUP)
    addressed_to_the_group(bodies)
    assert [body["type"] for body in bodies] == ["image", "text"]
    assert bodies[1]["text"]["body"] == "Camiseta\n\n1. Comprar\nSite: https://example.com/c"
    assert menu == ["/comprar"]


def test_a_custom_interactive_object_becomes_a_numbered_menu() -> None:
    custom = {
        "type": "interactive",
        "interactive": {
            "type": "list",
            "body": {"text": "Categorias"},
            "action": {
                "button": "Ver",
                "sections": [{"rows": [{"id": '/cat{"c": 1}', "title": "Roupas"}]}],
            },
        },
    }
    bodies, menu = render_group_message({"custom": custom}, to=GROUP)
    addressed_to_the_group(bodies)
    assert bodies[0]["text"]["body"] == "Categorias\n\n1. Roupas"
    assert menu == ['/cat{"c": 1}']


def test_text_media_and_templates_go_as_they_are() -> None:
    template = {"type": "template", "template": {"name": "lembrete", "language": {"code": "pt_BR"}}}
    bodies, menu = render_group_message(
        {"text": "Oi", "image": "https://example.com/a.png", "custom": template}, to=GROUP
    )
    addressed_to_the_group(bodies)
    assert [body["type"] for body in bodies] == ["text", "template", "image"]
    assert menu == []
