"""``rocketstream ingest``: time series files into a (sample, channel, time) Zarr store."""

from __future__ import annotations

import argparse

from .argtypes import positive_int
from .options import add_progress, progress_of


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "ingest", help="convert .ts/.tsv/.npy/.npz/netCDF files into a Zarr store",
        description="Read a UCR/UEA .ts file, a UCR .tsv file, a NumPy .npy/.npz file or a netCDF "
        "(xarray-readable) file and write a Zarr store with X (sample, channel, time), length "
        "(sample) and a label coordinate. Unequal-length series are zero-padded after their length.")
    p.add_argument("input", help="input file")
    p.add_argument("output", help="output Zarr store (directory)")
    p.add_argument("--format", dest="fmt", choices=["ts", "tsv", "npy", "npz", "nc"],
                   help="input format (default: from the file suffix)")
    p.add_argument("--variable", help="data variable/array name (npz, netCDF)")
    p.add_argument("--labels", dest="label_variable", help="label variable/array name (npz, netCDF)")
    p.add_argument("--chunk-size", type=positive_int,
                   help="samples per Zarr chunk (default: about 8 MiB chunks)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output store")
    add_progress(p, "show a progress bar per chunk written")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..ingest import read_any, write_collection

    col = read_any(args.input, args.fmt, args.variable, args.label_variable)
    out = write_collection(col, args.output, chunk_size=args.chunk_size, overwrite=args.overwrite,
                           source=args.input, progress=progress_of(args))
    lengths = col.lengths
    labels = "" if col.labels is None else f", {len(set(col.labels))} labels"
    print(f"wrote {out}: {len(lengths)} series x {col.n_channels} channels, "
          f"lengths {lengths.min()}..{lengths.max()}{labels}")
    return 0
