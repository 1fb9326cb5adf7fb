"""Serial and threaded Numba builds of one batch kernel, each with its own on-disk cache."""

from __future__ import annotations

import types
from collections.abc import Callable

from numba import njit


def serial_and_parallel(kernel: Callable) -> tuple[Callable, Callable]:
    """The serial and the threaded (`prange` over scenes) cached Numba builds of `kernel`.

    Numba names a kernel's cache files after its qualified name and keys their entries by signature
    and bytecode, not by compile options. Two builds of one function would share the entries, and the
    first one compiled would be loaded for both in every later process: a threaded kernel that runs
    serially for good, or the reverse. So the serial build is made from a copy of the function named
    ``{name}_serial``, which keeps its own files.

    Returns:
        (serial, parallel) dispatchers, both ``cache=True``.
    """
    name = f"{kernel.__name__}_serial"
    serial = types.FunctionType(
        kernel.__code__, kernel.__globals__, name, kernel.__defaults__, kernel.__closure__
    )
    serial.__qualname__ = f"{kernel.__qualname__}_serial"
    serial.__doc__, serial.__module__ = kernel.__doc__, kernel.__module__
    return njit(cache=True)(serial), njit(parallel=True, cache=True)(kernel)
