"""What every benchmark shares: the import path, quiet logs, timing, and the comparison table.

`make bench` runs each `bench/bench_*.py` as a script, so Python puts `bench/` on the path, not
the project root; importing this module first makes `tests.support` (the servers and webhook
builders the benchmarks reuse) importable. It also silences the start-up noise of Rasa's
dependencies (TensorFlow's logs, their deprecation warnings) so that the output is the table.
"""

import json
import math
import os
import statistics
import sys
import time
import warnings
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

PROJECT_ROOT = Path(__file__).resolve().parents[1]
if str(PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(PROJECT_ROOT))

os.environ["RASA_TELEMETRY_ENABLED"] = "false"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("SQLALCHEMY_SILENCE_UBER_WARNING", "1")
_show_warning = warnings.showwarning


def _show_project_warnings(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    """Show warnings raised by this project's code, drop the installed packages' ones.

    A filter would not do: Sanic inserts its own DeprecationWarning filter when imported.
    """
    if "site-packages" not in filename:
        _show_warning(message, category, filename, lineno, file, line)


warnings.showwarning = _show_project_warnings


@dataclass(frozen=True, slots=True)
class Row:
    """One line of a comparison table: the same quantity measured for ours and the baseline."""

    case: str
    ours: float
    baseline: float
    unit: str

    @classmethod
    def timed(cls, case: str, seconds: tuple[float, float], unit: str = "ms") -> "Row":
        """A row from `compare`'s (ours, baseline) seconds, shown in ms or us."""
        scale = {"s": 1.0, "ms": 1e3, "us": 1e6}[unit]
        return cls(case, seconds[0] * scale, seconds[1] * scale, unit)


def compare(
    ours: Callable[[], object],
    baseline: Callable[[], object],
    *,
    repeats: int = 7,
    warmup: int = 2,
) -> tuple[float, float]:
    """Median wall times in seconds of `ours()` and `baseline()`, after `warmup` untimed calls.

    The two are timed alternately, so that a burst of load on the machine hits both alike.
    """
    for _ in range(warmup):
        ours()
        baseline()
    ours_samples: list[float] = []
    baseline_samples: list[float] = []
    for _ in range(repeats):
        for run, samples in ((ours, ours_samples), (baseline, baseline_samples)):
            start = time.perf_counter()
            run()
            samples.append(time.perf_counter() - start)
    return statistics.median(ours_samples), statistics.median(baseline_samples)


async def compare_async(
    ours: Callable[[], Awaitable[object]],
    baseline: Callable[[], Awaitable[object]],
    *,
    repeats: int = 7,
    warmup: int = 2,
) -> tuple[float, float]:
    """`compare` for coroutine functions, awaited on the running loop."""
    for _ in range(warmup):
        await ours()
        await baseline()
    ours_samples: list[float] = []
    baseline_samples: list[float] = []
    for _ in range(repeats):
        for run, samples in ((ours, ours_samples), (baseline, baseline_samples)):
            start = time.perf_counter()
            await run()
            samples.append(time.perf_counter() - start)
    return statistics.median(ours_samples), statistics.median(baseline_samples)


def percentile(samples: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile (`fraction` in 0..1) of a non-empty sample."""
    ordered = sorted(samples)
    rank = min(len(ordered), max(1, math.ceil(fraction * len(ordered))))
    return ordered[rank - 1]


def format_value(value: float, unit: str) -> str:
    if unit == "":
        return f"{value:g}"
    if value >= 100:
        return f"{value:,.0f} {unit}"
    if value >= 10:
        return f"{value:.1f} {unit}"
    return f"{value:.2f} {unit}"


def print_table(
    title: str,
    rows: Sequence[Row],
    *,
    ratio: str = "ours/baseline",
    conclusion: str,
) -> None:
    """Print a markdown table, then a one-line conclusion.

    `ratio` is "ours/baseline" (a cost: above 1 means ours is slower) or "baseline/ours" (a
    speed-up: above 1 means ours is faster).
    """
    print(f"\n### {title}\n")
    print(f"| case | ours | baseline | ratio ({ratio}) |")
    print("|---|---:|---:|---:|")
    for row in rows:
        numerator, denominator = (
            (row.ours, row.baseline) if ratio == "ours/baseline" else (row.baseline, row.ours)
        )
        shown = f"{numerator / denominator:.2f}x" if denominator > 0 else "n/a"
        print(
            f"| {row.case} | {format_value(row.ours, row.unit)} "
            f"| {format_value(row.baseline, row.unit)} | {shown} |"
        )
    print(f"\n{conclusion}")


RESULTS_DIR = PROJECT_ROOT / "bench" / "results"
"""Where benchmarks leave their figures (JSON) for `_report.py`: the tables of results.md and
the chart."""


def save_results(name: str, data: object) -> Path:
    """Write a benchmark's figures to bench/results/<name>.json (read by `_report.py`)."""
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    return path
