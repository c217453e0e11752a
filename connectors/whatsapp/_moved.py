"""Aliases for the modules of the first, flat layout, so code written against it keeps working.

`import connectors.whatsapp.drf` (or `from connectors.whatsapp.parsing import parse_webhook`)
imports the module's new home and registers it under the old name too: one module object, not
a copy, so isinstance checks and monkeypatching agree. New code should use the new paths.
"""

import importlib
import importlib.abc
import importlib.machinery
import sys
import types
from collections.abc import Sequence

MOVED: dict[str, str] = {
    **{
        name: f"core.{name}"
        for name in (
            "builders",
            "client",
            "config",
            "dedup",
            "errors",
            "events",
            "inbound",
            "limits",
            "ordering",
            "parsing",
            "processing",
            "rendering",
            "retry",
            "signature",
            "textfit",
            "webhook",
        )
    },
    "rasa_channel": "adapters.rasa_channel",
    "flask_adapter": "adapters.flask_blueprint",
    "drf": "adapters.drf_view",
    "service": "sync.service",
    "backends": "sync.backends",
}
"""Old module name (under connectors.whatsapp) -> new one (relative to it)."""


class _AliasLoader(importlib.abc.Loader):
    def __init__(self, target: str) -> None:
        self._target = target

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        module = importlib.import_module(self._target)
        sys.modules[spec.name] = module
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        """Already executed under its new name."""


class _AliasFinder(importlib.abc.MetaPathFinder):
    def __init__(self, package: str) -> None:
        self._prefix = package + "."
        self._package = package

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: types.ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if not fullname.startswith(self._prefix):
            return None
        new = MOVED.get(fullname[len(self._prefix) :])
        if new is None:
            return None
        return importlib.machinery.ModuleSpec(
            fullname, _AliasLoader(f"{self._package}.{new}"), is_package=False
        )


def install_aliases(package: str) -> None:
    """Make `package.<old name>` import `package.<new name>` (idempotent)."""
    if not any(isinstance(finder, _AliasFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _AliasFinder(package))
