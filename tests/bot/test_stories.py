"""`rasa test` on the conversation tests in tests/test_stories.yml, with the trained sample bot."""

import subprocess
from pathlib import Path

import pytest

from tests.support.processes import PROJECT_ROOT, RASA, child_env

pytestmark = pytest.mark.e2e


def test_conversation_stories_pass(trained_model: Path, tmp_path: Path) -> None:
    result = subprocess.run(
        [
            *(RASA, "test", "core", "-m", str(trained_model)),
            *("--stories", "tests/test_stories.yml", "--fail-on-prediction-errors"),
            *("--no-plot", "--out", str(tmp_path)),
        ],
        cwd=PROJECT_ROOT,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    failed = tmp_path / "failed_test_stories.yml"
    assert not failed.exists() or "None of the test stories failed" in failed.read_text()
