"""The CUDA kernels compile for Hopper (sm_90a) with Triton's own ptxas, with no GPU present.

This catches what the interpreter cannot: code Triton cannot lower, and register spills at the
engine's default tile sizes (ptxas's resource report).
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess

import pytest

from rocketstream.core import triton_engine as te


def _aot_api_version() -> tuple[int, ...] | None:
    if importlib.util.find_spec("triton") is None:
        return None
    import triton

    return te._version_tuple(triton.__version__)


# triton.compile's ahead-of-time signature (ASTSource, GPUTarget) changes between minor versions;
# this check is written against 3.6, the version scripts/setup.sh installs
pytestmark = pytest.mark.skipif(_aot_api_version() != (3, 6), reason="needs triton 3.6 (scripts/setup.sh)")

_PTR = {"x_ptr": "*fp32", "alpha_ptr": "*fp32", "g_ptr": "*fp32", "bias_ptr": "*fp32", "counts_ptr": "*i32",
        "taps_ptr": "*i32", "chans_ptr": "*i32", "nch_ptr": "*i32", "lo_ptr": "*i32", "hi_ptr": "*i32"}


def _compile_sm90(fn, constexprs: dict, num_warps: int):
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    names = fn.arg_names
    sig = {n: "constexpr" if n in constexprs else _PTR.get(n, "i32") for n in names}
    src = ASTSource(fn=fn, signature=sig, constexprs={(names.index(k),): v for k, v in constexprs.items()})
    return triton.compile(src, target=GPUTarget("cuda", 90, 32), options={"num_warps": num_warps})


def _ptxas_report(ptx: str, tmp_path) -> tuple[int, int]:
    """(registers, spill-store bytes) from ptxas -v for sm_90a."""
    import triton

    ptxas = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", "ptxas")
    src = tmp_path / "k.ptx"
    src.write_text(ptx)
    out = subprocess.run([ptxas, "-arch=sm_90a", "-v", str(src), "-o", str(tmp_path / "k.cubin")],
                         capture_output=True, text=True, check=True).stderr
    regs = int(re.search(r"Used (\d+) registers", out).group(1))
    spills = int(re.search(r"(\d+) bytes spill stores", out).group(1))
    return regs, spills


@pytest.mark.parametrize("nfd_pad,inline", [(1, False), (4, False), (16, False), (128, False), (4, True)])
def test_counts_kernel_compiles_for_hopper_without_spills(nfd_pad, inline, tmp_path):
    from rocketstream.core import _triton_kernels as tk

    block_t = te.default_block_t(nfd_pad, 10**6, inline)
    consts = {"MAXM": 3, "NFD_PAD": nfd_pad, "BLOCK_T": block_t, "INLINE": inline, "K_GROUP": 1}
    k = _compile_sm90(tk.counts_kernel, consts, 4)
    assert "atom.global" in k.asm["ptx"] or "red.global" in k.asm["ptx"]
    _assert_no_multiplies(k.asm["ptx"])
    regs, spills = _ptxas_report(k.asm["ptx"], tmp_path)
    assert spills == 0 and regs <= 128, (regs, spills)


def test_alpha_kernel_compiles_for_hopper(tmp_path):
    from rocketstream.core import _triton_kernels as tk

    k = _compile_sm90(tk.alpha_kernel, {"BLOCK": te.ALPHA_BLOCK}, 4)
    regs, spills = _ptxas_report(k.asm["ptx"], tmp_path)
    assert spills == 0 and regs <= 64, regs
    _assert_no_multiplies(k.asm["ptx"])


_FLOAT_MUL = re.compile(r"\b(fma|mul|mad)(\.\w+)*\.f(32|64)\b")


def _assert_no_multiplies(ptx: str) -> None:
    """Only adds, negations and compares touch the data: with no float multiply in the PTX, ptxas
    has nothing to contract into an FMA, so every sum rounds as in the reference order."""
    hit = _FLOAT_MUL.search(ptx)
    assert hit is None, hit.group(0)


def test_float_multiply_pattern():
    for op in ("fma.rn.f32 %f1", "mul.f32 %f2", "mul.rn.ftz.f32 %f3", "mad.f64 %fd1"):
        assert _FLOAT_MUL.search(op), op
    for op in ("add.f32 %f1", "mul.lo.s32 %r1", "mul.wide.s32 %rd1", "setp.gt.f32 %p1"):
        assert not _FLOAT_MUL.search(op), op
