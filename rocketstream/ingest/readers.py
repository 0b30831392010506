"""Readers for time series files: UCR/UEA ``.ts``, UCR ``.tsv``, NumPy ``.npy``/``.npz`` and any
xarray-readable file. Each returns a :class:`Collection` of possibly unequal-length series."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import IngestError


@dataclass
class Collection:
    """Series ``(channels, length_i)`` as float32, with optional labels and header metadata.

    Parameters
    ----------
    series : list of numpy.ndarray
        float32 (channels, length_i) series, all with the same channel count.
    labels : numpy.ndarray, optional
        One label (or regression target) per series.
    meta : dict
        What the file's header said (``source_format``, .ts tags...).
    """

    series: list[np.ndarray]
    labels: np.ndarray | None = None
    meta: dict = field(default_factory=dict)

    @property
    def n_channels(self) -> int:
        """Channels per series."""
        return int(self.series[0].shape[0])

    @property
    def lengths(self) -> np.ndarray:
        """int64 (n,) length of each series."""
        return np.array([s.shape[1] for s in self.series], dtype=np.int64)

    @property
    def equal_length(self) -> bool:
        """Whether every series has the same length."""
        lengths = self.lengths
        return bool((lengths == lengths[0]).all())


_TS_BOOL_TAGS = {"timestamps", "missing", "univariate", "equallength"}


def _parse_bool(value: str, tag: str, where: str) -> bool:
    v = value.strip().lower()
    if v not in ("true", "false"):
        raise IngestError(f"{where}: @{tag} must be true or false, got {value!r}")
    return v == "true"


def _parse_values(text: str, where: str) -> np.ndarray:
    tokens = text.split(",")
    try:
        return np.array([np.nan if t.strip() == "?" else float(t) for t in tokens], dtype=np.float64)
    except ValueError:
        bad = next(t for t in tokens if t.strip() != "?" and not _is_float(t))
        raise IngestError(f"{where}: non-numeric value {bad.strip()!r}") from None


def _is_float(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def read_ts(path: str | os.PathLike) -> Collection:
    r"""Parse a UCR/UEA ``.ts`` file (header tags, then ``@data`` lines of ``dim:dim:...:label``).

    Missing values (``?``) are read as NaN; timestamps are not supported.

    Parameters
    ----------
    path : str or os.PathLike
        The file.

    Returns
    -------
    Collection
        Class labels as strings, regression targets (``@targetLabel true``) as float64.

    Raises
    ------
    IngestError
        A malformed header or data line, an undeclared class label, or no series; the message names
        file and line.
    FileNotFoundError
        ``path`` does not exist.

    Examples
    --------
    >>> from pathlib import Path
    >>> from rocketstream.ingest import read_ts
    >>> text = "@problemName demo\n@classLabel true a b\n@data\n"
    >>> _ = Path("demo.ts").write_text(text + "1,2,3,4,5,6,7,8,9,10:a\n5,4,3,2,1,0,1,2,3,4,5,6:b\n")
    >>> col = read_ts("demo.ts")
    >>> col.lengths, col.labels
    (array([10, 12]), array(['a', 'b'], dtype='<U1'))
    """
    path = Path(path)
    meta: dict = {"source_format": "ts", "class_labels": None}
    series: list[np.ndarray] = []
    labels: list[str] = []
    in_data = False
    has_class = has_target = False
    n_dims: int | None = None
    with open(path, encoding="utf-8", errors="strict") as fh:
        for lineno, raw in enumerate(_lines(fh, path), start=1):
            line = raw.strip()
            where = f"{path.name} line {lineno}"
            if not line or line.startswith("#"):
                continue
            if not in_data:
                if not line.startswith("@"):
                    raise IngestError(f"{where}: expected a header tag starting with '@' before @data")
                tag, _, value = line[1:].partition(" ")
                tag = tag.lower()
                if tag == "data":
                    in_data = True
                    if "problemname" not in meta:
                        raise IngestError(f"{where}: missing @problemName header; is this a .ts file?")
                elif tag == "problemname":
                    meta["problemname"] = value.strip()
                elif tag in _TS_BOOL_TAGS:
                    meta[tag] = _parse_bool(value, tag, where)
                    if tag == "timestamps" and meta[tag]:
                        raise IngestError(f"{where}: .ts files with timestamps are not supported")
                elif tag == "dimensions":
                    meta["dimensions"] = int(value)
                elif tag == "serieslength":
                    meta["serieslength"] = int(value)
                elif tag == "classlabel":
                    parts = value.split()
                    has_class = bool(parts) and _parse_bool(parts[0], tag, where)
                    meta["class_labels"] = parts[1:] if has_class else None
                    if has_class and not parts[1:]:
                        raise IngestError(f"{where}: @classLabel true but no class values listed")
                elif tag == "targetlabel":
                    has_target = _parse_bool(value, tag, where)
                else:
                    raise IngestError(f"{where}: unknown header tag @{tag}")
                continue
            fields = line.split(":")
            if has_class or has_target:
                if len(fields) < 2:
                    raise IngestError(f"{where}: expected values followed by ':label'")
                label = fields.pop().strip()
                if has_class and label not in meta["class_labels"]:
                    raise IngestError(f"{where}: class label {label!r} is not declared in @classLabel")
                labels.append(label)
            if n_dims is None:
                n_dims = len(fields)
                declared = meta.get("dimensions", 1 if meta.get("univariate", True) else None)
                if declared is not None and n_dims != declared:
                    raise IngestError(f"{where}: {n_dims} channels but the header declares {declared}")
            elif len(fields) != n_dims:
                raise IngestError(f"{where}: {len(fields)} channels, but earlier series have {n_dims} "
                                  "(mixed channel counts or a truncated line)")
            chans = [_parse_values(f, where) for f in fields]
            lengths = {len(c) for c in chans}
            if len(lengths) != 1:
                raise IngestError(f"{where}: channels of one series have different lengths {sorted(lengths)}")
            series.append(np.stack(chans).astype(np.float32))
    if not in_data:
        raise IngestError(f"{path.name}: no @data section (wrong header or truncated file)")
    if not series:
        raise IngestError(f"{path.name}: no series after @data (truncated file?)")
    out = Collection(series, _labels_array(labels, has_target) if labels else None, meta)
    declared_len = meta.get("serieslength")
    if meta.get("equallength") and declared_len and not (out.lengths == declared_len).all():
        raise IngestError(f"{path.name}: @seriesLength {declared_len} but series of other lengths found "
                          "(truncated line?)")
    return out


def _lines(fh, path: Path) -> Iterator[str]:
    try:
        yield from fh
    except UnicodeDecodeError as exc:
        raise IngestError(f"{path.name}: not a text file ({exc})") from exc


def _labels_array(labels: list[str], numeric: bool) -> np.ndarray:
    if numeric:
        try:
            return np.array([float(v) for v in labels], dtype=np.float64)
        except ValueError as exc:
            raise IngestError(f"non-numeric regression target: {exc}") from exc
    return np.array(labels, dtype=str)


def read_tsv(path: str | os.PathLike) -> Collection:
    r"""Parse a UCR 2018 ``.tsv`` file: one univariate series per line, label first; trailing NaNs pad.

    Parameters
    ----------
    path : str or os.PathLike
        The file (tab-, comma- or space-separated).

    Returns
    -------
    Collection
        String labels; each series without its trailing NaN padding.

    Raises
    ------
    IngestError
        A line without values, a non-numeric value, or an empty file.
    FileNotFoundError
        ``path`` does not exist.

    Examples
    --------
    >>> from pathlib import Path
    >>> from rocketstream.ingest import read_tsv
    >>> _ = Path("demo.tsv").write_text("1\t0.1\t0.2\t0.3\t0.4\n2\t0.5\t0.6\tNaN\tNaN\n")
    >>> col = read_tsv("demo.tsv")
    >>> col.lengths, col.labels
    (array([4, 2]), array(['1', '2'], dtype='<U1'))
    """
    path = Path(path)
    series, labels = [], []
    with open(path, encoding="utf-8") as fh:
        for lineno, raw in enumerate(_lines(fh, path), start=1):
            line = raw.strip()
            if not line:
                continue
            parts = line.replace(",", "\t").split("\t") if "\t" in line or "," in line else line.split()
            where = f"{path.name} line {lineno}"
            if len(parts) < 2:
                raise IngestError(f"{where}: expected a label followed by values")
            values = _parse_values(",".join(p if p.lower() != "nan" else "?" for p in parts[1:]), where)
            last = len(values)
            while last > 0 and np.isnan(values[last - 1]):
                last -= 1  # UCR pads unequal-length series with trailing NaN
            labels.append(parts[0].strip())
            series.append(values[None, :last].astype(np.float32))
    if not series:
        raise IngestError(f"{path.name}: empty file")
    return Collection(series, np.array(labels, dtype=str), {"source_format": "tsv"})


def read_numpy(path: str | os.PathLike, variable: str | None = None, label_variable: str | None = None
               ) -> Collection:
    """Read ``.npy`` (an (n, C, L) or (n, L) array) or ``.npz`` (data plus optional labels); no pickle.

    Parameters
    ----------
    path : str or os.PathLike
        The file.
    variable : str, optional
        The data array of an .npz (default: ``X``, ``x`` or ``data``).
    label_variable : str, optional
        The label array of an .npz (default: ``y``, ``labels`` or ``label`` if present).

    Returns
    -------
    Collection

    Raises
    ------
    IngestError
        Not a NumPy file (a missing one included), pickled data, a missing array, non-numeric data, a
        bad shape, or a label count that does not match.

    Examples
    --------
    >>> import numpy as np
    >>> from rocketstream.ingest import read_numpy
    >>> np.savez("train.npz", X=np.zeros((100, 2, 50)), y=np.arange(100) % 3)
    >>> col = read_numpy("train.npz")
    >>> len(col.series), col.n_channels, col.labels[:4]
    (100, 2, array([0, 1, 2, 0]))
    """
    path = Path(path)
    try:
        obj = np.load(path, allow_pickle=False)
    except ValueError as exc:
        raise IngestError(f"{path.name}: cannot read without pickle ({exc})") from exc
    except OSError as exc:
        raise IngestError(f"{path.name}: not a NumPy file ({exc})") from exc
    labels = None
    if isinstance(obj, np.lib.npyio.NpzFile):
        with obj:
            keys = list(obj.keys())
            name = variable or next((k for k in ("X", "x", "data") if k in keys), None)
            if name is None or name not in keys:
                raise IngestError(f"{path.name}: no data array {variable or 'X'!r}; arrays: {keys} "
                                  "(choose one with --variable)")
            data = obj[name]
            lab = label_variable or next((k for k in ("y", "labels", "label") if k in keys), None)
            if lab is not None:
                if lab not in keys:
                    raise IngestError(f"{path.name}: no label array {lab!r}; arrays: {keys}")
                labels = obj[lab]
    else:
        data = obj
    return _from_array(data, labels, path.name, "npy" if labels is None else "npz")


def _from_array(data: np.ndarray, labels: np.ndarray | None, name: str, fmt: str) -> Collection:
    if data.dtype.kind not in "iuf":
        raise IngestError(f"{name}: data must be numeric, got dtype {data.dtype}")
    if data.ndim == 2:
        data = data[:, None, :]
    if data.ndim != 3:
        raise IngestError(f"{name}: data must be (n, channels, time) or (n, time), got shape {data.shape}")
    if labels is not None and len(labels) != len(data):
        raise IngestError(f"{name}: {len(labels)} labels for {len(data)} series")
    data = data.astype(np.float32, copy=False)
    return Collection(list(data), None if labels is None else np.asarray(labels), {"source_format": fmt})


def read_xarray(path: str | os.PathLike, variable: str | None = None, label_variable: str | None = None
                ) -> Collection:
    """Read a netCDF (or any xarray-readable) file holding a (sample, channel, time) variable.

    Parameters
    ----------
    path : str or os.PathLike
        The file.
    variable : str, optional
        The data variable (default: the only one).
    label_variable : str, optional
        The label variable (default: ``label`` or ``y`` if present).

    Returns
    -------
    Collection

    Raises
    ------
    IngestError
        The file cannot be opened, the variable is ambiguous or missing, or the data is not numeric
        (n, channels, time) or (n, time).

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from rocketstream.ingest import read_xarray
    >>> xr.Dataset({"X": (("sample", "channel", "time"), np.zeros((10, 2, 30)))}).to_netcdf("data.nc")
    >>> read_xarray("data.nc").series[0].shape
    (2, 30)
    """
    import xarray as xr

    try:
        ds = xr.open_dataset(path)
    except Exception as exc:  # backends raise many types
        raise IngestError(f"{Path(path).name}: cannot open with xarray ({exc})") from exc
    with ds:
        names = list(ds.data_vars)
        name = variable or (names[0] if len(names) == 1 else None)
        if name is None or name not in ds:
            raise IngestError(f"{Path(path).name}: choose a variable with --variable; found {names}")
        da = ds[name]
        dims = [d for d in ("sample", "channel", "time") if d in da.dims]
        if len(da.dims) == 3 and dims == ["sample", "channel", "time"]:
            da = da.transpose("sample", "channel", "time")
        labels = None
        lab = label_variable or next((c for c in ("label", "y") if c in ds.variables), None)
        if lab is not None:
            if lab not in ds.variables:
                raise IngestError(f"{Path(path).name}: no label variable {lab!r}")
            labels = ds[lab].values
        return _from_array(np.asarray(da.values), labels, Path(path).name, "xarray")


READERS = {".ts": read_ts, ".tsv": read_tsv, ".txt": read_tsv, ".npy": read_numpy, ".npz": read_numpy,
           ".nc": read_xarray, ".nc4": read_xarray, ".cdf": read_xarray, ".h5": read_xarray}


def read_any(path: str | os.PathLike, fmt: str | None = None, variable: str | None = None,
             label_variable: str | None = None) -> Collection:
    """Dispatch on ``fmt`` or the file suffix.

    Suffixes: ``.ts`` (:func:`read_ts`), ``.tsv``/``.txt`` (:func:`read_tsv`), ``.npy``/``.npz``
    (:func:`read_numpy`), ``.nc``/``.nc4``/``.cdf``/``.h5`` (:func:`read_xarray`).

    Parameters
    ----------
    path : str or os.PathLike
        The file.
    fmt : str, optional
        The format, overriding the suffix (e.g. ``"ts"``).
    variable, label_variable : str, optional
        For .npz and xarray files.

    Returns
    -------
    Collection

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    IngestError
        An unknown format, or what the reader raises.

    Examples
    --------
    >>> import numpy as np
    >>> from rocketstream.ingest import read_any
    >>> np.save("X.npy", np.zeros((100, 50)))
    >>> col = read_any("X.npy")
    >>> len(col.series), col.n_channels, col.labels is None
    (100, 1, True)
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"input file not found: {path}")
    suffix = f".{fmt.lstrip('.')}" if fmt else path.suffix.lower()
    reader = READERS.get(suffix)
    if reader is None:
        raise IngestError(f"{path.name}: unknown format {suffix!r}; use one of "
                          f"{sorted({k.lstrip('.') for k in READERS})} (--format)")
    if reader in (read_numpy, read_xarray):
        return reader(path, variable, label_variable)
    return reader(path)
