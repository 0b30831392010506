"""C source of the native CPU kernel; the built library is loaded by :mod:`rocketstream.core.native`."""
