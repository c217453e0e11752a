"""Loading user code named in a setting ("package.module:attribute"), with errors that name it."""

import importlib
from typing import Any

from connectors.whatsapp.core.config import ConfigError


def import_object(path: str, setting: str) -> Any:
    """Import what `path` names: "package.module:attribute" or "package.module.attribute".

    Raises:
        ConfigError: naming `setting` when the path is malformed or cannot be imported.
    """
    text = path.strip()
    if ":" in text:
        module_name, _, attribute = text.partition(":")
    else:
        module_name, _, attribute = text.rpartition(".")
    if not module_name or not attribute or not attribute.replace(".", "").isidentifier():
        raise ConfigError(f"'{setting}' must be 'package.module:attribute', got {path!r}")
    try:
        found: Any = importlib.import_module(module_name)
        for name in attribute.split("."):
            found = getattr(found, name)
    except (ImportError, AttributeError) as error:
        raise ConfigError(f"'{setting}' {path!r} cannot be imported: {error}") from None
    return found
