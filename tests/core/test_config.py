import re

import pytest

from connectors.whatsapp.core.config import DEFAULT_API_BASE_URL, ConfigError, WhatsAppConfig

REQUIRED = {
    "access_token": "token",
    "phone_number_id": "123",
    "verify_token": "verify",
    "app_secret": "secret",
}


def test_config_defaults_apply_when_only_required_keys_are_given() -> None:
    config = WhatsAppConfig.from_mapping(REQUIRED)
    assert config.api_version == "v23.0"
    assert config.api_base_url == DEFAULT_API_BASE_URL
    assert config.validate_signature and config.mark_as_read and config.typing_indicator
    assert config.dedup == "memory"


@pytest.mark.parametrize("key", sorted(REQUIRED))
@pytest.mark.parametrize("empty", [None, "", "   "])
def test_config_missing_or_empty_required_key_is_named(key: str, empty: object) -> None:
    values = {**REQUIRED, key: empty}
    with pytest.raises(ConfigError, match=f"'{key}'"):
        WhatsAppConfig.from_mapping(values)


def test_config_app_secret_is_optional_without_signature_validation() -> None:
    values = {**REQUIRED, "app_secret": None, "validate_signature": False}
    assert WhatsAppConfig.from_mapping(values).app_secret is None


def test_config_falls_back_to_whatsapp_environment_variables() -> None:
    env = {
        "WHATSAPP_ACCESS_TOKEN": "env-token",
        "WHATSAPP_PHONE_NUMBER_ID": "999",
        "WHATSAPP_VERIFY_TOKEN": "env-verify",
        "WHATSAPP_APP_SECRET": "env-secret",
        "WHATSAPP_API_VERSION": "24.0",
        "WHATSAPP_API_BASE_URL": "http://127.0.0.1:5100/",
    }
    config = WhatsAppConfig.from_env(env)
    assert (config.access_token, config.phone_number_id) == ("env-token", "999")
    assert config.api_version == "v24.0"
    assert config.api_base_url == "http://127.0.0.1:5100"
    # A credentials.yml value wins over the environment.
    assert WhatsAppConfig.from_mapping({"phone_number_id": "1"}, env).phone_number_id == "1"


def test_config_rejects_an_unexpanded_placeholder() -> None:
    with pytest.raises(ConfigError, match="unexpanded placeholder"):
        WhatsAppConfig.from_mapping({**REQUIRED, "access_token": "${WHATSAPP_ACCESS_TOKEN}"})


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("validate_signature", "maybe", "true or false"),
        ("dedup", "memcached", "'memory' or 'redis'"),
        ("dedup_ttl_seconds", "soon", "a number"),
        ("dedup_ttl_seconds", 0, "at least"),
        ("intents", ["x"], "message kinds"),
        ("list_button_label", "a label that is far too long", "20 characters"),
        ("access_token", {"nested": 1}, "must be a string"),
    ],
)
def test_config_invalid_values_are_named(key: str, value: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        WhatsAppConfig.from_mapping({**REQUIRED, key: value})


def test_config_repr_hides_secrets() -> None:
    shown = repr(WhatsAppConfig.from_mapping(REQUIRED))
    assert "token" not in shown.replace("verify_token", "").replace("access_token", "")
    assert "secret" not in shown.replace("app_secret", "")


def test_config_wording_the_renderer_adds_is_portuguese_by_default_and_configurable() -> None:
    options = WhatsAppConfig.from_mapping(REQUIRED).render_options()
    assert (options.list_button_label, options.empty_body) == ("Opções", "Escolha uma opção")
    assert options.more_options_body.format(index=2, total=3) == "Mais opções (2/3)"
    custom = {**REQUIRED, "list_button_label": "Options", "more_options_body": "More {index}"}
    assert WhatsAppConfig.from_mapping(custom).render_options().list_button_label == "Options"
    with pytest.raises(ConfigError, match="placeholders"):
        WhatsAppConfig.from_mapping({**REQUIRED, "more_options_body": "More {page}"})


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("api_base_url", "graph.facebook.com"),
        ("api_base_url", "ftp://example.com"),
        ("redis_url", "nonsense"),
        ("dedup_ttl_seconds", "inf"),
        ("drain_timeout_seconds", "nan"),
    ],
)
def test_config_invalid_urls_and_numbers_stop_start_up_naming_the_key(key: str, value: str) -> None:
    with pytest.raises(ConfigError, match=f"'{key}'"):
        WhatsAppConfig.from_mapping({**REQUIRED, key: value})


def test_config_intents_come_from_whatsapp_intents_as_json() -> None:
    env = {"WHATSAPP_INTENTS": '{"sticker": null, "location": "onde_estou"}'}
    config = WhatsAppConfig.from_mapping(REQUIRED, env)
    assert config.intents == {"sticker": None, "location": "onde_estou"}
    with pytest.raises(ConfigError, match="JSON object"):
        WhatsAppConfig.from_mapping(REQUIRED, {"WHATSAPP_INTENTS": "sticker=none"})


def test_an_unknown_whatsapp_variable_is_named_in_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    env = {
        "WHATSAPP_DEDUPE": "redis",  # a typo of WHATSAPP_DEDUP
        "WHATSAPP_INPUT_CHANNEL": "x",  # not a setting: the input channel is always "whatsapp"
        "WHATSAPP_RASA_URL": "http://127.0.0.1:5005",  # the rasa answer backend's
        "WHATSAPP_DEDUP": "memory",
    }
    with caplog.at_level("WARNING", logger="connectors.whatsapp.core.config"):
        WhatsAppConfig.from_mapping(REQUIRED, env)
    warned = " ".join(record.getMessage() for record in caplog.records)
    assert set(re.findall(r"WHATSAPP_\w+", warned)) == {"WHATSAPP_DEDUPE", "WHATSAPP_INPUT_CHANNEL"}


@pytest.mark.parametrize("key", ["dedup", "queue"])
def test_a_config_built_directly_refuses_an_unknown_mode(key: str) -> None:
    with pytest.raises(ConfigError, match=f"'{key}' must be 'memory' or 'redis'"):
        WhatsAppConfig(access_token="t", phone_number_id="1", verify_token="v", **{key: "redsi"})
