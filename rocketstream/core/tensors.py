"""Telling torch tensors from NumPy arrays without importing torch.

A torch tensor can only exist once this process has imported torch, so these checks look torch up
in ``sys.modules`` instead of importing it. The CPU path (the native kernel on NumPy arrays) then
never pays for ``import torch``; code that computes with torch imports it where it does.
"""

from __future__ import annotations

import sys
from typing import Any


def loaded_torch() -> Any | None:
    """The ``torch`` module if this process has imported it, else None (never imports it).

    Returns
    -------
    module or None
    """
    return sys.modules.get("torch")


def is_tensor(x: Any) -> bool:
    """Whether ``x`` is a torch tensor (False, without importing torch, when torch is not loaded).

    Parameters
    ----------
    x : Any

    Returns
    -------
    bool
    """
    torch = loaded_torch()
    return torch is not None and torch.is_tensor(x)


def is_torch_dtype(dtype: Any) -> bool:
    """Whether ``dtype`` is a ``torch.dtype`` (False, without importing torch, when torch is not loaded).

    Parameters
    ----------
    dtype : Any

    Returns
    -------
    bool
    """
    torch = loaded_torch()
    return torch is not None and isinstance(dtype, torch.dtype)


__all__ = ["is_tensor", "is_torch_dtype", "loaded_torch"]
