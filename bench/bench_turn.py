"""The whole turn: the trained sample bot through signed WhatsApp webhooks vs Rasa's REST channel.

One `rasa run` (the sample bot, trained by `tests/support/model.py` and cached under models/,
with its action server) serves every channel at once, so all pay the same model, policies,
tracker store and action server. The load generator (this process) holds 10 conversations at a
time, each a script of `TURNS` messages, over `SENDERS` senders (`SENDERS * TURNS` >= 300 turns
per run), one run per channel in each round, in a balanced order (`ORDERS`; fresh senders each
run):

- REST: `POST /webhooks/rest/webhook`; the turn is done when the answer comes back;
- WhatsApp: a signed webhook to `/webhooks/whatsapp/webhook`, answered 200 at once; the turn is
  done when its last answer reached the Graph API stand-in (served by this process). Read receipts
  with the typing indicator are on, as by default: the floor of a WhatsApp turn is its Graph API
  requests, the receipt and one per answer (2.1 per turn for this script).

Reported: turns per second (WhatsApp / REST, goal >= 0.9x) and the Rasa server's CPU per turn
(`/proc/<pid>/task/*/schedstat`), medians of `ROUNDS` runs per channel; and the size of one
conversation's tracker after its `TURNS` turns (`GET /conversations/<id>/tracker`), WhatsApp /
REST: Rasa loads the whole tracker on every turn, so what each event stores is paid again on every
turn.

Two more channels show the floor (`bench/_floor_channel.py`): Rasa's REST channel plus the Graph
API requests of a WhatsApp turn (the read receipt and one request per answer, awaited in the
request), made through aiohttp (`floor`: plain `session.post` on one session) and written bare
(`floor_raw`: one write on a kept-alive connection, the answer parsed by httptools; not a client).
Their turn is done when the REST answer comes back, after their Graph requests were answered: a
little later than a WhatsApp turn's end (its last answer reaching the stand-in), which favours
WhatsApp slightly in WhatsApp / floor. WhatsApp / floor is what the channel's own work costs;
floor / REST is what the platform's requests cost, over plain HTTP to a loopback stand-in (no
TLS, which a real client pays on every request). No goal: they explain the judged ratio.

Send pacing is set far above the run's rate (the benchmark measures the channel, not Meta's
80 messages/s), and pair pacing off.
"""

import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import aiohttp
from _harness import PROJECT_ROOT, Row, print_table, save_results
from _servers import FakeGraph, channel_config, process_cpu_seconds, profile

from connectors.whatsapp.core.signature import SIGNATURE_HEADER, sign
from tests.conftest import ACCESS_TOKEN, APP_SECRET, PHONE_NUMBER_ID
from tests.support.model import train_model
from tests.support.processes import RASA, action_server_args, child_env, free_port, stop
from tests.support.webhooks import encode, text_message

SENDERS = 30
SCRIPT = (
    "oi",
    "planos",
    "categorias",
    "menu",
    "site",
    "onde fica a loja?",
    "obrigado",
    "planos",
    "menu",
    "tchau",
)
TURNS = len(SCRIPT)
CONCURRENCY = 10
ORDERS = (
    ("whatsapp", "rest", "floor_raw", "floor"),
    ("rest", "floor", "whatsapp", "floor_raw"),
    ("floor", "floor_raw", "rest", "whatsapp"),
    ("floor_raw", "whatsapp", "floor", "rest"),
)
"""A Williams square: over 4 rounds each channel runs once in each place, and follows each other
channel once, so neither the drift of this machine's speed within a round nor what ran just
before favours one of them."""
ROUNDS = 2 * len(ORDERS)
TURN_TIMEOUT = 30.0
GOAL = 0.9

Turn = Callable[[str, int], Awaitable[None]]


def credentials(graph_url: str) -> str:
    whatsapp = channel_config(graph_url)
    floor = {
        "graph_url": graph_url,
        "phone_number_id": PHONE_NUMBER_ID,
        "access_token": ACCESS_TOKEN,
    }
    lines = ["rest:", "", "connectors.whatsapp.WhatsAppInput:"]
    lines += [f"  {key}: {json.dumps(value)}" for key, value in whatsapp.items()]
    for channel in ("FloorInput", "RawFloorInput"):
        lines += ["", f"bench._floor_channel.{channel}:"]
        lines += [f"  {key}: {json.dumps(value)}" for key, value in floor.items()]
    return "\n".join(lines) + "\n"


class Rasa:
    """`rasa run` with every channel, its action server, and the answers' counts per turn."""

    def __init__(self, model: Path, graph: FakeGraph, workdir: Path) -> None:
        import subprocess

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        actions_port = free_port()
        (workdir / "credentials.yml").write_text(credentials(graph.url))
        (workdir / "endpoints.yml").write_text(
            f"action_endpoint:\n  url: http://127.0.0.1:{actions_port}/webhook\n"
        )
        env = {k: v for k, v in child_env().items() if not k.startswith("WHATSAPP_")}
        self._logs = [open(workdir / name, "wb") for name in ("actions.log", "rasa.log")]  # noqa: SIM115
        self.actions = subprocess.Popen(
            action_server_args(actions_port),
            cwd=PROJECT_ROOT,
            env=env,
            stdout=self._logs[0],
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.server = subprocess.Popen(
            [
                RASA,
                "run",
                "--enable-api",
                "--model",
                str(model),
                "--credentials",
                str(workdir / "credentials.yml"),
                "--endpoints",
                str(workdir / "endpoints.yml"),
                "--port",
                str(self.port),
            ],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=self._logs[1],
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.answers_per_turn: list[int] = []

    async def ready(self, http: aiohttp.ClientSession, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.server.poll() is not None:
                raise RuntimeError(f"rasa run exited with {self.server.returncode}")
            try:
                async with http.get(self.url + "/status") as answer:
                    if answer.status == 200 and (await answer.json()).get("model_file"):
                        return
            except aiohttp.ClientError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("rasa run did not get ready")
            await asyncio.sleep(0.5)

    def stop(self) -> None:
        stop(self.server)
        stop(self.actions)
        for log in self._logs:
            log.close()

    def cpu(self) -> float:
        return process_cpu_seconds(self.server.pid)


def rest_turn(http: aiohttp.ClientSession, rasa: Rasa) -> Turn:
    async def turn(sender: str, index: int) -> None:
        body = {"sender": sender, "message": SCRIPT[index]}
        async with http.post(rasa.url + "/webhooks/rest/webhook", json=body) as answer:
            answers = await answer.json()
            if answer.status != 200 or not answers:
                raise AssertionError(f"REST turn {index} of {sender}: {answer.status} {answers}")

    return turn


def floor_turn(http: aiohttp.ClientSession, rasa: Rasa, channel: str) -> Turn:
    async def turn(sender: str, index: int) -> None:
        body = {"sender": sender, "message": SCRIPT[index], "message_id": f"{sender}.{index}"}
        async with http.post(f"{rasa.url}/webhooks/{channel}/webhook", json=body) as answer:
            answers = await answer.json()
            if answer.status != 200 or len(answers) != rasa.answers_per_turn[index]:
                # As many Graph requests as a WhatsApp turn, or the comparison is off.
                raise AssertionError(f"floor turn {index} of {sender}: {answer.status} {answers}")

    return turn


def whatsapp_turn(http: aiohttp.ClientSession, rasa: Rasa, graph: FakeGraph) -> Turn:
    url = rasa.url + "/webhooks/whatsapp/webhook"

    async def turn(sender: str, index: int) -> None:
        payload, _ = text_message(sender, SCRIPT[index])
        body = encode(payload)
        headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(body, APP_SECRET)}
        async with http.post(url, data=body, headers=headers) as answer:
            if answer.status != 200:
                raise AssertionError(f"webhook answered {answer.status}")
        expected = sum(rasa.answers_per_turn[: index + 1])
        await graph.wait_for_recipient(sender, expected, TURN_TIMEOUT)

    return turn


async def conversations(turn: Turn, senders: list[str]) -> None:
    """Every sender's script, `CONCURRENCY` conversations at a time, turns in order."""
    waiting: asyncio.Queue[str] = asyncio.Queue()
    for sender in senders:
        waiting.put_nowait(sender)

    async def worker() -> None:
        while not waiting.empty():
            sender = waiting.get_nowait()
            for index in range(TURNS):
                await turn(sender, index)

    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))


async def answers_per_turn(http: aiohttp.ClientSession, rasa: Rasa, graph: FakeGraph) -> list[int]:
    """How many messages each turn of the script answers, learnt on WhatsApp (with a quiet
    period after each turn) and checked against REST's answers."""
    sender = "5511980000000"
    counts = []
    url = rasa.url + "/webhooks/whatsapp/webhook"
    for text in SCRIPT:
        before = graph.by_recipient.get(sender, 0)
        payload, _ = text_message(sender, text)
        body = encode(payload)
        headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(body, APP_SECRET)}
        async with http.post(url, data=body, headers=headers) as answer:
            assert answer.status == 200
        await graph.wait_for_recipient(sender, before + 1, TURN_TIMEOUT)
        await asyncio.sleep(1.0)  # every answer of the turn has arrived by then
        counts.append(graph.by_recipient[sender] - before)
    rest = []
    for text in SCRIPT:
        body_json = {"sender": "rest-calibration", "message": text}
        async with http.post(rasa.url + "/webhooks/rest/webhook", json=body_json) as answer:
            rest.append(len(await answer.json()))
    if rest != counts:
        print(f"note: answers per turn differ: WhatsApp {counts}, REST {rest}", file=sys.stderr)
    return counts


async def tracker_bytes(http: aiohttp.ClientSession, rasa: Rasa, sender: str) -> int:
    async with http.get(f"{rasa.url}/conversations/{sender}/tracker") as answer:
        return len(await answer.read())


async def run(rasa: Rasa, turn: Turn, tag: str) -> dict[str, float]:
    senders = [f"5511{tag}{index:06d}" for index in range(SENDERS)]
    await asyncio.sleep(0.5)  # the previous run's background work (receipts, statuses) is over
    cpu = rasa.cpu()
    start = time.perf_counter()
    await conversations(turn, senders)
    seconds = time.perf_counter() - start
    turns = SENDERS * TURNS
    return {
        "turns_per_second": turns / seconds,
        "cpu_ms_per_turn": 1000 * (rasa.cpu() - cpu) / turns,
    }


async def main(with_profile: bool = False) -> None:
    model = train_model(PROJECT_ROOT / "models")
    graph = FakeGraph()
    await graph.start()
    workdir = Path(tempfile.mkdtemp(prefix="bench-turn-"))
    rasa = Rasa(model, graph, workdir)
    connector = aiohttp.TCPConnector(limit=CONCURRENCY + 2)
    try:
        async with aiohttp.ClientSession(connector=connector) as http:
            await rasa.ready(http)
            rasa.answers_per_turn = await answers_per_turn(http, rasa, graph)
            channels = {
                "whatsapp": whatsapp_turn(http, rasa, graph),
                "rest": rest_turn(http, rasa),
                "floor": floor_turn(http, rasa, "floor"),
                "floor_raw": floor_turn(http, rasa, "floor_raw"),
            }
            codes = {name: str(code) for code, name in enumerate(channels, start=1)}
            for name, turn in channels.items():  # warm-up
                await conversations(turn, [f"55119{codes[name]}{i:07d}" for i in range(10)])
            if with_profile:
                for name, turn in channels.items():
                    recorder = profile(rasa.server.pid, f"turn-{name}", 8)
                    await conversations(turn, [f"5511{codes[name]}9{i:07d}" for i in range(40)])
                    recorder.wait(60)
            samples: dict[str, list[dict[str, float]]] = {name: [] for name in channels}
            for round_ in range(ROUNDS):
                for name in ORDERS[round_ % len(ORDERS)]:
                    samples[name].append(await run(rasa, channels[name], f"{round_}{codes[name]}"))
            sizes = {
                "whatsapp": await tracker_bytes(http, rasa, "551101000000"),
                "rest": await tracker_bytes(http, rasa, "551102000000"),
            }
    finally:
        rasa.stop()
        await graph.stop()
    results: dict[str, Any] = {
        name: {key: statistics.median(sample[key] for sample in runs) for key in runs[0]}
        for name, runs in samples.items()
    }
    results["tracker_bytes"] = sizes
    results["round_ratios"] = round_ratios(samples, "whatsapp", "rest")
    results["whatsapp_floor_round_ratios"] = round_ratios(samples, "whatsapp", "floor")
    results["floor_rest_round_ratios"] = round_ratios(samples, "floor", "rest")
    results["floor_raw_rest_round_ratios"] = round_ratios(samples, "floor_raw", "rest")
    results["answers_per_turn"] = rasa.answers_per_turn
    report(results)


def round_ratios(
    samples: Mapping[str, list[dict[str, float]]], ours: str, base: str
) -> list[float]:
    """`ours` turns/s over `base` turns/s, round by round."""
    return [
        mine["turns_per_second"] / theirs["turns_per_second"]
        for mine, theirs in zip(samples[ours], samples[base], strict=True)
    ]


def paired_ratio(results: Mapping[str, Any], key: str = "round_ratios") -> float:
    """A paired ratio: the median over rounds of one channel's turns/s over another's in that
    round (`round_ratios`, WhatsApp over REST: the judged one).

    The runs of a round are seconds apart; this machine's speed drifts by tens of percent over
    a minute (other programs, the host), and a ratio of medians taken over the whole run mixes
    slow and fast moments, while a round's runs share theirs.
    """
    return float(statistics.median(results[key]))


def report(results: dict[str, Any]) -> None:
    whatsapp, rest, sizes = results["whatsapp"], results["rest"], results["tracker_bytes"]
    rows = [
        Row("turns per second", whatsapp["turns_per_second"], rest["turns_per_second"], "/s"),
        Row(
            "Rasa server CPU per turn (lower is better)",
            whatsapp["cpu_ms_per_turn"],
            rest["cpu_ms_per_turn"],
            "ms",
        ),
        Row(
            f"tracker of a {TURNS}-turn conversation (lower is better)",
            sizes["whatsapp"] / 1024,
            sizes["rest"] / 1024,
            "KiB",
        ),
    ]
    ratio = paired_ratio(results)
    rows.insert(
        1, Row("turns per second, WhatsApp / REST within each round (median)", ratio, 1, "x")
    )
    cpu_ratio = whatsapp["cpu_ms_per_turn"] / rest["cpu_ms_per_turn"]
    verdict = "meets" if ratio >= GOAL else "MISSES"
    # Three decimals where two would round a miss up to the goal (or a pass down to it).
    shown = f"{ratio:.3f}" if abs(ratio - GOAL) < 0.005 else f"{ratio:.2f}"
    rounds = ", ".join(f"{value:.2f}x" for value in results["round_ratios"])
    print_table(
        f"The whole turn: the sample bot, {SENDERS} senders x {TURNS} turns per run, "
        f"{CONCURRENCY} conversations at a time; ours = WhatsApp webhooks, baseline = Rasa's REST "
        f"channel, same rasa run (medians of {ROUNDS} rounds)",
        rows,
        ratio="ours/baseline",
        conclusion=f"Conclusion: WhatsApp completes {shown}x the turns per second of REST "
        f"(median of the rounds' ratios: {rounds}; {verdict} the {GOAL}x goal) at "
        f"{cpu_ratio:.2f}x the server CPU per turn; its tracker is "
        f"{sizes['whatsapp'] / sizes['rest']:.2f}x REST's after {TURNS} turns.",
    )
    report_floor(results)
    save_results("turn", {"senders": SENDERS, "turns": TURNS, "rounds": ROUNDS, **results})


def report_floor(results: dict[str, Any]) -> None:
    """Two more tables: WhatsApp against the aiohttp floor, then each floor against REST."""
    whatsapp, floor, rest = results["whatsapp"], results["floor"], results["rest"]
    ours_floor = paired_ratio(results, "whatsapp_floor_round_ratios")
    print_table(
        "The whole turn against its floor: ours = WhatsApp webhooks, baseline = REST plus the "
        "Graph API requests of a WhatsApp turn through aiohttp (read receipt, one per answer; "
        "bench/_floor_channel.py), same runs",
        [
            Row("turns per second", whatsapp["turns_per_second"], floor["turns_per_second"], "/s"),
            Row(
                "turns per second, WhatsApp / floor within each round (median)", ours_floor, 1, "x"
            ),
            Row(
                "Rasa server CPU per turn (lower is better)",
                whatsapp["cpu_ms_per_turn"],
                floor["cpu_ms_per_turn"],
                "ms",
            ),
        ],
        ratio="ours/baseline",
        conclusion=f"Conclusion: WhatsApp completes {ours_floor:.2f}x the floor's turns per second "
        f"at {whatsapp['cpu_ms_per_turn'] - floor['cpu_ms_per_turn']:+.2f} ms of server CPU per "
        "turn: what the channel's own work costs over the requests any WhatsApp channel makes.",
    )
    rows, figures = [], []
    for name, label in (("floor", "through aiohttp"), ("floor_raw", "written bare (no aiohttp)")):
        ratio = paired_ratio(results, f"{name}_rest_round_ratios")
        extra = results[name]["cpu_ms_per_turn"] - rest["cpu_ms_per_turn"]
        rows += [
            Row(
                f"Graph requests {label}: turns per second within each round (median)",
                ratio,
                1,
                "x",
            ),
            Row(
                f"Graph requests {label}: server CPU per turn (lower is better)",
                results[name]["cpu_ms_per_turn"],
                rest["cpu_ms_per_turn"],
                "ms",
            ),
        ]
        figures.append(f"{ratio:.2f}x its turns per second {label} ({extra:+.2f} ms of CPU)")
    print_table(
        "The floors against REST: ours = REST plus a WhatsApp turn's Graph requests, baseline = "
        "REST alone, same runs (plain HTTP to the loopback stand-in: no TLS)",
        rows,
        ratio="ours/baseline",
        conclusion=f"Conclusion: a WhatsApp turn's Graph requests take REST to {figures[0]}, "
        f"and to {figures[1]}.",
    )


if __name__ == "__main__":
    asyncio.run(main("--profile" in sys.argv))
