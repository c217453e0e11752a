"""Settings for the 2026 platform: re-engagement template, opt-outs, edits, media hosts, hooks."""

from typing import Any

import pytest

from connectors.whatsapp.core.client import DEFAULT_MEDIA_HOSTS
from connectors.whatsapp.core.config import ConfigError, WhatsAppConfig
from connectors.whatsapp.core.window import ReengagementTemplate

BASE = {
    "access_token": "t",
    "phone_number_id": "106540352242922",
    "verify_token": "v",
    "app_secret": "s",
}


def config(env: dict[str, str] | None = None, **values: Any) -> WhatsAppConfig:
    return WhatsAppConfig.from_mapping({**BASE, **values}, env or {})


def test_defaults() -> None:
    settings = config()
    assert settings.reengagement_template is None
    assert settings.opt_out_keywords == ("STOP", "PARAR", "SAIR")
    assert settings.opt_out_intent == "whatsapp_opt_out"
    assert settings.edits is True
    assert settings.media_hosts == DEFAULT_MEDIA_HOSTS
    assert settings.event_hook is None


def test_reengagement_template_from_credentials_and_from_json() -> None:
    components = [{"type": "body", "parameters": [{"type": "text", "text": "{text}"}]}]
    expected = ReengagementTemplate("retomar", "pt_BR", tuple(components))
    given = {"name": "retomar", "language": "pt_BR", "components": components}
    assert config(reengagement_template=given).reengagement_template == expected
    env = {"WHATSAPP_REENGAGEMENT_TEMPLATE": '{"name": "retomar", "language": {"code": "pt_BR"}}'}
    assert config(env).reengagement_template == ReengagementTemplate("retomar", "pt_BR")


@pytest.mark.parametrize(
    "value",
    [
        {"name": "x"},
        {"language": "pt_BR"},
        {"name": "x", "language": "pt_BR", "components": "body"},
        {"name": "x", "language": "pt_BR", "lang": "pt"},
        ["x"],
    ],
)
def test_a_template_meta_could_not_send_is_refused_at_start_up(value: object) -> None:
    with pytest.raises(ConfigError, match="reengagement_template"):
        config(reengagement_template=value)


def test_opt_out_words_intent_and_edits_are_configurable() -> None:
    settings = config(opt_out_keywords=["cancelar", "baja"], opt_out_intent="/sair", edits=False)
    options = settings.inbound_options()
    assert (options.opt_out_keywords, options.opt_out_intent, options.edits) == (
        ("cancelar", "baja"),
        "sair",
        False,
    )
    assert config(opt_out_intent="").opt_out_intent is None
    env = {"WHATSAPP_OPT_OUT_KEYWORDS": "stop, fim", "WHATSAPP_MEDIA_HOSTS": "media.example"}
    from_env = config(env)
    assert from_env.opt_out_keywords == ("stop", "fim")
    assert from_env.media_hosts == ("media.example",)


def test_a_list_setting_of_the_wrong_type_is_refused() -> None:
    with pytest.raises(ConfigError, match="media_hosts"):
        config(media_hosts=[1, 2])
