"""Who a run is and what it shares privately: its unique id, its secret, the Redis password.

- A fresh run gets a unique id ``{run_dir name}-{8 hex}``, written to ``{run_dir}/run_id`` and into
  every checkpoint, so ``resume=`` reuses it; ``redis.run_id`` overrides it.
- The run secret (32 random bytes) signs weights and rollouts (`alpagym_train.wire`). It is read from
  ``redis.secret_file`` (a 0600 file holding hex), else the ``ALPAGYM_RUN_SECRET`` environment variable,
  else ``{run_dir}/run_secret`` (created 0600 by the learner of a fresh run). Actors on other machines
  are given it out of band (copy the file, or set the variable); it never appears on a command line.
- A Redis password may come from ``ALPAGYM_REDIS_PASSWORD`` instead of the URL, to keep it out of argv.
- The learner of a live run holds its lease (`take_run`): no second learner takes the run's keys.
"""

from __future__ import annotations

import os
import re
import secrets
import socket
import stat
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit, urlunsplit

if TYPE_CHECKING:
    from alpagym_train.transport import Transport

SECRET_ENV = "ALPAGYM_RUN_SECRET"
PASSWORD_ENV = "ALPAGYM_REDIS_PASSWORD"
RUN_ID_FILE = "run_id"
SECRET_FILE = "run_secret"


def new_run_id(run_dir: str | Path) -> str:
    """A fresh unique run id: the run directory's name (other characters than letters, digits, '_', '.'
    and '-' replaced by '_') and 8 random hex digits."""
    name = re.sub(r"[^A-Za-z0-9_.\-]", "_", Path(run_dir).resolve().name)
    return f"{name}-{secrets.token_hex(4)}"


def run_id_for(cfg) -> str:
    """The run's id: ``redis.run_id``; else the id recorded by the run resumed; else a fresh one.

    Raises:
        FileNotFoundError: ``resume`` names a run without a recorded id.
    """
    if cfg.redis.run_id:
        return cfg.redis.run_id
    if cfg.resume:
        from alpagym_train.grpo.checkpoint import resolve_checkpoint

        ckpt = resolve_checkpoint(cfg.resume)
        for candidate in (ckpt / RUN_ID_FILE, ckpt.parent.parent / RUN_ID_FILE):
            if candidate.is_file():
                return candidate.read_text().strip()
        raise FileNotFoundError(f"resume={cfg.resume}: no {RUN_ID_FILE} recorded; set redis.run_id=...")
    return new_run_id(cfg.run_dir)


def record_run_id(run_dir: str | Path, run_id: str) -> None:
    """Writes ``{run_dir}/run_id``."""
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    (Path(run_dir) / RUN_ID_FILE).write_text(run_id + "\n")


def _read_secret_file(path: Path, what: str) -> bytes:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise ValueError(f"{what}={path}: mode {mode:o} lets other users read the run secret; chmod 600 it")
    try:
        return bytes.fromhex(path.read_text().strip())
    except ValueError:
        raise ValueError(f"{what}={path}: not a hex run secret") from None


def read_secret(cfg) -> bytes | None:
    """The run secret from ``redis.secret_file``, ``ALPAGYM_RUN_SECRET`` or the run directory; None
    when none is set.

    Raises:
        ValueError: The secret file is readable by others, or not hex.
    """
    if cfg.redis.secret_file:
        return _read_secret_file(Path(cfg.redis.secret_file), "redis.secret_file")
    if os.environ.get(SECRET_ENV):
        try:
            return bytes.fromhex(os.environ[SECRET_ENV])
        except ValueError:
            raise ValueError(f"{SECRET_ENV} is not a hex run secret") from None
    own = Path(cfg.run_dir) / SECRET_FILE
    if own.is_file():
        return _read_secret_file(own, "the run secret")
    return None


def ensure_secret(cfg) -> bytes:
    """The run secret (`read_secret`), created in ``{run_dir}/run_secret`` (0600) when none is set."""
    secret = read_secret(cfg)
    if secret is not None:
        return secret
    secret = secrets.token_bytes(32)
    Path(cfg.run_dir).mkdir(parents=True, exist_ok=True)
    fd = os.open(Path(cfg.run_dir) / SECRET_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secret.hex() + "\n")
    return secret


def with_password(url: str) -> str:
    """`url` with the password of ``ALPAGYM_REDIS_PASSWORD`` when it carries none itself."""
    password = os.environ.get(PASSWORD_ENV)
    parts = urlsplit(url)
    if not password or parts.password is not None:
        return url
    return urlunsplit(
        parts._replace(netloc=f"{parts.username or ''}:{quote(password, safe='')}@{parts.netloc}")
    )


class RunInUse(Exception):
    """Another live learner holds the run's keys."""


def take_run(transport: Transport, resumed: bool, ttl_s: float) -> str:
    """Takes the run's lease; a fresh run first clears what a dead run of the same id left behind.

    Args:
        transport: The run's `Transport`.
        resumed: A resumed run keeps its keys (pending groups, weights); a fresh one clears them.
        ttl_s: Lifetime of the lease unless renewed.

    Returns:
        The lease owner token (``host:pid:random``).

    Raises:
        RunInUse: A live learner holds the run.
    """
    owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
    ttl = ttl_s
    holder = transport.claim_lease(owner, ttl)
    if holder is not None:
        if lease_is_live(holder):
            raise RunInUse(
                f"run {transport.run_id!r} is in use by the learner {holder.rsplit(':', 1)[0]} on this "
                "Redis; pick another redis.run_id (or wait for it to finish)"
            )
        transport.release_lease(holder)  # its learner died on this machine: take the run over
        transport.claim_lease(owner, ttl)
    if not resumed:
        transport.clear()  # a dead run's leftover groups, spec and stop key are not this run's
        transport.claim_lease(owner, ttl)
    return owner


def lease_is_live(holder: str) -> bool:
    """Whether the learner holding a lease (``host:pid:token``) may still run: a learner on another
    machine always may; one on this machine while its process exists."""
    host, _, rest = holder.partition(":")
    pid = rest.partition(":")[0]
    return host != socket.gethostname() or not pid.isdigit() or _alive(int(pid))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
