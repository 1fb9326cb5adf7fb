"""Pure Numba kernels of the simulator, grouped by concern.

Every kernel takes arrays and scalars, writes into preallocated arrays, and never allocates in the hot
loop. `engine.py` orchestrates one step of the whole batch (B scenes x N agent slots).
"""
