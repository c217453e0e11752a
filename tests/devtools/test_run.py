"""The run command's decisions (sandbox or WhatsApp, training) and its process supervision."""

import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from devtools.run import SECRETS, model_is_stale, plan, uses_real_whatsapp
from devtools.supervisor import Service, StartupError, Supervisor, port_in_use
from sandbox import config
from tests.support.processes import free_port

META = {
    "WHATSAPP_ACCESS_TOKEN": "EAAreal",
    "WHATSAPP_PHONE_NUMBER_ID": "123",
    "WHATSAPP_VERIFY_TOKEN": "mine",
    "WHATSAPP_APP_SECRET": "s3cret",
}


def test_no_credentials_means_the_sandbox_with_matching_settings() -> None:
    result = plan({"PATH": "/bin"})
    assert result.mode == "sandbox"
    assert [s.name for s in result.services] == ["actions", "rasa", "sandbox"]
    # The sandbox verifies the webhook as it starts: only once the bot answers.
    assert [[s.name for s in stage] for stage in result.stages] == [
        ["actions", "rasa"],
        ["sandbox"],
    ]
    env = result.env
    assert env["WHATSAPP_API_BASE_URL"] == "http://127.0.0.1:5100"
    assert env["WHATSAPP_ACCESS_TOKEN"] == config.DEFAULT_ACCESS_TOKEN
    assert env["WHATSAPP_APP_SECRET"] == config.DEFAULT_APP_SECRET
    assert env["SANDBOX_WEBHOOK_URL"] == "http://127.0.0.1:5005/webhooks/whatsapp/webhook"
    assert env["RASA_TELEMETRY_ENABLED"] == "false"
    # What the sandbox child reads is what rasa's credentials.yml reads: they agree.
    sandbox_config = config.SandboxConfig.from_env(env)
    assert sandbox_config.access_token == env["WHATSAPP_ACCESS_TOKEN"]
    assert sandbox_config.phone_number_id == env["WHATSAPP_PHONE_NUMBER_ID"]
    assert sandbox_config.app_secret == env["WHATSAPP_APP_SECRET"]
    assert sandbox_config.verify_token == env["WHATSAPP_VERIFY_TOKEN"]
    assert sandbox_config.webhook_url == env["SANDBOX_WEBHOOK_URL"]
    assert result.sandbox_url == "http://127.0.0.1:5100"
    assert result.warnings == ()


def test_complete_meta_credentials_mean_real_whatsapp_without_the_sandbox() -> None:
    result = plan(META)
    assert result.mode == "whatsapp"
    assert [s.name for s in result.services] == ["actions", "rasa"]
    assert [[s.name for s in stage] for stage in result.stages] == [["actions", "rasa"]]
    assert result.env["WHATSAPP_ACCESS_TOKEN"] == "EAAreal"
    assert "WHATSAPP_API_BASE_URL" not in result.env
    assert uses_real_whatsapp(META | {"WHATSAPP_API_BASE_URL": "https://graph.facebook.com"})


@pytest.mark.parametrize("missing", SECRETS)
def test_incomplete_credentials_fall_back_to_the_sandbox_and_say_why(missing: str) -> None:
    env = META | {missing: "  "}
    result = plan(env)
    assert result.mode == "sandbox"
    assert missing in result.warnings[0]
    # The real token never reaches the sandbox's children.
    assert result.env["WHATSAPP_ACCESS_TOKEN"] == config.DEFAULT_ACCESS_TOKEN


def test_a_base_url_elsewhere_means_the_sandbox() -> None:
    result = plan(META | {"WHATSAPP_API_BASE_URL": "http://127.0.0.1:5100"})
    assert result.mode == "sandbox"
    assert "WHATSAPP_API_BASE_URL" in result.warnings[0]


def test_ports_and_model_can_be_chosen(tmp_path: Path) -> None:
    model = tmp_path / "m.tar.gz"
    result = plan({"RASA_PORT": "6005", "SANDBOX_PORT": "6100"}, model)
    rasa = next(s for s in result.services if s.name == "rasa")
    assert rasa.args[-4:] == ("--model", str(model), "-i", "127.0.0.1")
    assert "6005" in rasa.args
    assert result.env["SANDBOX_WEBHOOK_URL"] == "http://127.0.0.1:6005/webhooks/whatsapp/webhook"
    assert result.env["WHATSAPP_API_BASE_URL"] == "http://127.0.0.1:6100"


def test_model_staleness(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "nlu.yml").write_text("version: '3.1'\n")
    (tmp_path / "domain.yml").write_text("version: '3.1'\n")
    assert model_is_stale(tmp_path)  # no model at all
    (tmp_path / "models").mkdir()
    model = tmp_path / "models" / "20250101-000000-x.tar.gz"
    model.write_bytes(b"model")
    now = time.time()
    os.utime(tmp_path / "data" / "nlu.yml", (now - 100, now - 100))
    os.utime(tmp_path / "domain.yml", (now - 100, now - 100))
    os.utime(model, (now - 50, now - 50))
    assert not model_is_stale(tmp_path)
    os.utime(tmp_path / "data" / "nlu.yml", (now, now))  # data edited after training
    assert model_is_stale(tmp_path)


SERVER = (
    "import http.server, sys\n"
    "print('serving', flush=True)\n"
    "http.server.HTTPServer(('127.0.0.1', int(sys.argv[1])),"
    " http.server.SimpleHTTPRequestHandler).serve_forever()\n"
)


def fake_service(name: str, port: int, code: str = SERVER) -> Service:
    args = (sys.executable, "-c", code, str(port))
    return Service(name, args, f"http://127.0.0.1:{port}/", timeout=20, port=port)


def stopped(service: Service, pgid: int) -> bool:
    """Its port is free at once, and its process group gone within 5 s (the killed grandchild
    is reaped by init, in its own time)."""
    if port_in_use(service.port):
        return False
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def shell_service(script: str = "{server}; echo never") -> Service:
    """A shell whose server (`{server}` in `script`) is a grandchild: stopping must reach the
    whole group."""
    port = free_port()
    server = f'{sys.executable} -c "{SERVER}" {port}'
    return Service(
        "shell",
        ("sh", "-c", script.format(server=server)),
        f"http://127.0.0.1:{port}/",
        timeout=20,
        port=port,
    )


def test_supervisor_starts_waits_and_stops_whole_process_groups(tmp_path: Path) -> None:
    out = io.StringIO()
    supervisor = Supervisor(dict(os.environ), tmp_path, out)
    shell = shell_service()
    services = [fake_service("one", free_port()), shell]
    for service in services:
        supervisor.start(service.name, service.args)
    try:
        supervisor.wait_ready(services)
        assert "[one]      serving" in out.getvalue()
        assert "one is ready" in out.getvalue()
    finally:
        supervisor.stop_all(timeout=10)
    assert all(p.poll() is not None for p in supervisor.children.values())
    for service in services:
        assert stopped(service, supervisor.children[service.name].pid)


def test_stopping_waits_for_the_whole_group_and_kills_what_ignores_sigint(
    tmp_path: Path,
) -> None:
    """A script that starts its server in the background and exits on SIGINT at once: the
    server (a background job, so SIGINT is ignored for it) would live on, holding its port.
    Stopping waits for the whole group, not only its leader, and kills what is left."""
    supervisor = Supervisor(dict(os.environ), tmp_path, io.StringIO())
    script = shell_service('trap "exit 0" INT; {server} & wait')
    supervisor.start(script.name, script.args)
    try:
        supervisor.wait_ready([script])
    finally:
        supervisor.stop_all(timeout=2)
    assert stopped(script, supervisor.children["shell"].pid)


def test_a_child_that_dies_at_start_up_is_reported_with_its_output(tmp_path: Path) -> None:
    supervisor = Supervisor(dict(os.environ), tmp_path, io.StringIO())
    crash = "import sys; print('ModuleNotFoundError: no module named x', flush=True); sys.exit(3)"
    services = [fake_service("ok", free_port()), fake_service("bad", free_port(), crash)]
    for service in services:
        supervisor.start(service.name, service.args)
    try:
        with pytest.raises(StartupError) as caught:
            supervisor.wait_ready(services)
    finally:
        supervisor.stop_all(timeout=10)
    message = str(caught.value)
    assert "bad exited with code 3" in message
    assert "no module named x" in message


def test_watch_returns_when_a_child_dies_or_on_stop(tmp_path: Path) -> None:
    supervisor = Supervisor(dict(os.environ), tmp_path, io.StringIO())
    supervisor.start("short", (sys.executable, "-c", "import time; time.sleep(0.5)"))
    died = supervisor.watch()
    assert died is not None and "short exited with code 0" in died
    supervisor.stopping.set()
    assert supervisor.watch() is None


def test_run_command_exits_cleanly_on_sigint_while_training_or_starting(tmp_path: Path) -> None:
    """Ctrl-C during start-up: the command stops its children and exits 0."""
    from tests.support.processes import PROJECT_ROOT, child_env

    env = child_env(
        {
            "SANDBOX_PORT": str(free_port()),
            "RASA_PORT": str(free_port()),
            "WHATSAPP_API_BASE_URL": "http://127.0.0.1:9",
        }
    )
    model = tmp_path / "none.tar.gz"  # never loaded: we stop before rasa is up
    process = subprocess.Popen(
        [sys.executable, "-m", "devtools.run", "--model", str(model)],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    assert process.stdout is not None
    first = process.stdout.readline().decode()
    assert "starting the sample bot on the local WhatsApp sandbox" in first
    time.sleep(1.0)
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output.decode()[-2000:]
    assert b"stopping" in output


NOISY_CHILD = """
import sys, warnings
library, ours = sys.argv[1:3]
sys.path[:0] = [library, ours]
warnings.filterwarnings("once", category=DeprecationWarning)  # what Sanic does on import
warnings.filterwarnings("once", category=UserWarning)  # what Rasa does
import noisy_library  # a DeprecationWarning from site-packages, two lines long
import sqlalchemy_like  # a DeprecationWarning subclass (MovedIn20Warning), and one with no source
import our_module  # a UserWarning and a DeprecationWarning of our own, not under site-packages
print("bot is up", flush=True)
"""


@pytest.mark.parametrize("user_setting", [None, "ignore", "default"])
def test_the_childrens_library_deprecation_warnings_are_left_out(
    tmp_path: Path, user_setting: str | None
) -> None:
    """What `PYTHONWARNINGS=ignore` cannot silence (Sanic re-enables deprecations at import) is
    left out of what `make run`'s children print, unless the user asked for warnings; the
    warnings of the project's own code are always shown, and another `sitecustomize` still runs."""
    library = tmp_path / "venv" / "lib" / "python3.10" / "site-packages"
    library.mkdir(parents=True)
    (library / "noisy_library.py").write_text(
        "import warnings\nwarnings.warn('old API.\\nUse the new one.', DeprecationWarning)\n"
    )
    (library / "sqlalchemy_like.py").write_text(
        "import warnings\n"
        "class MovedIn20Warning(DeprecationWarning): pass\n"
        "warnings.warn('moved API', MovedIn20Warning)\n"
        "exec(compile(\"warnings.warn('gone API', DeprecationWarning)\", __file__ + 'x', 'exec'))\n"
    )
    ours = tmp_path / "project"
    ours.mkdir()
    (ours / "our_module.py").write_text(
        "import warnings\n"
        "warnings.warn('check your domain')\n"
        "warnings.warn('our old API', DeprecationWarning)\n"
    )
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "sitecustomize.py").write_text("print('their sitecustomize ran', flush=True)\n")
    user_env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(theirs)}
    if user_setting is not None:
        user_env["PYTHONWARNINGS"] = user_setting
    env = plan(user_env).env
    child = [sys.executable, "-c", NOISY_CHILD, str(library), str(ours)]
    done = subprocess.run(child, env=env, capture_output=True, text=True, timeout=60, check=True)
    shown = done.stdout + done.stderr
    assert "their sitecustomize ran" in shown
    assert "bot is up" in shown
    assert "UserWarning: check your domain" in shown  # the bot's own warnings stay
    assert "DeprecationWarning: our old API" in shown
    library_lines = ("old API.", "Use the new one.", "moved API", "gone API")
    if user_setting == "default":
        assert all(line in shown for line in library_lines), shown
    else:
        assert not [line for line in library_lines if line in shown], shown
    assert plan(user_env).hides_library_deprecations is (user_setting != "default")
