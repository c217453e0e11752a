"""Training the sample bot once per test run, with the project's own light pipeline."""

import hashlib
from pathlib import Path

from tests.support.processes import PROJECT_ROOT

TRAINING_INPUTS = ("config.yml", "domain.yml", "data")


def training_fingerprint() -> str:
    """A hash of everything the model is trained from."""
    digest = hashlib.sha256()
    for name in TRAINING_INPUTS:
        path = PROJECT_ROOT / name
        files = sorted(path.rglob("*")) if path.is_dir() else [path]
        for file in files:
            if file.is_file():
                digest.update(str(file.relative_to(PROJECT_ROOT)).encode())
                digest.update(file.read_bytes())
    return digest.hexdigest()[:16]


def train_model(output_dir: Path) -> Path:
    """Train (in this process, about 10 s) and return the model archive's path."""
    import rasa.api

    result = rasa.api.train(
        domain=str(PROJECT_ROOT / "domain.yml"),
        config=str(PROJECT_ROOT / "config.yml"),
        training_files=[str(PROJECT_ROOT / "data")],
        output=str(output_dir),
        fixed_model_name=f"test-{training_fingerprint()}",
    )
    if result.code != 0 or not result.model:
        raise RuntimeError(f"rasa train failed with code {result.code}")
    return Path(result.model)
