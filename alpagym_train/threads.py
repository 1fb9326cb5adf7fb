"""Torch and the simulator's Numba kernels sharing a few CPU cores."""

from __future__ import annotations

import os


def pin_compute_threads(n: int) -> None:
    """Sets torch's CPU threads and numpy's BLAS threads to `n` for good.

    Numba's OpenMP thread pool, started by the first parallel kernel, resets the process-wide OpenMP
    thread count and so undoes an earlier ``torch.set_num_threads``. Starting the pool first
    (``numba.get_num_threads`` does) makes the setting stick. On 2 cores, torch spinning on a second
    thread beside the simulator's pool slows both down several times over. numpy's bundled OpenBLAS
    starts a thread per core as well: the rollouts' small matrix products (`RolloutPolicy`) gain
    nothing from them, and beside other busy processes they spin against them (2 actors and a
    learner on 2 cores ran at a sixth of their speed).
    """
    import numba
    import torch
    from threadpoolctl import threadpool_limits

    numba.get_num_threads()
    torch.set_num_threads(n)
    threadpool_limits(n, user_api="blas")


def share_numba_threads(sharing: int, threads: int = 0) -> int:
    """Sets the simulator's Numba threads of a process that shares the machine's cores; returns them.

    Numba's OpenMP threads meet at a barrier after every parallel kernel: with as many threads as
    cores and another busy process on the machine, one of them is often descheduled and the others
    wait for it (5-10x slower than one thread on 2 cores with GNU OpenMP's default spinning;
    `alpagym_env` shortens the spin, which removes most of that, not the waiting). So each of the
    `sharing` busy processes gets its share of the cores.

    Args:
        sharing: Busy processes on this machine, this one included.
        threads: Threads to use instead of the share (0: the share, at least 1).
    """
    import numba

    n = threads or max(1, (os.cpu_count() or 1) // max(1, sharing))
    n = min(n, numba.config.NUMBA_NUM_THREADS)
    numba.set_num_threads(n)
    return n
