"""`make bench`: run every bench/bench_*.py in turn, write bench/results.md and bench/results.png.

Each benchmark prints its comparison tables (markdown) and some leave their figures in
bench/results/<name>.json (`_harness.save_results`). This script runs them one after the other
(never two at once: they measure CPU), copies their tables into results.md under a header that
says where the numbers come from, and draws the goal ratios of intake, outbound and the whole
turn as one chart (matplotlib, which Rasa installs), shown in the README.

    .venv/bin/python bench/_report.py                 # all of them (make bench)
    .venv/bin/python bench/_report.py intake turn     # only bench_intake.py and bench_turn.py
    .venv/bin/python bench/_report.py --chart-only    # redraw from bench/results/*.json
"""

import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _harness import PROJECT_ROOT, RESULTS_DIR

BENCH = PROJECT_ROOT / "bench"
RESULTS_MD = BENCH / "results.md"
CHART = BENCH / "results.png"
TIMEOUT_SECONDS = int(os.environ.get("BENCH_TIMEOUT_SECONDS", "900"))
"""A benchmark that has not finished by then is stopped. bench_intake.py took 154 s on one day
and 260 s to over 300 s on another, on the same code: the shared machine's speed drifts (see
results.md's header), so the bound is far above any run seen. `BENCH_TIMEOUT_SECONDS` sets it."""


def machine() -> str:
    cores = os.cpu_count()
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    return (
        f"{cores} cores, Python {platform.python_version()}, {platform.system()} "
        f"{platform.machine()}; load average at the start: {load}"
    )


def run(script: Path) -> tuple[str, float]:
    """Run one benchmark; past `TIMEOUT_SECONDS`, stop it and what it started, and say so."""
    start = time.monotonic()
    with subprocess.Popen(
        [sys.executable, str(script)],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    ) as process:
        try:
            stdout, _ = process.communicate(timeout=TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            # As Ctrl-C would: the benchmark's `finally` blocks stop the servers it started,
            # each in a session of its own (killing the script alone left them running).
            process.send_signal(signal.SIGINT)
            try:
                stdout, _ = process.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                stdout, _ = process.communicate()
            output = stdout.decode("utf-8", "replace")
            raise SystemExit(
                f"{script.name} did not finish in {TIMEOUT_SECONDS} s (stopped, with every "
                f"process it started):\n{output[-3000:]}"
            ) from None
    output = stdout.decode("utf-8", "replace")
    if process.returncode != 0:
        raise SystemExit(f"{script.name} failed ({process.returncode}):\n{output[-3000:]}")
    return output, time.monotonic() - start


def tables(output: str) -> str:
    """The markdown a benchmark printed, without the noise of its dependencies."""
    keep = []
    for line in output.splitlines():
        if line.startswith(("<frozen", "\x1b")) or "Warning" in line:
            continue
        keep.append(line)
    return "\n".join(keep).strip()


def chart(path: Path) -> bool:
    """Bar chart of ours/baseline for every goal, with the goals marked; False without data."""
    figures = {
        name: json.loads((RESULTS_DIR / f"{name}.json").read_text())
        for name in ("intake", "outbound", "turn")
        if (RESULTS_DIR / f"{name}.json").exists()
    }
    bars: list[tuple[str, float, float]] = []  # label, ratio, goal
    for name, case in figures.get("intake", {}).get("cases", {}).items():
        bars.append((f"intake: {name}", case["capacity_ratio"], case["goal"]))
    latencies: dict[str, Any] = figures.get("outbound", {}).get("latencies", {})
    for latency, case in latencies.items():
        ratio = case["outbound"]["per_second"] / case["raw"]["per_second"]
        bars.append(
            (f"outbound: sends/s, {latency} Graph latency", ratio, 0.95 if latency != "0 ms" else 0)
        )
    turn = figures.get("turn")
    if turn:
        ratio = statistics.median(turn["round_ratios"])  # as bench_turn.py judges it
        bars.append(("whole turn: turns/s, WhatsApp vs REST", ratio, 0.9))
        for label, key in (
            ("whole turn: REST + its Graph requests (the floor) vs REST", "floor_rest"),
            ("whole turn: the floor with bare requests (no aiohttp) vs REST", "floor_raw_rest"),
            ("whole turn: WhatsApp vs the floor (aiohttp)", "whatsapp_floor"),
        ):
            if f"{key}_round_ratios" in turn:  # figures of an older bench_turn.py lack some
                bars.append((label, statistics.median(turn[f"{key}_round_ratios"]), 0))
        sizes = turn["tracker_bytes"]
        bars.append(
            ("tracker size, REST / WhatsApp (10 turns)", sizes["rest"] / sizes["whatsapp"], 0)
        )
    if not bars:
        return False
    import matplotlib  # type: ignore[import-untyped]

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # type: ignore[import-untyped]

    labels = [label for label, _, _ in bars][::-1]
    ratios = [ratio for _, ratio, _ in bars][::-1]
    goals = [goal for _, _, goal in bars][::-1]
    figure, axes = plt.subplots(figsize=(11.5, 0.55 * len(bars) + 1.4))
    colours = [
        "#607d8b" if goal == 0 else "#2e7d32" if ratio >= goal else "#c62828"
        for ratio, goal in zip(ratios, goals, strict=True)
    ]
    axes.barh(labels, ratios, color=colours)
    for index, (ratio, goal) in enumerate(zip(ratios, goals, strict=True)):
        near = goal and abs(ratio - goal) < 0.005  # two decimals would hide which side it is
        axes.text(
            ratio + 0.01,
            index,
            f"{ratio:.3f}x" if near else f"{ratio:.2f}x",
            va="center",
            fontsize=9,
        )
        if goal:
            axes.plot([goal, goal], [index - 0.4, index + 0.4], color="black", linewidth=2)
    axes.axvline(1.0, color="grey", linestyle=":", linewidth=1)
    axes.set_xlim(0, max(1.25, max(ratios) + 0.15))
    axes.set_xlabel(
        "ours / baseline (higher is better); tick: the goal, green met, red missed, grey none"
        "\nintake: webhooks per server CPU second; tracker: REST size / WhatsApp size"
    )
    axes.set_title(
        "WhatsApp channel (and its floors) vs baselines, same run (shared 2-core machine)"
    )
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True


def main(argv: list[str]) -> None:
    if "--chart-only" in argv:
        chart(CHART)
        return
    wanted = [arg for arg in argv if not arg.startswith("-")]
    scripts = sorted(BENCH.glob("bench_*.py"))
    if wanted:
        scripts = [s for s in scripts if s.stem.removeprefix("bench_") in wanted]
    sections = [
        "# Benchmark results",
        "",
        "Written by `make bench` (`bench/_report.py`); how each benchmark works: bench/README.md.",
        "",
        f"Machine: {machine()}. **A shared 2-core virtual machine**: other programs and the host "
        "share the cores, and its speed drifts by tens of percent within a minute (the same code "
        "parsed a webhook in 13 us and in 21 us an hour apart), so absolute numbers move from run "
        "to run. Read the ratios: ours and the baseline are measured in the same run, alternating; "
        "the goals of intake and the whole turn are judged within each round, then the median.",
        "",
        "![ours / baseline](results.png)",
    ]
    for script in scripts:
        print(f"== {script.name}", flush=True)
        output, seconds = run(script)
        print(output, flush=True)
        sections += ["", f"## {script.name} ({seconds:.0f} s)", "", tables(output)]
    RESULTS_MD.write_text("\n".join(sections) + "\n")
    drawn = chart(CHART)
    print(f"wrote {RESULTS_MD.relative_to(PROJECT_ROOT)}" + (f" and {CHART.name}" if drawn else ""))


if __name__ == "__main__":
    main(sys.argv[1:])
