"""Synthetic (sample, channel, time) series, in memory and written to Zarr, for the demo, the benchmarks,
the workflows and the tests.

Three families, each seeded so that the same arguments always give the same bits:

- :func:`make_series`: noisy sines, the whole array at once (the tests' small datasets);
- :func:`labelled_chunk` / :func:`make_labelled`: a labelled classification problem (AR(1) noise plus
  class-shaped bursts), generated chunk by chunk (``rocketstream demo``'s data);
- :func:`sine_chunk` / :func:`make_sines`: noisy sines seeded per chunk (the benchmarks' inputs).

Writers: :func:`write_zarr` writes an array already in memory; :func:`write_labelled_store` and
:func:`write_sine_store` write chunk by chunk and never hold the whole dataset. Only NumPy is imported
here; Zarr is imported by the functions that write.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import InputError

__all__ = [
    "CLASS_NAMES",
    "labelled_chunk",
    "make_labelled",
    "make_series",
    "make_sines",
    "sine_chunk",
    "write_labelled_store",
    "write_sine_store",
    "write_zarr",
]

#: the classes of :func:`labelled_chunk`: the shape of the bursts hidden in each series
CLASS_NAMES = ("sine", "square", "slow-sine", "sawtooth")
_BURSTS, _AMPLITUDE, _CYCLES, _WIDTH_DIV = 3, (2.0, 3.0), 4.0, 6
_DIMS = ("sample", "channel", "time")


def make_series(n: int = 240, channels: int = 2, length: int = 120, seed: int = 0) -> np.ndarray:
    """Noisy sines: one random frequency per (series, channel) plus Gaussian noise.

    Parameters
    ----------
    n, channels, length : int
        Shape of the result.
    seed : int
        Seed of ``np.random.default_rng``; the same arguments always give the same values.

    Returns
    -------
    numpy.ndarray
        float32 ``(n, channels, length)``: ``sin(2 pi f t) + 0.5 N(0, 1)`` with ``f`` uniform in [2, 10)
        and ``t`` in [0, 1].

    Examples
    --------
    >>> from rocketstream.synthetic import make_series
    >>> X = make_series(100, channels=3, length=200, seed=1)
    >>> X.shape, X.dtype
    ((100, 3, 200), dtype('float32'))
    """
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 1, length)
    freq = rng.uniform(2, 10, (n, channels, 1))
    x = np.sin(2 * np.pi * freq * t) + 0.5 * rng.standard_normal((n, channels, length))
    return x.astype(np.float32)


def labelled_chunk(n: int, channels: int, length: int, seed: int, stream: int, index: int,
                   n_classes: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """``n`` labelled series: smooth AR(1) noise on every channel plus three bursts, on random channels
    and at random positions, whose shape is the class (sine, square, slow sine, sawtooth).

    Parameters
    ----------
    n, channels, length : int
        Shape of the series.
    seed, stream, index : int
        Together seed the chunk (``np.random.default_rng([seed, stream, index])``): ``stream`` tells
        datasets of one seed apart (the demo's train and test splits), ``index`` the chunks of one dataset,
        so a dataset can be written chunk by chunk.
    n_classes : int
        Number of classes, 2 to ``len(CLASS_NAMES)``; the first ``n_classes`` of :data:`CLASS_NAMES`.

    Returns
    -------
    x : numpy.ndarray
        float32 ``(n, channels, length)``.
    y : numpy.ndarray
        The class names ``(n,)``.

    Raises
    ------
    InputError
        ``n_classes`` outside 2..4.
    """
    if not 2 <= n_classes <= len(CLASS_NAMES):
        raise InputError(f"n_classes must be in 2..{len(CLASS_NAMES)}, got {n_classes}")
    rng = np.random.default_rng([seed, stream, index])
    y = rng.integers(0, n_classes, n)
    e = rng.standard_normal((n, channels, length)).astype(np.float32)
    x = np.empty_like(e)
    phi = 0.8
    x[..., 0] = e[..., 0]
    for t in range(1, length):
        x[..., t] = phi * x[..., t - 1] + e[..., t]
    x *= np.float32(np.sqrt(1 - phi**2))
    width = min(length, max(16, length // _WIDTH_DIV))
    tt = np.arange(width) / width
    window = np.hanning(width)
    for i in range(n):
        for _ in range(_BURSTS):
            ch, pos = rng.integers(0, channels), rng.integers(0, length - width + 1)
            amp, phase = rng.uniform(*_AMPLITUDE), rng.uniform(0, 1)
            u = (_CYCLES * tt + phase) % 1.0
            shape = (np.sin(2 * np.pi * u), np.sign(np.sin(2 * np.pi * u)),
                     np.sin(2 * np.pi * (1.5 * tt + phase)), 2 * u - 1)[y[i]]
            x[i, ch, pos : pos + width] += (amp * shape * window).astype(np.float32)
    return x, np.asarray(CLASS_NAMES)[y]


def _row_chunks(n: int, chunk: int) -> list[tuple[int, int]]:
    """``(start, stop)`` of the row chunks of ``n`` rows, ``chunk`` rows each (the last may be short)."""
    if chunk < 1:
        raise InputError(f"chunk size must be at least 1, got {chunk}")
    return [(start, min(n, start + chunk)) for start in range(0, n, chunk)]


def make_labelled(n_samples: int, channels: int, length: int, *, chunk_size: int, seed: int,
                  stream: int = 0, n_classes: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """In memory, the labelled dataset that :func:`write_labelled_store` writes with the same arguments.

    Parameters
    ----------
    n_samples, channels, length : int
        Shape of the dataset.
    chunk_size : int
        Series per chunk; chunk ``i`` is ``labelled_chunk(..., seed, stream, i, n_classes)``, so the values
        depend on it.
    seed, stream, n_classes : int
        As in :func:`labelled_chunk`.

    Returns
    -------
    x : numpy.ndarray
        float32 ``(n_samples, channels, length)``.
    y : numpy.ndarray
        The class names ``(n_samples,)``.

    Raises
    ------
    InputError
        ``n_classes`` outside 2..4, or ``chunk_size < 1``.
    """
    parts = [labelled_chunk(stop - start, channels, length, seed, stream, i, n_classes)
             for i, (start, stop) in enumerate(_row_chunks(n_samples, chunk_size))]
    if not parts:
        return np.empty((0, channels, length), np.float32), np.asarray(CLASS_NAMES)[:0]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def sine_chunk(start: int, n: int, channels: int, length: int) -> np.ndarray:
    """Rows ``start .. start + n`` of the benchmarks' noisy sines, seeded by ``start``.

    Parameters
    ----------
    start : int
        First row of the chunk; seeds ``np.random.default_rng(start)``.
    n, channels, length : int
        Shape of the chunk.

    Returns
    -------
    numpy.ndarray
        float32 ``(n, channels, length)``: ``sin(2 pi f t) + N(0, 1)`` with ``f`` uniform in [1, 9).
    """
    rng = np.random.default_rng(start)
    t = np.linspace(0, 1, length, dtype=np.float32)
    x = np.sin(2 * np.pi * rng.uniform(1, 9, (n, channels, 1)) * t) + rng.standard_normal(
        (n, channels, length), dtype=np.float32)
    return x.astype(np.float32)


def make_sines(n: int, channels: int, length: int, chunk: int) -> np.ndarray:
    """In memory, what :func:`write_sine_store` writes with the same arguments.

    Parameters
    ----------
    n, channels, length : int
        Shape of the result.
    chunk : int
        Rows per chunk; each chunk is seeded by its first row, so the values depend on it.

    Returns
    -------
    numpy.ndarray
        float32 ``(n, channels, length)``.

    Raises
    ------
    InputError
        ``chunk < 1``.
    """
    parts = [sine_chunk(start, stop - start, channels, length) for start, stop in _row_chunks(n, chunk)]
    return np.concatenate(parts) if parts else np.empty((0, channels, length), np.float32)


def write_zarr(path: str | Path, x: np.ndarray, chunk_rows: int, time_chunk: int | None = None,
               group_var: str | None = None) -> str:
    """Write an in-memory array to a new Zarr array, or to a variable of a new Zarr group.

    Parameters
    ----------
    path : str or Path
        Where the store goes. A group must not exist yet; a plain array replaces nothing either
        (Zarr refuses an existing store).
    x : numpy.ndarray
        ``(sample, channel, time)`` values, written with their dtype.
    chunk_rows : int
        Samples per chunk.
    time_chunk : int, optional
        Points per chunk along time (default: the whole series).
    group_var : str, optional
        Write a group with ``x`` as this variable (dimension names sample, channel, time) and an int64
        ``label`` (sample,) of ``arange(n) % 3``; without it, a bare array.

    Returns
    -------
    str
        ``path``.
    """
    import zarr

    chunks = (chunk_rows, x.shape[1], time_chunk or x.shape[2])
    if group_var:
        g = zarr.open_group(str(path), mode="w-")
        a = g.create_array(group_var, shape=x.shape, chunks=chunks, dtype=x.dtype, dimension_names=_DIMS)
        g.create_array("label", shape=(x.shape[0],), dtype="int64", dimension_names=("sample",))[:] = (
            np.arange(x.shape[0]) % 3)
    else:
        a = zarr.create_array(str(path), shape=x.shape, chunks=chunks, dtype=x.dtype)
    a[:] = x
    return str(path)


def write_labelled_store(path: str | Path, n_samples: int, channels: int, length: int, *, chunk_size: int,
                         seed: int, stream: int = 0, n_classes: int = 4) -> Path:
    """Write a labelled dataset (:func:`labelled_chunk`) chunk by chunk to a new Zarr group.

    Parameters
    ----------
    path : str or Path
        The group to create (must not exist).
    n_samples, channels, length : int
        Shape of the dataset.
    chunk_size : int
        Series per chunk, both of the generator and of the stored arrays.
    seed, stream, n_classes : int
        As in :func:`labelled_chunk`.

    Returns
    -------
    Path
        ``path``: a group with ``X`` (sample, channel, time) float32 chunked by ``chunk_size`` samples,
        its coordinate ``label`` (sample,) of class names, and the attribute ``rocketstream_demo``
        (seed, stream, classes). Equal to :func:`make_labelled` with the same arguments.

    Raises
    ------
    InputError
        ``n_classes`` outside 2..4, or ``chunk_size < 1``.
    """
    import zarr

    path = Path(path)
    group = zarr.open_group(str(path), mode="w-", zarr_format=3)
    xa = group.create_array("X", shape=(n_samples, channels, length), chunks=(chunk_size, channels, length),
                            dtype="float32", dimension_names=_DIMS, attributes={"coordinates": "label"})
    la = group.create_array("label", shape=(n_samples,), chunks=(chunk_size,), dtype=str,
                            dimension_names=("sample",))
    for i, (start, stop) in enumerate(_row_chunks(n_samples, chunk_size)):  # one chunk in memory at a time
        x, y = labelled_chunk(stop - start, channels, length, seed, stream, i, n_classes)
        xa[start:stop] = x
        la[start:stop] = y
    group.attrs["rocketstream_demo"] = {"seed": seed, "stream": stream,
                                        "classes": list(CLASS_NAMES[:n_classes])}
    return path


def write_sine_store(path: str | Path, n: int, channels: int, length: int, chunk: int) -> str:
    """Write the benchmarks' noisy sines (:func:`sine_chunk`) chunk by chunk to a bare Zarr array.

    Parameters
    ----------
    path : str or Path
        The array to create; an existing store there is replaced.
    n, channels, length : int
        Shape of the array.
    chunk : int
        Rows per chunk, both of the generator and of the stored array.

    Returns
    -------
    str
        ``path``: a float32 ``(n, channels, length)`` array chunked ``(chunk, channels, length)``, equal to
        :func:`make_sines` with the same arguments.

    Raises
    ------
    InputError
        ``chunk < 1``.
    """
    import zarr

    z = zarr.create_array(str(path), shape=(n, channels, length), chunks=(chunk, channels, length),
                          dtype="float32", overwrite=True)
    for start, stop in _row_chunks(n, chunk):  # one chunk in memory at a time
        z[start:stop] = sine_chunk(start, stop - start, channels, length)
    return str(path)
