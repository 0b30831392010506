"""Batch MiniRocket transform: (n, channels, length) -> (n, 84 * (num_features // 84)) float32."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .budget import CPU_STEP_BUDGET, transform_batch_shape
from .convolution import DilationTaps, combination_outputs
from .kernels import NUM_KERNELS
from .parameters import MiniRocketParameters
from .tables import channel_slots


@dataclass
class _KernelGroup:
    kernels: torch.Tensor  # (K,)
    slots: torch.Tensor  # (K, M)
    biases: torch.Tensor  # (K, nfd)
    positions: torch.Tensor  # (K * nfd,) output columns
    start: int  # output window of the convolution
    stop: int


@dataclass
class _DilationPlan:
    dilation: int
    groups: list[_KernelGroup]


class TransformPlan:
    """Parameters laid out on one device for the batch transform; build once, reuse per chunk."""

    def __init__(self, params: MiniRocketParameters, device: torch.device | str | None = None) -> None:
        if not params.is_fitted:
            raise ValueError("the parameters have no biases yet; fit before transforming")
        self.params = params
        self.device = torch.device(device or "cpu")
        slots = channel_slots(params)
        offsets = params.feature_offsets()
        biases = params.biases
        length = params.length
        self.dilations: list[_DilationPlan] = []
        for i, (d, nfd) in enumerate(params.per_dilation()):
            pad = 4 * d
            groups = []
            for parity, (start, stop) in ((0, (0, length)), (1, (pad, length - pad))):
                ks = np.arange(NUM_KERNELS)[(i + np.arange(NUM_KERNELS)) % 2 == parity]
                pos = offsets[i] + ks[:, None] * nfd + np.arange(nfd)[None, :]
                groups.append(
                    _KernelGroup(
                        kernels=torch.as_tensor(ks, device=self.device),
                        slots=slots[i][torch.as_tensor(ks)].to(self.device),
                        biases=torch.as_tensor(biases[pos], device=self.device),
                        positions=torch.as_tensor(pos.reshape(-1), device=self.device),
                        start=start,
                        stop=stop,
                    )
                )
            self.dilations.append(_DilationPlan(d, groups))

    def run(self, x: torch.Tensor, kernel_chunk: int = 42) -> torch.Tensor:
        """Transform one micro-batch ``x`` (B, C, L) already on the plan's device."""
        b = x.shape[0]
        out = torch.empty(b, self.params.n_features_out, dtype=torch.float32, device=self.device)
        for dp in self.dilations:
            taps = DilationTaps(x, dp.dilation)
            for g in dp.groups:
                alpha, gamma = taps.window(g.start, g.stop)
                n = g.stop - g.start
                nfd = g.biases.shape[1]
                for k0 in range(0, len(g.kernels), kernel_chunk):
                    sl = slice(k0, k0 + kernel_chunk)
                    c = combination_outputs(alpha, gamma, g.kernels[sl], g.slots[sl])
                    bias = g.biases[sl]
                    counts = torch.stack([(c > bias[:, j : j + 1]).sum(-1) for j in range(nfd)], -1)
                    del c
                    ppv = (counts.to(torch.float64) / n).to(torch.float32)
                    cols = g.positions[k0 * nfd : (k0 + len(bias)) * nfd]
                    out.index_copy_(1, cols, ppv.reshape(b, -1))
            del taps
        return out


def transform(
    x: np.ndarray | torch.Tensor,
    params: MiniRocketParameters,
    device: torch.device | str | None = None,
    batch_size: int | None = None,
    memory_budget: int | None = None,
    plan: TransformPlan | None = None,
) -> torch.Tensor:
    """Transform validated float32 data in micro-batches; returns a float32 tensor on ``device``.

    The input may live anywhere (NumPy, CPU or GPU tensor); only one micro-batch at a time is
    moved to ``device``.
    """
    plan = plan or TransformPlan(params, device)
    n, c, length = x.shape
    if memory_budget is None and plan.device.type == "cpu":
        memory_budget = CPU_STEP_BUDGET
    auto_batch, kernel_chunk = transform_batch_shape(c, length, memory_budget)
    batch = batch_size or auto_batch
    out = torch.empty(n, params.n_features_out, dtype=torch.float32, device=plan.device)
    for s in range(0, n, batch):
        xb = x[s : s + batch]
        xb = torch.as_tensor(xb).to(device=plan.device, dtype=torch.float32)
        out[s : s + len(xb)] = plan.run(xb, kernel_chunk)
    return out
