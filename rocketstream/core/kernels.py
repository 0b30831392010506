"""The 84 fixed MiniRocket kernels and the constants of the algorithm."""

from __future__ import annotations

from itertools import combinations

import numpy as np

KERNEL_LENGTH = 9
NUM_KERNELS = 84
MIN_LENGTH = KERNEL_LENGTH

#: Positions of the three +2 weights of each kernel, in ``combinations(range(9), 3)`` order.
KERNEL_INDICES: np.ndarray = np.array(list(combinations(range(KERNEL_LENGTH), 3)), dtype=np.int64)


def kernel_weights() -> np.ndarray:
    """Return the (84, 9) float32 weights: -1 everywhere, +2 at the three chosen taps.

    Returns
    -------
    numpy.ndarray
        float32 (84, 9), one row per kernel, in :data:`KERNEL_INDICES` order.
    """
    w = np.full((NUM_KERNELS, KERNEL_LENGTH), -1.0, dtype=np.float32)
    np.put_along_axis(w, KERNEL_INDICES, 2.0, axis=1)
    return w
