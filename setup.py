"""Build the optional native CPU kernel; all metadata lives in pyproject.toml.

``rocketstream/core/_native/minirocket.c`` is plain C (no Python, NumPy or torch headers). It is
built as a shared library that :mod:`rocketstream.core.native` loads with ctypes. If it cannot be
built (no C compiler), the install still succeeds and the torch path is used on the CPU.
"""

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

# Exactness: never -ffast-math (it reorders float adds), and no FMA contraction.
_GCC_FLAGS = ["-O3", "-fno-fast-math", "-ffp-contract=off", "-std=c99", "-fvisibility=hidden"]
_MSVC_FLAGS = ["/O2", "/fp:precise"]


class BuildNative(build_ext):
    def build_extensions(self):
        flags = _MSVC_FLAGS if self.compiler.compiler_type == "msvc" else _GCC_FLAGS
        for ext in self.extensions:
            ext.extra_compile_args = list(flags)
        super().build_extensions()

    def get_export_symbols(self, ext):
        return []  # a ctypes library, not a Python module: nothing to export by name


setup(
    ext_modules=[
        Extension(
            "rocketstream.core._native._minirocket",
            sources=["rocketstream/core/_native/minirocket.c"],
            optional=True,
        )
    ],
    cmdclass={"build_ext": BuildNative},
)
