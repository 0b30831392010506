"""In-memory fit: plan the parameters, then fit the biases from the drawn rows."""

from __future__ import annotations

import numpy as np
import torch

from .biases import fit_biases
from .parameters import MiniRocketParameters, plan
from .validation import as_float32_array


def fit(
    x: np.ndarray | torch.Tensor,
    num_features: int = 10_000,
    max_dilations_per_kernel: int = 32,
    random_state: int | np.random.RandomState | None = None,
    device: torch.device | str | None = None,
    memory_budget: int | None = None,
) -> MiniRocketParameters:
    """Fit MiniRocket on in-memory data (n, channels, length); only the drawn rows are used."""
    x = as_float32_array(x)
    n, c, length = x.shape
    params = plan(n, c, length, num_features, max_dilations_per_kernel, random_state)

    def rows(idx: np.ndarray):
        return x[torch.as_tensor(idx)] if torch.is_tensor(x) else x[idx]

    return fit_biases(params, rows, device=device, memory_budget=memory_budget)
