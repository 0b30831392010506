"""What the CLI reports as one line with exit code 2 (no traceback): rocketstream's own errors and
``OSError``s. Anything else is a bug and keeps its traceback."""

from __future__ import annotations

from ..errors import RocketstreamError, UsageError


def user_errors() -> tuple[type[BaseException], ...]:
    """Exception types that mean bad input or an unusable environment rather than a bug."""
    return (RocketstreamError, OSError)


__all__ = ["UsageError", "user_errors"]
