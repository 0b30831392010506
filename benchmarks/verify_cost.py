"""What verification on read costs: crc32c (checked by Zarr on every read) and sha256 (checked by
rocketstream's readers the first time they read a chunk), against the time to train a ridge head.

    python benchmarks/verify_cost.py                     # 12000 x 3 x 1000 -> 12000 x 9996 features
    python benchmarks/verify_cost.py --n 2000 --no-train # a quick look at the read costs only

Steps: write a synthetic input, fit and transform it into a features store (crc32c codec, sha256
digests); copy the features into a plain Zarr array with the same zstd codec but no crc32c. Then time:
reading every chunk of the plain copy (no check), of the store through Zarr (crc32c), and through
:class:`VerifiedFeatures` (sha256 + crc32c on first read, crc32c after); and the ridge head trained
from the store (verified) and from the plain copy (unverified). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np


def _timed(fn) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def read_all(array, chunk: int) -> float:
    """Seconds to read every chunk of ``array`` (one chunk at a time, as the heads do)."""
    t0 = time.perf_counter()
    for s in range(0, array.shape[0], chunk):
        np.asarray(array[s : s + chunk])
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=12_000)
    parser.add_argument("--channels", type=int, default=3)
    parser.add_argument("--length", type=int, default=1000)
    parser.add_argument("--chunk", type=int, default=500)
    parser.add_argument("--no-train", dest="train", action="store_false")
    parser.add_argument("--once", dest="repeat", action="store_false",
                        help="train each way once (default: twice, in the order plain, verified x2, plain)")
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args()

    import zarr
    from zarr.codecs import ZstdCodec

    from rocketstream.api.outofcore import fit, run_transform
    from rocketstream.heads import RidgeHead
    from rocketstream.storage import FeatureStore
    from rocketstream.synthetic import write_sine_store

    work = Path(args.workdir or tempfile.mkdtemp(prefix="rs-verify-"))
    src, feats, plain = work / "x.zarr", work / "f.zarr", work / "plain.zarr"
    result: dict = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
                    "shape": [args.n, args.channels, args.length], "chunk": args.chunk}
    if not feats.exists():
        write_sine_store(str(src), args.n, args.channels, args.length, args.chunk)
        params = fit(str(src), random_state=0)
        result["transform_s"], _ = _timed(lambda: run_transform(str(src), params, feats))
    store = FeatureStore.open(feats)
    n, f = store.n_samples, store.n_features
    result["features"] = [n, f]
    result["features_mb"] = round(n * f * 4 / 1e6, 1)
    if not plain.exists():
        copy = zarr.create_array(str(plain), shape=(n, f), chunks=(args.chunk, f), dtype="float32",
                                 compressors=[ZstdCodec(level=0)])
        for s in range(0, n, args.chunk):
            copy[s : s + args.chunk] = store.features[s : s + args.chunk]
    copy = zarr.open_array(str(plain), mode="r")
    result["read_plain_s"] = read_all(copy, args.chunk)
    result["read_crc32c_s"] = read_all(store.features, args.chunk)
    verified = store.verified()
    result["read_verified_first_s"] = read_all(verified, args.chunk)  # sha256 + crc32c
    result["read_verified_again_s"] = read_all(verified, args.chunk)  # crc32c only
    result["crc32c_cost_per_read_s"] = result["read_crc32c_s"] - result["read_plain_s"]
    result["sha256_cost_s"] = result["read_verified_first_s"] - result["read_crc32c_s"]
    labels = np.random.default_rng(0).integers(0, 4, n)
    if args.train:
        # the same reader kind (a zarr.Array, read in row slices) with and without the checks, in the
        # order plain, verified, verified, plain so that warm-up and drift fall on both equally
        fits = {"plain": lambda: RidgeHead().fit(copy, labels),
                "verified": lambda: RidgeHead().fit(store, labels)}
        times: dict[str, list[float]] = {"plain": [], "verified": []}
        heads = {}
        for name in ("plain", "verified", "verified", "plain")[: 4 if args.repeat else 2]:
            seconds, heads[name] = _timed(fits[name])
            times[name].append(seconds)
        assert heads["verified"].alpha_ == heads["plain"].alpha_
        assert np.array_equal(heads["verified"].coef_, heads["plain"].coef_)
        result["train_plain_s"] = times["plain"]
        result["train_verified_s"] = times["verified"]
        plain, verified = float(np.mean(times["plain"])), float(np.mean(times["verified"]))
        # the ridge reads the features three times (moments, second moments, leave-one-out residuals)
        overhead = max(result["sha256_cost_s"], 0.0) + 3 * max(result["crc32c_cost_per_read_s"], 0.0)
        result["verification_overhead_s"] = overhead
        result["verification_share_of_train"] = overhead / plain
        result["train_time_ratio_verified_to_plain"] = verified / plain
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else [round(t, 2) for t in v]
                      if isinstance(v, list) and v and isinstance(v[0], float) else v
                      for k, v in result.items()}, indent=1))


if __name__ == "__main__":
    main()
