"""`SceneRows`: which row of `BatchedSim`'s scene bank holds which scene, and which rows may be overwritten.

The bank holds Q >= B compiled scenes; each of the B scene slots reads its scene from one row
(`row[b]`). Slots that hold the same scene share its row, and a row that no slot holds keeps its scene
until a newly drawn scene needs the room (least recently released first). A scene already in the bank
therefore loads without a copy: a group of rollouts of one scene, a scene drawn again from a small suite,
an evaluation repeat.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable

import numpy as np


class SceneRows:
    """The bank's bookkeeping: rows by scene key, holders per row, and the idle rows in release order.

    Args:
        num_rows: Q, rows of the bank (at least `num_slots`, so a slot always finds a row).
        num_slots: B, scene slots. Slot b starts on row b, holding no scene.
    """

    def __init__(self, num_rows: int, num_slots: int) -> None:
        if num_rows < num_slots:
            raise ValueError(f"a bank of {num_rows} rows cannot serve {num_slots} scene slots")
        self.row = np.arange(num_slots, dtype=np.int64)  # (B,) the row each slot reads
        self._holders = [1] * num_slots + [0] * (num_rows - num_slots)
        self._key: list[Hashable | None] = [None] * num_rows
        self._row_of: dict[Hashable, int] = {}
        self._idle: OrderedDict[int, None] = OrderedDict.fromkeys(range(num_slots, num_rows))

    @property
    def num_rows(self) -> int:
        return len(self._key)

    def find(self, key: Hashable) -> int | None:
        """The row holding scene `key`, or None."""
        return self._row_of.get(key)

    def assign(self, slot: int, key: Hashable) -> int:
        """Points `slot` at the row holding scene `key`, claiming the longest-idle row if none does (the
        caller then writes the scene into it: `find` tells the two cases apart beforehand)."""
        k = self._row_of.get(key)
        self._release(int(self.row[slot]))  # first: with as many rows as slots, the slot's own may be the one
        if k is None:
            k, _ = self._idle.popitem(last=False)
            old = self._key[k]
            if old is not None:
                del self._row_of[old]
            self._key[k], self._row_of[key] = key, k
        elif self._holders[k] == 0:
            del self._idle[k]
        self._holders[k] += 1
        self.row[slot] = k
        return k

    def _release(self, k: int) -> None:
        self._holders[k] -= 1
        if self._holders[k] == 0:
            self._idle[k] = None  # the most recently released goes last

    def held(self, k: int) -> int:
        """How many slots read row `k`."""
        return self._holders[k]
