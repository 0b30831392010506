"""The Triton engine on CPU tensors under ``TRITON_INTERPRET=1``, for machines without a GPU.

``python tests/helpers/triton_interpret.py OUT.npz`` runs every case of :func:`cases` through the
fused kernels in interpreter mode and saves the features. The interpreter must be chosen before
triton is first imported, hence the subprocess. The cases are small: each kernel program costs
milliseconds when interpreted.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def cases() -> dict[str, dict]:
    """name -> x, params, prepared options (length, all_padded) and engine options."""
    from conftest import load_split

    from rocketstream.core import fit

    gun = load_split("GunPoint", "train")[0]
    motions = load_split("BasicMotions", "train")[0]
    # 5 features per kernel over 2 dilations: 3 and 2 biases per kernel (padded lanes masked)
    uni = fit(gun, num_features=420, max_dilations_per_kernel=2, random_state=0)
    multi = fit(motions, num_features=168, max_dilations_per_kernel=2, random_state=5)
    return {
        "univariate": dict(x=gun[:2], params=uni, engine={}),
        # tiles of 32 points: whole (unmasked) tiles and a masked tail
        "micro_batches": dict(x=gun[2:5], params=uni, engine=dict(batch_size=1, block_t=32)),
        "inline_time_splits": dict(
            x=gun[:2], params=uni, engine=dict(inline=True, splits=3, block_t=64, k_group=6)),
        "multivariate": dict(x=motions[:2], params=multi, engine=dict(block_t=32, splits=2, k_group=4)),
        "multivariate_inline": dict(x=motions[:1], params=multi, engine=dict(inline=True, splits=2)),
        "variable_length_rule": dict(
            x=np.ascontiguousarray(gun[:2, :, :120]), params=uni, prepared=dict(length=120, all_padded=True),
            engine={}),
    }


def main(out: str) -> None:
    os.environ["TRITON_INTERPRET"] = "1"
    import torch

    from rocketstream.core.triton_engine import TritonKernels, transform

    results = {}
    for name, case in cases().items():
        params = case["params"]
        opts = {"length": params.length, "all_padded": False, **case.get("prepared", {})}
        prepared = TritonKernels(params, torch.device("cpu"), **opts)
        results[name] = transform(case["x"], prepared, **case["engine"]).numpy()
    np.savez(out, **results)


if __name__ == "__main__":
    main(sys.argv[1])
