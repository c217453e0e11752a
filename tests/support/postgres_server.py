"""A throwaway PostgreSQL server on 127.0.0.1 (Debian's package; scripts/system-deps installs it).

Rasa's `SQLTrackerStore` keeps conversations in PostgreSQL when several `rasa run` instances serve
one bot, so the scale-out test runs a real one: a fresh cluster in a temporary directory, trust
authentication on 127.0.0.1 only, fsync off (nothing here must survive a crash), removed at the end.

PostgreSQL refuses to run as root; as root, `initdb` and `pg_ctl` run as the `postgres` system user
(which Debian's package creates) in a directory handed over to it.
"""

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.processes import free_port
from tests.support.programs import need_program

SYSTEM_USER = "postgres"
_SETTINGS = (
    "listen_addresses = '127.0.0.1'",
    "port = {port}",
    "unix_socket_directories = '{sockets}'",
    "fsync = off",
    "synchronous_commit = off",
    "full_page_writes = off",
    "max_connections = 50",
)


@dataclass(frozen=True, slots=True)
class PostgresServer:
    """Where the server listens and the database made for the test."""

    host: str
    port: int
    database: str
    username: str
    password: str
    """Sent like a production deployment would; trust authentication does not check it."""

    @property
    def url(self) -> str:
        return f"postgresql://{self.username}@{self.host}:{self.port}/{self.database}"


def postgres_bindir() -> Path:
    """The directory of `initdb`, `pg_ctl` and `postgres`, newest Debian version first.

    Debian keeps them out of PATH, in /usr/lib/postgresql/<major>/bin; `pg_config --bindir` and
    PATH are the fallbacks. Skips the test (fails it under CI) when PostgreSQL is not installed.
    """
    candidates = sorted(
        (Path(path) for path in glob.glob("/usr/lib/postgresql/*/bin")),
        key=lambda path: int(path.parent.name) if path.parent.name.isdigit() else 0,
        reverse=True,
    )
    pg_config = shutil.which("pg_config")
    if pg_config:
        found = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True)
        if found.returncode == 0 and found.stdout.strip():
            candidates.append(Path(found.stdout.strip()))
    for directory in candidates:
        if all(os.access(directory / name, os.X_OK) for name in ("initdb", "pg_ctl", "postgres")):
            return directory
    initdb = Path(need_program("initdb")).resolve()
    need_program("pg_ctl")
    return initdb.parent


@contextlib.contextmanager
def postgres_server(database: str = "rasa", username: str = "rasa") -> Iterator[PostgresServer]:
    """Start a fresh PostgreSQL on a free port with `database` in it; stop and delete it after."""
    bindir = postgres_bindir()
    as_owner = _run_as_owner()
    port = free_port()
    root = Path(tempfile.mkdtemp(prefix="pytest-postgres-"))
    data, log = root / "data", root / "server.log"
    try:
        if as_owner:
            owner = pwd.getpwnam(SYSTEM_USER)
            os.chown(root, owner.pw_uid, owner.pw_gid)
        initdb = [*as_owner, str(bindir / "initdb"), "-D", str(data), "-U", username]
        _run([*initdb, "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync"], root)
        with open(data / "postgresql.conf", "a", encoding="utf-8") as conf:
            settings = "\n".join(_SETTINGS).format(port=port, sockets=root)
            conf.write(f"\n# tests/support/postgres_server.py\n{settings}\n")
        pg_ctl = [*as_owner, str(bindir / "pg_ctl"), "-D", str(data)]
        try:
            _run([*pg_ctl, "-l", str(log), "-w", "-t", "30", "start"], root)
        except RuntimeError as error:
            with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                _run([*pg_ctl, "-m", "immediate", "stop"], root)  # if it came up too late
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"{error}\n{tail}") from None
        try:
            createdb = [str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port)]
            _run([*createdb, "-U", username, database], root)
            yield PostgresServer("127.0.0.1", port, database, username, password="rasa")
        finally:
            _run([*pg_ctl, "-m", "fast", "-w", "-t", "30", "stop"], root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _run_as_owner() -> list[str]:
    """The prefix that runs PostgreSQL's programs as a user it accepts (none when not root)."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        message = f"running as root needs the {SYSTEM_USER!r} user (apt-get install postgresql)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return [need_program("runuser"), "-u", SYSTEM_USER, "--"]


def _run(command: list[str], cwd: Path) -> None:
    """Run `command` in `cwd` (a directory the `postgres` user can enter); raise with its output."""
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        output = (result.stdout + result.stderr)[-2000:]
        raise RuntimeError(f"{' '.join(command)} failed with code {result.returncode}:\n{output}")
