"""Write a :class:`Collection` to a Zarr store readable by xarray, atomically.

Layout: ``X`` (sample, channel, time) float32 padded with zeros after each series' length;
``length`` (sample) int64; coordinate ``label`` (sample) when labels exist, and then the root attribute
``task``: ``"regression"`` for real-valued targets (a float dtype with a value that is not a whole
number), else ``"classification"``. Chunks hold about ``INGEST_CHUNK_BYTES`` (8 MiB) of samples; the
metadata is consolidated, as ``xarray.open_zarr`` expects. The store is written
to a temporary sibling directory and renamed into place only when complete, so an interrupted
or failed ingest never leaves a store that looks finished; the temporaries of a killed ingest are
removed by the next ingest to the same output (:mod:`rocketstream.storage.tempfiles`).
"""

from __future__ import annotations

import contextlib
import operator
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import __version__
from ..config import INGEST_CHUNK_BYTES
from ..storage.consolidated import quiet_consolidation
from .readers import Collection, IngestError

if TYPE_CHECKING:
    import xarray as xr

INGEST_ATTR = "rocketstream_ingest"


def padded_array(col: Collection, min_length: int | None = None) -> np.ndarray:
    """Stack the series into (n, C, max length) float32, zero-padded after each series.

    Parameters
    ----------
    col : Collection
        The series.
    min_length : int, optional
        Pad to at least this length.

    Returns
    -------
    numpy.ndarray
        float32 (n, C, max(lengths, min_length)).

    Raises
    ------
    IngestError
        The series have different channel counts.
    """
    channels = {s.shape[0] for s in col.series}
    if len(channels) != 1:
        raise IngestError(f"series have different channel counts {sorted(channels)}")
    max_len = max(int(col.lengths.max()), min_length or 0)
    out = np.zeros((len(col.series), col.n_channels, max_len), dtype=np.float32)
    for i, s in enumerate(col.series):
        out[i, :, : s.shape[1]] = s
    return out


def default_chunk(n_channels: int, length: int, target_bytes: int = INGEST_CHUNK_BYTES) -> int:
    """Samples per chunk so one chunk is about ``target_bytes`` (at least 1).

    Parameters
    ----------
    n_channels, length : int
        Shape of one series.
    target_bytes : int, default INGEST_CHUNK_BYTES
        Bytes per chunk (8 MiB).

    Returns
    -------
    int
    """
    return max(1, target_bytes // (4 * n_channels * length))


def write_collection(col: Collection, output: str | os.PathLike, *, chunk_size: int | None = None,
                     overwrite: bool = False, source: str | None = None, progress: bool = False) -> Path:
    """Write ``col`` to the Zarr store ``output`` (a local directory); returns its path.

    ``output`` must not overlap ``source``, and ``overwrite`` replaces only a store written by ingest.
    Temporary siblings left by killed ingests to ``output`` are removed first; every chunk is written,
    even one that is all zeros (the fill value), so an absent chunk always means a damaged store.

    Parameters
    ----------
    col : Collection
        The series, labels and metadata.
    output : str or os.PathLike
        The store to write, in an existing directory.
    chunk_size : int, optional
        Samples per chunk (default: about 8 MiB, see :func:`default_chunk`).
    overwrite : bool, default False
        Replace a store an earlier ingest wrote.
    source : str, optional
        The file ``col`` came from (recorded; ``output`` may not overlap it).
    progress : bool, default False
        Write one chunk at a time with a progress bar on stderr.

    Returns
    -------
    pathlib.Path
        The absolute path of the store.

    Raises
    ------
    IngestError
        NaN/Inf values, mixed channel counts, or a ``chunk_size`` that is not a whole number >= 1.
    FileExistsError
        ``output`` exists and ``overwrite`` is false.
    UnsafeOutputError
        ``output`` overlaps ``source``, or holds something ingest did not write.
    FileNotFoundError
        The directory of ``output`` does not exist.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from rocketstream.ingest import read_numpy, write_collection
    >>> np.savez("train.npz", X=np.zeros((100, 2, 50)), y=np.arange(100) % 3)
    >>> path = write_collection(read_numpy("train.npz"), "train.zarr", chunk_size=32, overwrite=True)
    >>> xr.open_zarr(path)["X"].chunks[0]
    (32, 32, 32, 4)
    """
    from ..storage.locations import check_outputs, resolve
    from ..storage.outputs import existing_output
    from ..storage.tempfiles import remove_stale_siblings, temp_sibling

    chunk_size = _check_chunk_size(chunk_size)
    loc = resolve(output)
    if source is not None:
        check_outputs([("output", loc)], [("input", resolve(source))])
    output = loc.path
    if existing_output(loc, "dataset") and not overwrite:  # replaces only a store ingest wrote
        raise FileExistsError(f"output {loc} already exists; pass --overwrite to replace it")
    remove_stale_siblings(output)
    if any(not np.isfinite(s).all() for s in col.series):
        bad = next(i for i, s in enumerate(col.series) if not np.isfinite(s).all())
        raise IngestError(f"series {bad} has missing (NaN/'?') or infinite values; fill them before ingest")
    x = padded_array(col)
    n, c, length = x.shape
    chunk = chunk_size or default_chunk(c, length)
    labels = None if col.labels is None else np.asarray(col.labels)
    attrs = {} if labels is None else {"task": task_of(labels)}
    meta = {k: v for k, v in col.meta.items() if isinstance(v, (str, int, float, bool, list)) or v is None}
    attrs[INGEST_ATTR] = {
        **meta, "source": str(source) if source else None, "n_series": n, "n_channels": c,
        "max_length": length, "equal_length": col.equal_length, "rocketstream_version": __version__,
        "padding": "zeros after each series' length (see the length variable)", "complete": True,
    }
    tmp = temp_sibling(output)
    try:
        if labels is None or labels.dtype.kind in DIRECT_LABEL_KINDS:
            _write_direct(tmp, x, np.asarray(col.lengths), labels, attrs, chunk, progress)
        else:  # labels of another kind (bytes, objects, dates): xarray's own encoding
            _write_xarray(tmp, x, np.asarray(col.lengths), labels, attrs, chunk, progress)
        _replace(tmp, output)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return output


#: label dtypes written without xarray (strings, integers, floats, booleans)
DIRECT_LABEL_KINDS = "Uiufb"
#: xarray's ``_FillValue`` attribute of a float variable in Zarr v3: float64 NaN, base64
_NAN_FILL = "AAAAAAAA+H8="


def _write_direct(tmp: Path, x: np.ndarray, lengths: np.ndarray, labels: np.ndarray | None, attrs: dict,
                  chunk: int, progress: bool) -> None:
    """Write the store with Zarr alone, node for node what ``xarray.Dataset.to_zarr`` writes for it
    (dimension names, fill values and CF attributes, consolidated metadata), without importing xarray
    or Dask: ``X`` and ``length`` one chunk of samples at a time (every chunk, even all zeros), then
    the ``sample`` and ``label`` coordinates."""
    import zarr

    n, c, length = x.shape
    group = zarr.open_group(str(tmp), mode="w", zarr_format=3, attributes=attrs)
    linked = {"coordinates": "label"} if labels is not None else {}
    every_chunk = {"write_empty_chunks": True}

    def array(name: str, values: np.ndarray, chunks: tuple[int, ...] | str, dims: tuple[str, ...],
              extra: dict) -> zarr.Array:
        kind = values.dtype.kind
        fill = np.nan if kind == "f" else None
        attributes = {**extra, **({"_FillValue": _NAN_FILL} if kind == "f" else {})}
        return group.create_array(name, shape=values.shape, dtype=str if kind == "U" else values.dtype,
                                  chunks=chunks, dimension_names=dims, attributes=attributes,
                                  fill_value=fill, config=every_chunk)

    lengths = lengths.astype(np.int64, copy=False)
    xs = array("X", x, (chunk, c, length), ("sample", "channel", "time"), linked)
    ls = array("length", lengths, (chunk,), ("sample",), linked)
    with _bar(-(-n // chunk), progress) as bar:
        for a in range(0, n, chunk):
            xs[a : a + chunk] = x[a : a + chunk]
            ls[a : a + chunk] = lengths[a : a + chunk]
            if bar is not None:
                bar.update(1)
    for name, values in (("sample", np.arange(n)), ("label", labels)):
        if values is not None:  # the coordinates, whole
            array(name, values, "auto", ("sample",), {})[:] = values
    with quiet_consolidation():
        zarr.consolidate_metadata(str(tmp))


def _bar(total: int, progress: bool) -> Any:
    """A progress bar over ``total`` chunks, or a context giving None."""
    if not progress:
        return contextlib.nullcontext()
    from ..graph.schedule import progress_bar

    return progress_bar(total, desc="ingest")


def _write_xarray(tmp: Path, x: np.ndarray, lengths: np.ndarray, labels: np.ndarray, attrs: dict, chunk: int,
                  progress: bool) -> None:
    """Write the store with ``xarray.Dataset.to_zarr`` (labels of a kind :func:`_write_direct` does not
    take)."""
    import xarray as xr

    n, c, length = x.shape
    coords = {"sample": np.arange(n), "label": ("sample", labels.astype(object) if labels.dtype.kind == "S"
                                                 else labels)}
    ds = xr.Dataset({"X": (("sample", "channel", "time"), x), "length": ("sample", lengths)}, coords=coords,
                    attrs=attrs)
    encoding = {"X": {"chunks": (chunk, c, length)}, "length": {"chunks": (chunk,)}}
    if progress:
        _write_with_progress(ds, tmp, encoding, chunk)
    else:
        with quiet_consolidation():
            ds.to_zarr(tmp, mode="w", encoding=encoding, consolidated=True, write_empty_chunks=True)


def _write_with_progress(ds: xr.Dataset, tmp: Path, encoding: dict, chunk: int) -> None:
    """Write ``ds`` to ``tmp`` one chunk of samples at a time, with a progress bar on stderr.

    Only the data variables are chunked: the coordinates stay in memory, so the template write stores
    them (a chunked ``label`` would be left unwritten, reading back as the fill value). The template
    write consolidates the metadata; the region writes change no metadata, so it stays true."""
    from ..graph.schedule import progress_bar

    template = ds.chunk({"sample": chunk}).assign_coords({k: ds[k].variable for k in ds.coords})
    with quiet_consolidation():
        template.to_zarr(tmp, mode="w", encoding=encoding, compute=False, consolidated=True,
                         write_empty_chunks=True)
    n = ds.sizes["sample"]
    with progress_bar(-(-n // chunk), desc="ingest") as bar:
        for s in range(0, n, chunk):
            part = ds.isel(sample=slice(s, s + chunk)).drop_vars(list(ds.coords))
            part.to_zarr(tmp, region={"sample": slice(s, s + part.sizes["sample"])}, write_empty_chunks=True)
            bar.update(1)


def task_of(labels: np.ndarray) -> str:
    """``"regression"`` when ``labels`` are real-valued (a float dtype with at least one value that is not
    a whole number), else ``"classification"`` (strings, integers, booleans, floats such as 1.0, 2.0).

    Parameters
    ----------
    labels : numpy.ndarray
        The targets, one per series.

    Returns
    -------
    str

    Examples
    --------
    >>> task_of(np.array([0.5, 1.0])), task_of(np.array([1.0, 2.0])), task_of(np.array(["a", "b"]))
    ('regression', 'classification', 'classification')
    """
    values = np.asarray(labels)
    if values.dtype.kind != "f":
        return "classification"
    finite = values[np.isfinite(values)]
    return "regression" if bool((finite != np.round(finite)).any()) else "classification"


def _check_chunk_size(chunk_size: int | None) -> int | None:
    """``chunk_size`` as an int >= 1, or None for the default; anything else is an :class:`IngestError`."""
    if chunk_size is None:
        return None
    try:
        value = operator.index(chunk_size)
    except TypeError:
        value = 0
    if isinstance(chunk_size, bool) or value < 1:
        raise IngestError(f"chunk size must be a whole number of samples >= 1, got {chunk_size!r}; pass a "
                          "positive --chunk-size, or none for chunks of about 8 MiB")
    return value


def _replace(tmp: Path, output: Path) -> None:
    """Move ``tmp`` to ``output``; an existing output is removed only after the new one is complete."""
    from ..storage.tempfiles import temp_sibling

    if output.exists():
        old = temp_sibling(output, "old")
        os.replace(output, old)
        os.replace(tmp, output)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, output)
