"""The channel's test settings, in the two forms users give them: `WHATSAPP_*` variables (Flask,
Django, `server.py`, a credentials.yml with `${VAR}`) and a credentials mapping (credentials.yml,
`WhatsAppConfig.from_mapping`).

The values are the suite's (`tests.conftest`), so every suite configures the channel the same way
and a setting that becomes required is added here once. Overrides name the setting as the user
does (`WHATSAPP_BACKEND="echo"`, `mark_as_read=False`); anything else an environment needs
(`FLASK_SKIP_DOTENV`) passes through.
"""

from typing import Any

from connectors.whatsapp.core.config import ENV_PREFIX
from tests.conftest import ACCESS_TOKEN, APP_SECRET, PHONE_NUMBER_ID, VERIFY_TOKEN


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


def whatsapp_env(graph_url: str | None = None, **overrides: str) -> dict[str, str]:
    """The same settings as `WHATSAPP_<KEY>` variables (the channel's own naming, `ENV_PREFIX`),
    then `overrides`, which name the variables themselves."""
    env = {ENV_PREFIX + key.upper(): str(value) for key, value in credentials(graph_url).items()}
    env.update(overrides)
    return env
