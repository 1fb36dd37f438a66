"""A real, throwaway PostgreSQL for tests and benchmarks (issue 16).

``PostgresCluster(directory)`` is a context manager: ``initdb`` a new cluster
in ``directory`` with the newest server of Debian's ``postgresql`` package
(/usr/lib/postgresql/<major>/bin), start it with ``pg_ctl`` on a free loopback
port, and on exit stop it (fast shutdown; if ``pg_ctl stop`` fails, the
postmaster named in its pid file is killed, then any process still working in
the data directory), so nothing is left running even when the test fails.

The cluster: trust authentication on its unix socket (in ``directory``) and on
127.0.0.1 only, listening on 127.0.0.1 only, UTF8 with the C locale, and
PostgreSQL's durable defaults (``fsync = on``, ``synchronous_commit = on``):
a commit here is on disk as a production hub's is.

PostgreSQL refuses to run as root. As root (CI) initdb and pg_ctl run as the
``postgres`` system user the Debian package creates (``runuser -u postgres
--``), ``directory`` is made its own, and the directories above it that root
keeps to itself (pytest's /tmp/pytest-of-root/...) get the search bit for
others (``o+x``: the postgres user can pass through them to the cluster; it
cannot list them). Otherwise everything runs as the current user.

Fixtures (tests/conftest.py makes them for every test module)::

    from .pg import make_fixtures
    pg_cluster, pg_dsn = make_fixtures()

``pg_cluster`` is one cluster for the whole session (initdb and start cost
about a second); ``pg_dsn`` is a fresh database per test (``CREATE DATABASE
... TEMPLATE template0``, dropped afterwards), as a DSN
``postgresql://rounds@127.0.0.1:<port>/<db>``. Without PostgreSQL binaries the
fixtures skip, unless ROUNDS_REQUIRE_PG is set (``make test`` sets it), when
they fail.
"""

import itertools
import os
import pwd
import re
import shutil
import signal
import socket
import stat
import subprocess
import time
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from .support import free_port, wait_for

PG_ROOT = Path("/usr/lib/postgresql")
SUPERUSER = "rounds"
SYSTEM_USER = "postgres"
# sun_path is 108 bytes: the socket "<dir>/.s.PGSQL.<port>" must fit.
_SOCKET_PATH_MAX = 107
_LOG_TAIL = 2000


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server binaries on this machine."""


def find_bindir(root: Path | None = None) -> Path:
    """The newest /usr/lib/postgresql/<major>/bin that has initdb, pg_ctl and
    postgres."""
    root = root or PG_ROOT
    candidates = []
    for bindir in root.glob("*/bin"):
        major = bindir.parent.name
        if not re.fullmatch(r"\d+(\.\d+)?", major):
            continue
        if all((bindir / tool).is_file() for tool in ("initdb", "pg_ctl", "postgres")):
            candidates.append((tuple(int(p) for p in major.split(".")), bindir))
    if not candidates:
        raise PostgresUnavailable(
            f"no PostgreSQL server binaries under {root}/*/bin (Debian package "
            f"`postgresql`; `make test` installs it)")
    return max(candidates)[1]


def port_is_free(port: int) -> bool:
    """Whether a server could listen on 127.0.0.1:``port`` now. With
    SO_REUSEADDR, as PostgreSQL binds: connections of a stopped server left
    in TIME_WAIT do not count, a listening socket does."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _pid_alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for its parent does not)."""
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat_line.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


class PostgresCluster:
    """A throwaway PostgreSQL cluster in ``directory`` (created if missing):
    ``data/`` (PGDATA), ``postgres.log``, and the unix socket."""

    def __init__(self, directory: Path, *, bindir: Path | None = None,
                 superuser: str = SUPERUSER):
        self.directory = Path(directory).resolve()
        self.bindir = Path(bindir) if bindir else find_bindir()
        self.superuser = superuser
        self.data = self.directory / "data"
        self.log = self.directory / "postgres.log"
        self.port: int | None = None
        self.as_root = os.geteuid() == 0
        self._started = False
        self._db_names = itertools.count(1)
        if len(str(self.directory)) + len("/.s.PGSQL.65535") > _SOCKET_PATH_MAX:
            raise ValueError(f"{self.directory} is too long for a unix socket path "
                             f"(at most {_SOCKET_PATH_MAX} bytes); use a shorter directory")

    # --- running the server's tools ---

    def _argv(self, tool: str, *args: str) -> list[str]:
        argv = [str(self.bindir / tool), *args]
        return ["runuser", "-u", SYSTEM_USER, "--", *argv] if self.as_root else argv

    def _run(self, tool: str, *args: str, timeout: float = 60,
             check: bool = True) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C"
        result = subprocess.run(self._argv(tool, *args), cwd=self.directory, env=env,
                                stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                timeout=timeout)
        if check and result.returncode != 0:
            raise RuntimeError(f"{tool} {' '.join(args)} failed ({result.returncode}):\n"
                               f"{result.stdout}{result.stderr}{self.log_tail()}")
        return result

    def _log_since(self, offset: int) -> str:
        try:
            with self.log.open("rb") as f:
                f.seek(offset)
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def log_tail(self) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return f"--- {self.log} (end) ---\n{text[-_LOG_TAIL:]}"

    def _prepare_directory(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        if not self.as_root:
            return
        try:
            user = pwd.getpwnam(SYSTEM_USER)
        except KeyError:
            raise RuntimeError(
                f"running as root and there is no `{SYSTEM_USER}` user to run PostgreSQL "
                f"as (PostgreSQL refuses root; Debian's postgresql package creates it)"
            ) from None
        os.chown(self.directory, user.pw_uid, user.pw_gid)
        os.chmod(self.directory, 0o700)
        self._open_path()
        probe = subprocess.run(["runuser", "-u", SYSTEM_USER, "--", "test", "-w",
                                str(self.directory)], capture_output=True)
        if probe.returncode != 0:
            raise RuntimeError(f"the {SYSTEM_USER} user cannot write {self.directory}")

    def _open_path(self) -> None:
        """As root: the search bit for others on the directories above the
        cluster that lack it, so the postgres user can reach it. Again before
        every start: a pytest session starting as root meanwhile takes it
        back from /tmp/pytest-of-root (a running server does not care: it
        works relative to its data directory)."""
        if not self.as_root:
            return
        for parent in self.directory.parents:
            st = parent.stat()
            if st.st_uid == 0 and not st.st_mode & stat.S_IXOTH:
                os.chmod(parent, stat.S_IMODE(st.st_mode) | stat.S_IXOTH)

    # --- life cycle ---

    def initdb(self, attempts: int = 3) -> None:
        self._prepare_directory()
        for attempt in range(attempts):
            self._open_path()
            result = self._run("initdb", "-D", str(self.data), "-U", self.superuser,
                               "-E", "UTF8", "--locale=C", "--auth=trust",
                               "--no-instructions", timeout=120, check=False)
            if result.returncode == 0:
                break
            output = result.stdout + result.stderr
            if attempt == attempts - 1 or "Permission denied" not in output:
                raise RuntimeError(f"initdb failed ({result.returncode}):\n{output}")
            shutil.rmtree(self.data, ignore_errors=True)  # lost the path meanwhile
        # Trust on the socket and on 127.0.0.1 only (initdb also trusts ::1
        # and replication connections).
        (self.data / "pg_hba.conf").write_text(
            "# TYPE DATABASE USER ADDRESS      METHOD\n"
            "local   all      all              trust\n"
            "host    all      all  127.0.0.1/32 trust\n")
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write("\n# tests/pg.py: port and addresses in rounds.conf\n"
                       "include 'rounds.conf'\n")
        self._own(self.data / "pg_hba.conf")

    def _own(self, path: Path) -> None:
        if self.as_root:
            st = self.data.stat()
            os.chown(path, st.st_uid, st.st_gid)

    def _configure(self, port: int) -> None:
        conf = self.data / "rounds.conf"
        conf.write_text(
            f"listen_addresses = '127.0.0.1'\n"
            f"port = {port}\n"
            f"unix_socket_directories = '{self.directory}'\n"
            "fsync = on\n"  # the default, said aloud: durability is what we test
            "logging_collector = off\n")
        self._own(conf)

    def start(self, attempts: int = 3) -> None:
        """Start on a free port (another one if that port is taken meanwhile)
        and wait until the server accepts connections on it."""
        if not (self.data / "PG_VERSION").exists():
            self.initdb()
        for attempt in range(attempts):
            port = free_port()
            self._configure(port)
            self._open_path()
            self._started = True
            logged = self.log.stat().st_size if self.log.exists() else 0
            result = self._run("pg_ctl", "start", "-D", str(self.data), "-l", str(self.log),
                               "-w", "-t", "60", timeout=90, check=False)
            if result.returncode == 0:
                self.port = port
                break
            self._kill()  # whatever half-started
            output = result.stdout + result.stderr + self._log_since(logged)
            # The port taken meanwhile, or the path lost (see _open_path): again.
            retry = "could not bind" in output or "Permission denied" in output
            if attempt == attempts - 1 or not retry:
                raise RuntimeError(f"pg_ctl start failed ({result.returncode}):\n"
                                   f"{result.stdout}{result.stderr}{self.log_tail()}")
        wait_for(self._accepts, timeout=30, message=f"PostgreSQL on port {self.port}")

    def _accepts(self) -> bool:
        try:
            with psycopg.connect(self.dsn("postgres"), connect_timeout=2):
                return True
        except psycopg.OperationalError:
            return False

    def stop(self) -> None:
        """Fast shutdown; if pg_ctl cannot, kill the postmaster (by its pid
        file) and every process still in the data directory. Safe to call
        twice and on a cluster that never started."""
        if not self._started:
            return
        postmaster, _ = self._postmaster()
        self._open_path()
        try:
            result = self._run("pg_ctl", "stop", "-D", str(self.data), "-m", "fast",
                               "-w", "-t", "30", timeout=45, check=False)
            stopped = result.returncode == 0
        except (subprocess.TimeoutExpired, OSError):
            stopped = False
        if stopped and postmaster:  # it removes its pid file just before it exits
            try:
                wait_for(lambda: not _pid_alive(postmaster), timeout=10,
                         message=f"postmaster {postmaster} to exit")
            except AssertionError:
                stopped = False
        if not stopped or self.processes():
            self._kill()
        self._started = False
        if self.port is not None:
            wait_for(lambda: port_is_free(self.port), timeout=10,
                     message=f"port {self.port} free after stopping PostgreSQL")

    def _postmaster(self) -> tuple[int | None, tuple[str, str] | None]:
        """(pid, (SysV shared memory key, id)) from postmaster.pid, if there."""
        try:
            lines = (self.data / "postmaster.pid").read_text().splitlines()
        except OSError:
            return None, None
        pid = int(lines[0]) if lines and lines[0].strip().isdigit() else None
        shm = lines[6].split() if len(lines) > 6 else []
        return pid, (tuple(shm) if len(shm) == 2 else None)

    @staticmethod
    def _remove_segment(postmaster: int, shm: tuple[str, str]) -> None:
        """A killed postmaster leaves its small SysV segment behind: remove it
        if it is still that one (key, id, creator) and nothing attaches it."""
        try:
            table = Path("/proc/sysvipc/shm").read_text().splitlines()[1:]
        except OSError:
            return
        for row in table:
            # key shmid perms size cpid lpid nattch ...
            key, shmid, _, _, cpid, _, nattch = row.split()[:7]
            if (key, shmid) == shm and cpid == str(postmaster) and nattch == "0":
                subprocess.run(["ipcrm", "-m", shmid], capture_output=True)

    def _kill(self) -> None:
        """Immediate shutdown by signal: SIGQUIT to the postmaster (it takes its
        children down), then SIGKILL to anything of this cluster still alive."""
        pid, shm = self._postmaster()
        if pid and _pid_alive(pid):
            try:
                os.kill(pid, signal.SIGQUIT)
            except ProcessLookupError:
                pass
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and (_pid_alive(pid) or self.processes()):
                time.sleep(0.05)
        for _ in range(50):
            remaining = self.processes()
            if not remaining:
                break
            for p in remaining:
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.1)
        else:
            raise RuntimeError(f"PostgreSQL processes {self.processes()} survive SIGKILL")
        if pid and shm:
            self._remove_segment(pid, shm)

    def processes(self) -> list[int]:
        """Pids of this cluster's processes: the postmaster and every child
        works in the data directory (a postmaster chdirs there)."""
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                cwd = os.readlink(entry / "cwd")
            except OSError:
                continue
            if cwd == str(self.data):
                found.append(int(entry.name))
        return found

    def __enter__(self) -> "PostgresCluster":
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- databases ---

    def dsn(self, dbname: str = "postgres") -> str:
        return f"postgresql://{self.superuser}@127.0.0.1:{self.port}/{dbname}"

    def create_database(self, name: str | None = None, template: str = "template0") -> str:
        """A new database (UTF8, C), empty or a copy of ``template`` (a
        database nobody is connected to); its DSN."""
        name = name or f"test_{next(self._db_names)}"
        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {} ENCODING 'UTF8' "
                                 "LC_COLLATE 'C' LC_CTYPE 'C'").format(
                                     sql.Identifier(name), sql.Identifier(template)))
        return self.dsn(name)

    def drop_database(self, name: str) -> None:
        """Drop it, closing any connection a test left open."""
        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
                         .format(sql.Identifier(name)))


# --- pytest ---

def require_bindir() -> Path:
    """The server's bin directory; skips the test without one, or fails if
    ROUNDS_REQUIRE_PG is set (as ``make test`` does)."""
    try:
        return find_bindir()
    except PostgresUnavailable as exc:
        if os.environ.get("ROUNDS_REQUIRE_PG"):
            pytest.fail(f"{exc}; ROUNDS_REQUIRE_PG is set, so this is an error")
        pytest.skip(f"{exc}; set ROUNDS_REQUIRE_PG=1 to make this an error")


def make_fixtures(cluster: str = "pg_cluster", database: str = "pg_dsn"):
    """Two fixtures to assign at module level in a conftest or test module:
    ``pg_cluster, pg_dsn = make_fixtures()``. ``cluster`` (session): a running
    PostgresCluster in a session temp dir; ``database`` (per test): the DSN of
    a fresh database in it, dropped after the test."""
    @pytest.fixture(scope="session", name=cluster)
    def cluster_fixture(tmp_path_factory):
        bindir = require_bindir()
        with PostgresCluster(tmp_path_factory.mktemp("pg"), bindir=bindir) as running:
            yield running

    @pytest.fixture(name=database)
    def database_fixture(request):
        running = request.getfixturevalue(cluster)
        dsn = running.create_database()
        yield dsn
        running.drop_database(dsn.rsplit("/", 1)[1])

    return cluster_fixture, database_fixture
