"""The exit statuses of every AlpaGym trainer process (supervisor, learner, actor), in one table.

The supervisor of ``role=all`` reads its children's statuses with this table, and returns one of them.
A process killed by a signal is reported by the signal's name (``SIGKILL``), never a bare number.
"""

from __future__ import annotations

import enum
import signal


class ExitCode(enum.IntEnum):
    """Exit status of a trainer process.

    Attributes:
        OK: The run finished (or, for an actor, the run it served is over).
        CRASH: An unexpected error (a bug, an out-of-memory error); the learner checkpointed first.
        CONFIG: Bad configuration or a failed preflight check (nothing was started, or nothing trained).
        REDIS_LOST: Redis stayed unreachable for longer than ``redis.timeout_s`` (progress is checkpointed).
        NO_ACTORS: The learner saw no live actor for ``learner.actor_timeout_s`` (it checkpointed).
        INTERRUPTED: Ctrl-C, SIGTERM or a stop request (the learner checkpointed).
    """

    OK = 0
    CRASH = 1
    CONFIG = 2
    REDIS_LOST = 3
    NO_ACTORS = 4
    INTERRUPTED = 130


def describe(status: int | None) -> str:
    """A process's exit status in words: ``"exit 3 (REDIS_LOST)"`` or ``"killed by SIGKILL"``."""
    if status is None:
        return "still running"
    if status < 0:
        try:
            return f"killed by {signal.Signals(-status).name}"
        except ValueError:
            return f"killed by signal {-status}"
    try:
        return f"exit {status} ({ExitCode(status).name})"
    except ValueError:
        return f"exit {status}"
