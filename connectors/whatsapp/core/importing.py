"""User code named in a setting ("package.module:attribute"): importing it, with errors that name
the setting, and calling it, whether it is a function or a coroutine function."""

import importlib
import inspect
from collections.abc import Callable
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


async def call_hook(hook: Callable[..., Any], *args: Any) -> Any:
    """Call a hook that may be a plain function or a coroutine function; its (awaited) result."""
    result = hook(*args)
    if inspect.isawaitable(result):
        return await result
    return result
