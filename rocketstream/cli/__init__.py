"""Layer 5: the ``rocketstream`` command line."""

from .main import main

__all__ = ["main"]
