"""Index tables derived from the parameters, in the shapes the torch kernels consume."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .kernels import NUM_KERNELS
from .parameters import MiniRocketParameters

if TYPE_CHECKING:
    import torch


def channel_slots(params: MiniRocketParameters) -> list[torch.Tensor]:
    """Per dilation, an (84, M) int64 table of each kernel's channels, padded with ``C``.

    ``C`` (= ``n_channels``) names the all-zero channel that :class:`DilationTaps` appends.

    Parameters
    ----------
    params : MiniRocketParameters
        The model (fitted or a plan).

    Returns
    -------
    list of torch.Tensor
        One int64 CPU tensor (84, M) per dilation; ``M`` is that dilation's longest channel list.
    """
    import torch

    combos = params.combination_channels()
    tables = []
    for i in range(params.n_dilations):
        chans = combos[i * NUM_KERNELS : (i + 1) * NUM_KERNELS]
        width = max(len(c) for c in chans)
        table = np.full((NUM_KERNELS, width), params.n_channels, dtype=np.int64)
        for k, c in enumerate(chans):
            table[k, : len(c)] = c
        tables.append(torch.from_numpy(table))
    return tables


def kernel_windows(dilation_index: int, dilation: int, length: int,
                   all_padded: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Per kernel, the output window ``[lo, hi)`` (int32 (84,) each) that its PPVs count over.

    Kernel ``k`` at dilation index ``i`` uses the whole padded output when ``i + k`` is even, else
    the valid region ``[4d, L - 4d)``; under the variable-length rule (``all_padded``) every kernel
    uses the whole output.

    Parameters
    ----------
    dilation_index : int
        Position ``i`` of the dilation in the model.
    dilation : int
        The dilation ``d``.
    length : int
        Series length ``L``.
    all_padded : bool, default False
        The variable-length rule: every window is ``[0, L)``.

    Returns
    -------
    lo, hi : numpy.ndarray
        int32 (84,) each.
    """
    ks = np.arange(NUM_KERNELS)
    padded = np.ones(NUM_KERNELS, bool) if all_padded else (dilation_index + ks) % 2 == 0
    pad = 4 * int(dilation)
    lo = np.where(padded, 0, pad).astype(np.int32)
    hi = np.where(padded, length, length - pad).astype(np.int32)
    return lo, hi
