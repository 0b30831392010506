"""In-memory fit: plan the parameters, then fit the biases from the drawn rows."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .biases import fit_biases
from .parameters import MiniRocketParameters, plan
from .tensors import is_tensor
from .validation import as_float32_array

if TYPE_CHECKING:
    import torch


def fit(
    x: np.ndarray | torch.Tensor,
    num_features: int = 10_000,
    max_dilations_per_kernel: int = 32,
    random_state: int | np.random.RandomState | None = None,
    device: torch.device | str | None = None,
    memory_budget: int | None = None,
) -> MiniRocketParameters:
    """Fit MiniRocket on in-memory data (n, channels, length); only the drawn rows are used.

    Parameters
    ----------
    x : numpy.ndarray or torch.Tensor
        Training series (n, channels, length), any real dtype (converted to float32), length >= 9.
    num_features : int, default 10000
        Requested feature count; the model makes ``84 * (num_features // 84)`` (at least 84).
    max_dilations_per_kernel : int, default 32
        Cap on the number of dilations.
    random_state : int, numpy.random.RandomState or None
        Seed of the draws; None draws a fresh one (recorded in ``params.seed``).
    device : str or torch.device, optional
        Where the bias fit runs; None: CUDA where available, else the CPU.
    memory_budget : int, optional
        Bytes per bias-fit step (default: :data:`~rocketstream.config.MEMORY_BUDGET`).

    Returns
    -------
    MiniRocketParameters
        The fitted model; equal to aeon's ``MiniRocket(random_state=seed)``.

    Raises
    ------
    InputError
        ``x`` is not 3-D, is empty, shorter than 9 points, not real-valued, or holds NaN/Inf; or a bad
        ``max_dilations_per_kernel`` or seed value.
    TypeError
        ``random_state`` is neither an int, a RandomState nor None.

    Examples
    --------
    >>> import numpy as np
    >>> from rocketstream.core import fit
    >>> X = np.random.default_rng(0).standard_normal((50, 3, 120)).astype(np.float32)
    >>> params = fit(X, num_features=1000, random_state=42)
    >>> params.n_features_out
    924
    """
    x = as_float32_array(x)
    n, c, length = x.shape
    params = plan(n, c, length, num_features, max_dilations_per_kernel, random_state)

    def rows(idx: np.ndarray):
        if is_tensor(x):  # then torch is loaded already
            import torch

            return x[torch.as_tensor(idx)]
        return x[idx]

    return fit_biases(params, rows, device=device, memory_budget=memory_budget)
