"""Private MariaDB, Redis and RabbitMQ instances for the outage drills.

The drills (``benchmarks/chaos.py``) stop and kill the services the stack depends on,
so they run their own: each instance listens on a free loopback port, keeps its data
in a temporary directory and is a child process of the benchmark, which stops it at
the end (also on an error or a signal). The machine's own services on 3306, 6379 and
5672 are never touched.

- Redis: ``redis-server`` with the append-only file on (``appendfsync everysec``, as
  the compose file runs it), no RDB snapshots.
- MariaDB: a data directory made by ``mariadb-install-db`` (root with an empty
  password, as the development server), then ``mariadbd --no-defaults`` with
  ``local-infile`` on (ingest's LOAD DATA LOCAL) and a small buffer pool.
- RabbitMQ: ``rabbitmq-server`` (the script, not the wrapper that changes user) with
  its own node name, AMQP and distribution ports, Mnesia and log directories, an
  empty plugin list, and HOME in the temporary directory (its Erlang cookie). The
  node registers with the machine's epmd (started by Erlang if none runs), as every
  local Erlang node does.

``start()`` waits until the service answers; ``stop()`` is a clean shutdown
(SIGTERM), ``kill()`` a ``kill -9``; ``start()`` again restarts it on the same port
and data.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

HOST = "127.0.0.1"
RABBITMQ_SERVER = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")
# The machine's services: a private instance never takes their ports.
MACHINE_PORTS = frozenset({3306, 5672, 6379, 4369, 15672, 25672})


def free_port() -> int:
    """A loopback TCP port nobody listens on now (never one of the machine's services)."""
    while True:
        with socket.socket() as sock:
            sock.bind((HOST, 0))
            port = int(sock.getsockname()[1])
        if port not in MACHINE_PORTS:
            return port


def answers(port: int) -> bool:
    """Whether something accepts TCP connections on ``HOST:port``."""
    try:
        with socket.create_connection((HOST, port), timeout=0.5):
            return True
    except OSError:
        return False


@dataclass
class PrivateService:
    """One private instance: ``name`` is "redis", "mariadb" or "rabbitmq"."""

    name: str
    directory: Path
    port: int = field(default_factory=free_port)
    dist_port: int = field(default_factory=free_port)  # RabbitMQ's distribution port
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The URL the application's settings take (DATABASE_URL, REDIS_URL, ...)."""
        return {
            "redis": f"redis://{HOST}:{self.port}/0",
            "mariadb": f"mysql://root:@{HOST}:{self.port}/sentinel_chaos",
            "rabbitmq": f"amqp://guest:guest@{HOST}:{self.port}//",
        }[self.name]

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, *, timeout: float = 90) -> None:
        """Start the instance (again) and wait until it answers."""
        if self.running:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        command, env = _COMMANDS[self.name](self)
        with (self.directory / f"{self.name}.out").open("ab") as out:
            # Its own process group: a signal to it never reaches the benchmark.
            self.process = subprocess.Popen(
                command,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.wait_ready(timeout=timeout)

    def wait_ready(self, *, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(
                    f"private {self.name} exited with {self.process.returncode}; "
                    f"see {self.directory / f'{self.name}.out'}"
                )
            if answers(self.port) and _READY[self.name](self):
                return
            time.sleep(0.2)
        raise RuntimeError(f"private {self.name} did not answer on port {self.port} in {timeout} s")

    def stop(self, *, timeout: float = 60) -> None:
        """A clean shutdown (SIGTERM to its process group), SIGKILL if it lingers."""
        self._end(signal.SIGTERM, timeout=timeout)

    def kill(self) -> None:
        """``kill -9`` of the instance and its process group."""
        self._end(signal.SIGKILL, timeout=10)

    def _end(self, sig: signal.Signals, *, timeout: float) -> None:
        process = self.process
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        # Helpers of the group (Erlang's port programs) go with it.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        self.process = None
        deadline = time.monotonic() + 10
        while answers(self.port) and time.monotonic() < deadline:
            time.sleep(0.1)


# --- Redis ----------------------------------------------------------------------


def _redis_command(service: PrivateService) -> tuple[list[str], dict[str, str]]:
    return [
        "redis-server",
        "--bind", HOST, "--port", str(service.port), "--dir", str(service.directory),
        "--appendonly", "yes", "--appendfsync", "everysec", "--save", "",
        "--daemonize", "no", "--protected-mode", "yes", "--logfile", "",
    ], dict(os.environ)  # fmt: skip


def _redis_ready(service: PrivateService) -> bool:
    import redis

    client = redis.Redis(host=HOST, port=service.port, socket_timeout=2)
    try:
        # Loading the append-only file answers LOADING until done.
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


# --- MariaDB --------------------------------------------------------------------


def _mariadb_command(service: PrivateService) -> tuple[list[str], dict[str, str]]:
    data = service.directory / "data"
    if not (data / "mysql").is_dir():
        subprocess.run(
            [
                "mariadb-install-db", "--no-defaults", f"--datadir={data}", "--user=root",
                "--auth-root-authentication-method=normal", "--skip-test-db",
            ],
            check=True, capture_output=True, timeout=180,
        )  # fmt: skip
    return [
        "mariadbd", "--no-defaults", f"--datadir={data}", "--user=root",
        f"--port={service.port}", f"--bind-address={HOST}",
        f"--socket={service.directory / 'mysqld.sock'}",
        f"--pid-file={service.directory / 'mysqld.pid'}",
        "--local-infile=1", "--character-set-server=utf8mb4",
        "--collation-server=utf8mb4_unicode_ci", "--innodb-buffer-pool-size=128M",
        "--performance-schema=OFF", "--skip-log-bin", "--max-connections=200",
    ], dict(os.environ)  # fmt: skip


def _mariadb_ready(service: PrivateService) -> bool:
    import MySQLdb

    try:
        conn = MySQLdb.connect(host=HOST, port=service.port, user="root", passwd="")
    except MySQLdb.Error:
        return False
    conn.close()
    return True


# --- RabbitMQ -------------------------------------------------------------------


def _rabbitmq_command(service: PrivateService) -> tuple[list[str], dict[str, str]]:
    base = service.directory
    for sub in ("mnesia", "log", "home"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    (base / "enabled_plugins").write_text("[].\n")
    (base / "rabbitmq.conf").write_text(
        f"listeners.tcp.local = {HOST}:{service.port}\nloopback_users.guest = true\n"
    )
    (base / "rabbitmq-env.conf").write_text("")  # not the machine's /etc/rabbitmq one
    # This environment without any RabbitMQ or Erlang setting of the machine's.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RABBITMQ_", "ERL_"))}
    env |= {
        "HOME": str(base / "home"),
        "LANG": "C.UTF-8",
        "RABBITMQ_NODENAME": f"sentinel-chaos-{service.port}@localhost",
        "RABBITMQ_NODE_IP_ADDRESS": HOST,
        "RABBITMQ_NODE_PORT": str(service.port),
        "RABBITMQ_DIST_PORT": str(service.dist_port),
        "RABBITMQ_MNESIA_BASE": str(base / "mnesia"),
        "RABBITMQ_LOG_BASE": str(base / "log"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(base / "enabled_plugins"),
        "RABBITMQ_CONFIG_FILE": str(base / "rabbitmq"),
        "RABBITMQ_CONF_ENV_FILE": str(base / "rabbitmq-env.conf"),
        "RABBITMQ_PID_FILE": str(base / "rabbitmq.pid"),
        "ERL_EPMD_ADDRESS": HOST,
    }
    return [str(RABBITMQ_SERVER)], env


def _rabbitmq_ready(service: PrivateService) -> bool:
    from kombu import Connection

    try:
        with Connection(service.url, connect_timeout=2) as conn:
            conn.connect()
    except Exception:  # anything short of a connection means "not yet"
        return False
    return True


_COMMANDS = {"redis": _redis_command, "mariadb": _mariadb_command, "rabbitmq": _rabbitmq_command}
_READY = {"redis": _redis_ready, "mariadb": _mariadb_ready, "rabbitmq": _rabbitmq_ready}


@contextlib.contextmanager
def private_services(
    names: tuple[str, ...] = ("mariadb", "redis", "rabbitmq"), *, keep: bool = False
) -> Iterator[dict[str, PrivateService]]:
    """Start private instances of ``names`` in a new temporary directory; yield them
    by name; stop them all (and remove the directory unless ``keep``) on the way out,
    whatever happens inside."""
    directory = Path(tempfile.mkdtemp(prefix="sentinel-chaos-"))
    services = {name: PrivateService(name, directory / name) for name in names}
    try:
        for service in services.values():
            service.start()
        yield services
    finally:
        for service in services.values():
            with contextlib.suppress(Exception):
                service.stop(timeout=20)
        if not keep:
            shutil.rmtree(directory, ignore_errors=True)
