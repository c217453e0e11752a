"""The 24-hour customer-service window, and the template sent when a bot message falls outside it.

A free-form message (text, media, interactive) reaches a user only within 24 hours of their last
message; outside that window only an approved template is delivered, and Meta refuses anything
else with error 131047 ("Re-engagement message"), at once as an HTTP 400 or later as a `failed`
status (https://developers.facebook.com/docs/whatsapp/pricing#customer-service-windows,
https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes).

Proactive bot messages (Rasa's trigger_intent, reminders, an action answering late) often land
outside it. The credentials key `reengagement_template` names the template to send instead:

    reengagement_template:
      name: retomar_conversa          # an approved template of the business
      language: pt_BR
      components:                     # optional; "{text}" stands for the bot's text
        - type: body
          parameters: [{type: text, text: "{text}"}]

The last message time per person lives in the identity store (`identity.py`), taken from each
message's own `timestamp`.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from connectors.whatsapp.core import builders
from connectors.whatsapp.core.events import BusinessNumber, ErrorDetail, StatusUpdate

WINDOW_SECONDS = 24 * 3600
"""The customer-service window: free-form messages reach a user only this long after their last
message (https://developers.facebook.com/docs/whatsapp/pricing#customer-service-windows)."""

TEXT_PLACEHOLDER = "{text}"
REENGAGEMENT_CODE = 131047
TEMPLATE_PARAMETER_LIMIT = 1024
"""A text parameter of a template body; longer bot text is cut there (with an ellipsis)."""


class TemplateConfigError(ValueError):
    """`reengagement_template` is not a template Meta could send; the message says why."""


@dataclass(frozen=True, slots=True)
class ReengagementTemplate:
    """The template sent instead of a free-form message outside the window."""

    name: str
    language: str
    components: tuple[Mapping[str, Any], ...] = field(default=())

    @classmethod
    def from_value(cls, value: object) -> ReengagementTemplate | None:
        """From credentials.yml (a mapping) or an environment variable (JSON); None if unset.

        Raises:
            TemplateConfigError: a value that is not `{name, language, components?}`.
        """
        if value is None or value == "" or value == {}:
            return None
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                raise TemplateConfigError("must be a mapping (or its JSON)") from None
        if not isinstance(value, Mapping):
            raise TemplateConfigError("must be a mapping with 'name' and 'language'")
        unknown = sorted(str(key) for key in value if key not in ("name", "language", "components"))
        if unknown:
            raise TemplateConfigError(f"unknown key(s) {unknown}; use name, language, components")
        name = value.get("name")
        language = value.get("language")
        if isinstance(language, Mapping):
            language = language.get("code")
        if not isinstance(name, str) or not name.strip():
            raise TemplateConfigError("'name' must be the template's name")
        if not isinstance(language, str) or not language.strip():
            raise TemplateConfigError("'language' must be a language code such as pt_BR")
        components = value.get("components") or ()
        if not isinstance(components, Sequence) or isinstance(components, str):
            raise TemplateConfigError("'components' must be a list of template components")
        if not all(isinstance(item, Mapping) for item in components):
            raise TemplateConfigError("each of 'components' must be a mapping")
        return cls(name.strip(), language.strip(), tuple(components))

    def body(self, text: str, to: str) -> builders.Body:
        """The template message for `to`, with "{text}" replaced by the bot's text."""
        fitted = " ".join(text.split())  # Meta refuses newlines and tabs in text parameters
        if len(fitted) > TEMPLATE_PARAMETER_LIMIT:
            fitted = fitted[: TEMPLATE_PARAMETER_LIMIT - 1] + "…"
        components = [_fill(copy.deepcopy(dict(item)), fitted) for item in self.components]
        return builders.template(self.name, self.language, components=components or None, to=to)


def _fill(value: Any, text: str) -> Any:
    if isinstance(value, str):
        return value.replace(TEXT_PLACEHOLDER, text)
    if isinstance(value, list):
        return [_fill(item, text) for item in value]
    if isinstance(value, dict):
        return {key: _fill(item, text) for key, item in value.items()}
    return value


def is_reengagement(status: StatusUpdate) -> bool:
    """A `failed` status refused because the window is closed (131047)."""
    return status.failed and any(error.code == REENGAGEMENT_CODE for error in status.errors)


def refusal_status(
    *, recipient: str, phone_number_id: str, message: str, message_id: str | None = None
) -> StatusUpdate:
    """A `failed` status standing for a send refused with 131047 at once (HTTP 400).

    Handed to the status hook, so that a refusal without a template to fall back on is seen
    the same way whether Meta said it at once or in a later status webhook.
    """
    return StatusUpdate(
        message_id=message_id or "",
        status="failed",
        recipient_id=recipient,
        business=BusinessNumber(phone_number_id=phone_number_id),
        errors=(
            ErrorDetail(code=REENGAGEMENT_CODE, title="Re-engagement message", message=message),
        ),
    )
