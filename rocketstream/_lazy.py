"""Lazy package exports (PEP 562): a package lists the names it exports and the submodule of each;
the submodule is imported when a name is first used, so importing the package costs nothing.

This keeps each command's import chain to what it uses: ``from rocketstream.storage.locations import
redact`` no longer pulls Zarr, nor ``rocketstream.api.models`` torch. ``from package import name``
and ``package.name`` work as before.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any


def attach(package: str, exports: dict[str, list[str]]) -> tuple[Callable[[str], Any],
                                                                    Callable[[], list[str]], list[str]]:
    """``__getattr__``, ``__dir__`` and ``__all__`` for ``package`` exporting ``exports``.

    Parameters
    ----------
    package : str
        The package's ``__name__``.
    exports : dict of str to list of str
        Submodule name (relative) -> the names the package exports from it.

    Returns
    -------
    __getattr__, __dir__, __all__
        Assign them in the package's ``__init__``.
    """
    where = {name: module for module, names in exports.items() for name in names}

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        setattr(sys.modules[package], name, value)  # later lookups skip __getattr__
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(where))

    return __getattr__, __dir__, sorted(where)
