"""System programs some tests drive (installed by scripts/system-deps, which `make test` runs)."""

import os
import shutil

import pytest


def need_program(name: str, *alternatives: str) -> str:
    """The path of `name` (or an alternative); skip the test when missing, fail under CI."""
    for candidate in (name, *alternatives):
        path = shutil.which(candidate)
        if path:
            return path
    message = f"{name} is not installed (Debian: apt-get install {name}; see scripts/system-deps)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)
