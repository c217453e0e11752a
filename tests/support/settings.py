"""The channel's test settings, in the two forms users give them: `WHATSAPP_*` variables (Flask,
Django, `server.py`, a credentials.yml with `${VAR}`) and a credentials mapping (credentials.yml,
`WhatsAppConfig.from_mapping`).

The values are the suite's (`tests.conftest`), so every suite configures the channel the same way
and a setting that becomes required is added here once. Overrides name the setting as the user
does (`WHATSAPP_BACKEND="echo"`, `mark_as_read=False`); anything else an environment needs
(`FLASK_SKIP_DOTENV`) passes through.
"""

from typing import Any

from tests.conftest import ACCESS_TOKEN, APP_SECRET, PHONE_NUMBER_ID, VERIFY_TOKEN


def whatsapp_env(graph_url: str | None = None, **overrides: str) -> dict[str, str]:
    """The required `WHATSAPP_*` variables, `WHATSAPP_API_BASE_URL` when given, then `overrides`."""
    env = {
        "WHATSAPP_ACCESS_TOKEN": ACCESS_TOKEN,
        "WHATSAPP_PHONE_NUMBER_ID": PHONE_NUMBER_ID,
        "WHATSAPP_VERIFY_TOKEN": VERIFY_TOKEN,
        "WHATSAPP_APP_SECRET": APP_SECRET,
    }
    if graph_url is not None:
        env["WHATSAPP_API_BASE_URL"] = graph_url
    env.update(overrides)
    return env


def credentials(graph_url: str | None = None, **overrides: Any) -> dict[str, Any]:
    """The required credentials.yml keys, `api_base_url` when given, then `overrides`."""
    values: dict[str, Any] = {
        "access_token": ACCESS_TOKEN,
        "phone_number_id": PHONE_NUMBER_ID,
        "verify_token": VERIFY_TOKEN,
        "app_secret": APP_SECRET,
    }
    if graph_url is not None:
        values["api_base_url"] = graph_url
    values.update(overrides)
    return values
