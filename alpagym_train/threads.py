"""Torch and the simulator's Numba kernels sharing a few CPU cores."""

from __future__ import annotations


def pin_torch_threads(n: int) -> None:
    """Sets torch's CPU threads to `n` for good.

    Numba's OpenMP thread pool, started by the first parallel kernel, resets the process-wide OpenMP
    thread count and so undoes an earlier ``torch.set_num_threads``. Starting the pool first
    (``numba.get_num_threads`` does) makes the setting stick. On 2 cores, torch spinning on a second
    thread beside the simulator's pool slows both down several times over.
    """
    import numba
    import torch

    numba.get_num_threads()
    torch.set_num_threads(n)
