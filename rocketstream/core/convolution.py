"""The MiniRocket convolution as shifted float32 additions, in the reference operation order.

With ``A = -X`` and ``G = 3X``, kernel ``k`` at dilation ``d`` gives
``C = ((C_alpha + G_{i0}) + G_{i1}) + G_{i2}`` where ``C_alpha`` sums the nine shifted copies of
``A`` (centre tap first, then taps -4d..-d, then +d..+4d) and ``G_g`` is ``G`` shifted by
``(g - 4) * d`` with zeros outside the series. Multivariate outputs are summed channel by channel
in the drawn order. Only elementwise adds are used, so results are bitwise reproducible on any
device and thread count (no convolution routine, hence no TF32).

The reference compiles its bias fit with fast-math, which reassociates that sum to
``C_alpha + ((G_{i0} + G_{i1}) + G_{i2})``; the transform keeps the left-to-right order. Both
orders are offered (``gamma_first``) so that biases and features match aeon 1.6 bit for bit.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .kernels import KERNEL_INDICES

_TAP_ORDER = (0, 1, 2, 3, 5, 6, 7, 8)


class DilationTaps:
    """``C_alpha`` and the nine shifted ``G`` copies of a batch at one dilation.

    ``alpha`` has shape (B, C + 1, L) and ``gamma`` is a strided view (B, C + 1, 9, L); the
    extra last channel is all zeros and serves as padding in channel-slot tables.

    Parameters
    ----------
    x : torch.Tensor
        float32 (B, C, L) batch, on the device to compute on.
    dilation : int
        The dilation ``d``.

    Attributes
    ----------
    alpha : torch.Tensor
        ``C_alpha``, (B, C + 1, L).
    gamma : torch.Tensor
        ``G`` shifted by ``(g - 4) * d`` for ``g`` in 0..8, a (B, C + 1, 9, L) view.
    length : int
        ``L``.
    """

    def __init__(self, x: torch.Tensor, dilation: int) -> None:
        b, c, length = x.shape
        pad = 4 * dilation
        xz = F.pad(x, (0, 0, 0, 1))  # zero channel at index c
        a_pad = F.pad(-xz, (pad, pad))
        alpha = -xz
        for g in _TAP_ORDER:
            alpha += a_pad[..., g * dilation : g * dilation + length]
        del a_pad
        g_pad = F.pad(xz * 3, (pad, pad))
        self.alpha = alpha
        self.gamma = g_pad.unfold(-1, length, dilation)  # (B, C+1, 9, L) view
        self.length = length

    def window(self, start: int, stop: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The taps restricted to output positions ``start:stop``.

        Parameters
        ----------
        start, stop : int
            Output positions, ``0 <= start <= stop <= L``.

        Returns
        -------
        alpha, gamma : torch.Tensor
            Views (B, C + 1, T) and (B, C + 1, 9, T), ``T = stop - start``.
        """
        return self.alpha[..., start:stop], self.gamma[..., start:stop]


def combination_outputs(
    alpha: torch.Tensor,
    gamma: torch.Tensor,
    kernels: torch.Tensor,
    slots: torch.Tensor,
    per_row: bool = False,
    gamma_first: bool = False,
) -> torch.Tensor:
    """Outputs of ``kernels`` (K,) on channel ``slots`` (K, M), summed over slots in order.

    With ``per_row=False`` every kernel is applied to every row: result (B, K, T).
    With ``per_row=True`` kernel ``j`` is applied to row ``j`` only (B == K): result (K, T).
    Slot value ``C`` (the zero channel) pads short channel lists and adds exact zeros.
    ``gamma_first`` sums the three gamma taps before adding ``C_alpha`` (the bias-fit order).

    Parameters
    ----------
    alpha, gamma : torch.Tensor
        The taps of :class:`DilationTaps` (or a :meth:`DilationTaps.window` of them).
    kernels : torch.Tensor
        (K,) int64 kernel indices in [0, 84), on the taps' device.
    slots : torch.Tensor
        (K, M) int64 channel of each kernel per slot, ``C`` for padding (see :func:`.tables.channel_slots`).
    per_row : bool, default False
        Apply kernel ``j`` to row ``j`` only.
    gamma_first : bool, default False
        The bias-fit summation order.

    Returns
    -------
    torch.Tensor
        float32 (B, K, T), or (K, T) with ``per_row``.
    """
    taps = _kernel_taps(kernels.device)[kernels]  # (K, 3)
    rows = torch.arange(len(kernels), device=alpha.device) if per_row else slice(None)
    acc = None
    for m in range(slots.shape[1]):
        ch = slots[:, m]
        if gamma_first:
            term = gamma[rows, ch, taps[:, 0]]
            term += gamma[rows, ch, taps[:, 1]]
            term += gamma[rows, ch, taps[:, 2]]
            term += alpha[rows, ch]
        else:
            term = alpha[rows, ch]
            for t in range(3):
                term += gamma[rows, ch, taps[:, t]]
        acc = term if acc is None else acc.add_(term)
    return acc


_TAPS_CACHE: dict[torch.device, torch.Tensor] = {}


def _kernel_taps(device: torch.device) -> torch.Tensor:
    if device not in _TAPS_CACHE:
        _TAPS_CACHE[device] = torch.as_tensor(KERNEL_INDICES, device=device)
    return _TAPS_CACHE[device]
