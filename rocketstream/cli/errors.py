"""Errors the CLI reports as one line with exit code 2 (no traceback)."""

from __future__ import annotations


class UsageError(Exception):
    """Bad input or arguments detected by the CLI or the library; the message says the fix."""


def user_errors() -> tuple[type[BaseException], ...]:
    """Exception types that mean bad input rather than a bug."""
    import zipfile

    from ..core import InputError, ModelFileError
    from ..storage.lock import StoreLockedError

    return (UsageError, InputError, ModelFileError, StoreLockedError, FileNotFoundError, FileExistsError,
            NotADirectoryError, IsADirectoryError, PermissionError, ValueError, KeyError, TypeError,
            zipfile.BadZipFile)
