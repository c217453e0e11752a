"""Leaves out the deprecation warnings raised inside installed libraries, in `make run`'s children.

Python imports `sitecustomize` at start-up from the path (https://docs.python.org/3/library/site.html);
devtools/run.py puts this folder first on the PYTHONPATH of the processes it starts, unless the
user set PYTHONWARNINGS to something other than `ignore`.

Why not `PYTHONWARNINGS=ignore` alone (which run.py also sets): Sanic, which Rasa imports early,
puts `filterwarnings("once", category=DeprecationWarning)` in front of the interpreter's filters
(sanic/app.py), so every deprecation of the libraries imported after it prints anyway: about 40
lines (SQLAlchemy's MovedIn20Warning, pkg_resources, distutils, pyparsing, TensorFlow) before the
bot is up, none of them the user's to fix. Filtering the output instead would have to guess where
a warning ends. Here the warning itself is judged, by its category and the file that raised it,
and nothing else is touched: Rasa's UserWarnings about the bot's data and its FutureWarnings
about deprecated settings (Rasa raises its own deprecations as FutureWarning, so that users see
them), every warning raised by the project's own code, log records, tracebacks.

`bench/_harness.py` wraps `showwarning` the same way for the benchmarks' own process, with a wider
rule (every warning from site-packages, so that a benchmark prints only its tables); the two are
kept apart because they judge differently and run in different processes.
"""

import importlib.machinery
import importlib.util
import sys
import warnings
from pathlib import Path
from typing import TextIO

_LIBRARY_FOLDERS = frozenset(("site-packages", "dist-packages"))
_show = warnings.showwarning


def _is_library_deprecation(category: type[Warning], filename: str) -> bool:
    return issubclass(category, DeprecationWarning | PendingDeprecationWarning) and not (
        _LIBRARY_FOLDERS.isdisjoint(Path(filename).parts)
    )


def _show_unless_library_deprecation(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    if not _is_library_deprecation(category, filename):
        _show(message, category, filename, lineno, file, line)


warnings.showwarning = _show_unless_library_deprecation


def _run_the_next_sitecustomize() -> None:
    """This module shadows any other `sitecustomize` (a distribution's, a virtualenv's): run it."""
    here = str(Path(__file__).resolve().parent)
    rest = [entry for entry in sys.path if entry and str(Path(entry).resolve()) != here]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", rest)
    if spec is None or spec.loader is None:
        return
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)


_run_the_next_sitecustomize()
