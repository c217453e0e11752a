"""The re-engagement template: "{text}" filled with the bot's text the way Meta accepts it."""

from connectors.whatsapp.core.parsing import parse_webhook
from connectors.whatsapp.core.window import ReengagementTemplate, is_reengagement, refusal_status
from tests.core.fixtures import load_fixture

COMPONENTS = (
    {"type": "header", "parameters": [{"type": "text", "text": "Loja"}]},
    {"type": "body", "parameters": [{"type": "text", "text": "Sua mensagem: {text}"}]},
)


def test_the_bots_text_fills_the_placeholder() -> None:
    body = ReengagementTemplate("retomar", "pt_BR", COMPONENTS).body("Seu pedido\nsaiu", to="55")
    assert body["type"] == "template"
    assert body["to"] == "55"
    assert body["template"]["name"] == "retomar"
    assert body["template"]["language"] == {"code": "pt_BR"}
    # Meta refuses newlines and tabs in a text parameter.
    assert (
        body["template"]["components"][1]["parameters"][0]["text"]
        == "Sua mensagem: Seu pedido saiu"
    )
    assert body["template"]["components"][0] == COMPONENTS[0]


def test_a_template_without_components_and_a_long_text() -> None:
    assert "components" not in ReengagementTemplate("oi", "en").body("x", to="55")["template"]
    body = ReengagementTemplate("t", "en", COMPONENTS[1:]).body("a" * 5000, to="BR.1")
    text = body["template"]["components"][0]["parameters"][0]["text"]
    assert len(text) <= len("Sua mensagem: ") + 1024 and text.endswith("…")
    assert body["recipient"] == "BR.1" and "to" not in body


def test_a_failed_131047_status_is_a_reengagement_refusal() -> None:
    [status] = parse_webhook(load_fixture("status_failed_reengagement"))
    assert is_reengagement(status)  # type: ignore[arg-type]
    [other] = parse_webhook(load_fixture("status_delivered"))
    assert not is_reengagement(other)  # type: ignore[arg-type]
    made = refusal_status(recipient="55", phone_number_id="1", message="Re-engagement message")
    assert is_reengagement(made)


def test_131050_the_user_stopped_marketing_messages_is_a_typed_policy_error() -> None:
    from connectors.whatsapp.core.errors import MarketingOptOutError, PolicyError, error_class_for

    assert error_class_for(131050, 400) is MarketingOptOutError
    assert issubclass(MarketingOptOutError, PolicyError)
    assert not MarketingOptOutError.retryable
