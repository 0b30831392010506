"""Errors the CLI reports as one line with exit code 2 (no traceback)."""

from __future__ import annotations


class UsageError(Exception):
    """Bad input or arguments detected by the CLI or the library; the message says the fix."""


def user_errors() -> tuple[type[BaseException], ...]:
    """Exception types that mean bad input rather than a bug."""
    from ..core import InputError, ModelFileError

    return (UsageError, InputError, ModelFileError, FileNotFoundError, FileExistsError,
            NotADirectoryError, IsADirectoryError, PermissionError, ValueError, KeyError, TypeError)
