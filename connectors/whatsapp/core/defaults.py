"""Defaults shared by the settings, the Graph client and the renderer: one value, one place."""

API_VERSION = "v23.0"
"""Graph API version used when none is configured; Meta supports v23.0 until 2027-10-08
(https://developers.facebook.com/docs/graph-api/changelog/versions)."""
API_BASE_URL = "https://graph.facebook.com"

LIST_BUTTON_LABEL = "Opções"
"""The button that opens a list (at most 20 characters). The sample bot speaks Portuguese."""
EMPTY_BODY = "Escolha uma opção"
"""The body of buttons sent without text: Meta requires a non-empty body."""
MORE_OPTIONS_BODY = "Mais opções ({index}/{total})"
"""The body of the second and later lists when a message has more than 10 options."""
