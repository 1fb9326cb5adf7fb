"""Processes sharing the machine's cores: thread pools, and the checked actor settings that size them."""

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


def test_actor_thread_and_warm_up_settings_are_checked():
    from alpagym_train.grpo.config import from_plain

    with pytest.raises(ValueError, match="actors.numba_threads must be >= 0, got -2"):
        from_plain({"actors": {"numba_threads": -2}})
    with pytest.raises(ValueError, match=r"actors.warm_scenes must be >= -1 \(-1: all\), got -3"):
        from_plain({"actors": {"warm_scenes": -3}})
    assert from_plain({"actors": {"warm_scenes": -1}}).actors.warm_scenes == -1
