"""The core and the sync bridge import no web framework, and the Rasa channel says what it needs.

Each check runs in a fresh interpreter where importing rasa, sanic, flask, django or
rest_framework fails, as on a machine where they are not installed.
"""

import subprocess
import sys
import textwrap

from tests.support.processes import PROJECT_ROOT

BLOCKER = textwrap.dedent(
    """
    import importlib.abc, sys
    BLOCKED = {"rasa", "rasa_sdk", "sanic", "flask", "django", "rest_framework"}
    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ModuleNotFoundError(f"No module named {name!r} (blocked)", name=name)
            return None
    sys.meta_path.insert(0, Block())
    """
)


def run_blocked(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", BLOCKER + textwrap.dedent(code)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_every_core_and_sync_module_imports_without_any_framework() -> None:
    result = run_blocked(
        """
        import importlib, pkgutil
        import connectors.whatsapp.core as core, connectors.whatsapp.sync as sync
        names = []
        for package in (core, sync):
            for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
                importlib.import_module(info.name)
                names.append(info.name)
        import connectors.whatsapp
        from connectors.whatsapp import builders
        leaked = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
        print(len(names), leaked)
        """
    )
    assert result.returncode == 0, result.stderr
    count, leaked = result.stdout.split(" ", 1)
    assert int(count) >= 16
    assert leaked.strip() == "[]"


def test_the_rasa_channel_without_rasa_names_the_extra_to_install() -> None:
    result = run_blocked(
        """
        try:
            from connectors.whatsapp import WhatsAppInput
        except ImportError as error:
            print(error)
        else:
            print("imported")
        """
    )
    assert result.returncode == 0, result.stderr
    assert "'rasa' extra" in result.stdout
    assert "Python 3.10" in result.stdout


def test_old_flat_module_paths_are_the_new_modules() -> None:
    result = run_blocked(
        """
        import connectors.whatsapp.parsing as old
        import connectors.whatsapp.core.parsing as new
        from connectors.whatsapp.webhook import WebhookRequest
        from connectors.whatsapp.core.webhook import WebhookRequest as New
        print(old is new, WebhookRequest is New)
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "True"]
