"""A Rasa project that already has its own `connectors/` package can still use this channel.

`connectors` is a namespace package here (PEP 420: no `__init__.py`), so a project's
`connectors/` merges with it when it has no `__init__.py` either, or when its `__init__.py`
extends its `__path__` (the README's two ways). A plain package without either hides ours:
the third test shows the failure the README warns about.
"""

import os
import site
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.processes import PROJECT_ROOT

EXTEND_PATH = "__path__ = __import__('pkgutil').extend_path(__path__, __name__)\n"
CHECK = (
    "import connectors.mychannel, connectors.whatsapp.core.endpoint;"
    "from connectors.whatsapp import builders;"
    "print(connectors.mychannel.NAME, builders.__name__)"
)


def run_in_project(project: Path) -> subprocess.CompletedProcess[str]:
    """Python started in the bot's folder (as `rasa run` is), this channel installed beside.

    `-S` skips the `.pth` files, so the checkout's editable install (whose finder would resolve
    `connectors.whatsapp` by name, whatever the project's package says) is not in play: the
    checkout's folder then stands where a regular install puts the package.
    """
    path = [str(project), str(PROJECT_ROOT), *site.getsitepackages()]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path)}
    return subprocess.run(
        [sys.executable, "-S", "-c", CHECK],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def make_project(tmp_path: Path, init: str | None) -> Path:
    package = tmp_path / "connectors"
    package.mkdir()
    (package / "mychannel.py").write_text('NAME = "mine"\n')
    if init is not None:
        (package / "__init__.py").write_text(init)
    return tmp_path


@pytest.mark.parametrize("init", [None, EXTEND_PATH], ids=["namespace", "extend_path"])
def test_the_projects_connectors_and_this_channel_import_side_by_side(
    tmp_path: Path, init: str | None
) -> None:
    result = run_in_project(make_project(tmp_path, init))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["mine", "connectors.whatsapp.core.builders"]


def test_a_plain_connectors_package_hides_this_channel(tmp_path: Path) -> None:
    result = run_in_project(make_project(tmp_path, '"""My channels."""\n'))
    assert result.returncode != 0
    assert "No module named 'connectors.whatsapp'" in result.stderr
