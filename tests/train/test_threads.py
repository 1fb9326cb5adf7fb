"""Thread pools of processes that share the machine's cores."""

from __future__ import annotations

import os

import pytest

numba = pytest.importorskip("numba")

from alpagym_train.threads import share_numba_threads  # noqa: E402


def test_each_busy_process_gets_its_share_of_the_cores():
    before = numba.get_num_threads()
    try:
        cores = min(os.cpu_count() or 1, numba.config.NUMBA_NUM_THREADS)
        assert share_numba_threads(sharing=1) == cores == numba.get_num_threads()
        assert share_numba_threads(sharing=(os.cpu_count() or 1) + 1) == 1 == numba.get_num_threads()
        assert share_numba_threads(sharing=3, threads=1) == 1
    finally:
        numba.set_num_threads(before)
