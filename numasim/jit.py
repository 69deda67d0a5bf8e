"""One decorator for numasim's jitted code: typed signatures from parameter names.

numba specialises a jitted function for every combination of argument types it is called
with, literal constants included (``f(zones, 0)`` and ``f(zones, 1)`` compile twice).  The
allocator core calls its helpers with many constants, which multiplied its first-call compile
time several-fold.  :func:`kernel_jit` gives every function one signature, built from its
parameter names (``zones`` is always a C-contiguous 2-D int64 array, ``pol_nodes`` a 2-D
uint8 array, ``kern`` the tuple of the kernel's state arrays, any name not listed is an int64
scalar) and caches it on disk (``cache=True``).  Boundaries are typed arrays (or tuples of
them), never Python objects.

The signature is compiled (or loaded from the cache) on the function's first use, not when
the module is imported.  A jitted caller loaded from the cache carries its callees' code, so
a warm start loads only the functions Python calls: ``numasim script 01_default_local`` now
loads 2 of the allocator core's 45 functions.  Measured without scipy, six alternations with
a cache folder each: 1.15-1.35 s warm against 1.19-1.53 s when all 45 loaded at import; the
first (cold) run 13.8 s against 18.2 s.
"""

from __future__ import annotations

import inspect

from numba import njit, types

from numasim.jitcache import listen_for_compiles
from numasim.mm.state import CORE_ARRAYS

listen_for_compiles()  # "compiling numasim's kernels..." when numba compiles one

I64_2D = types.Array(types.int64, 2, "C")
I64_1D = types.Array(types.int64, 1, "C")
U8_2D = types.Array(types.uint8, 2, "C")
F64_1D = types.Array(types.float64, 1, "C")
F64_2D = types.Array(types.float64, 2, "C")

ARG_TYPES: dict[str, types.Type] = {
    # allocator state (numasim.mm.state.KernelState)
    "zones": I64_2D, "zonelist": I64_2D, "nodeinfo": I64_2D, "cpu_node": I64_1D,
    "sysvars": I64_1D, "numastat": I64_2D, "vmstat": I64_1D, "policies": I64_2D,
    "pol_nodes": U8_2D, "tasks": I64_2D, "task_mems": U8_2D, "regions": I64_2D,
    "vmas": I64_2D, "objs": I64_2D, "sp": I64_2D, "pages": I64_2D, "pt_page": I64_1D,
    "pt_vma": I64_1D, "obj_pages": I64_1D, "pgtables": I64_2D, "res": I64_1D,
    "run": I64_1D, "out_pages": I64_1D,
}
# ``kern``: the kernel state as one bundle (KernelState.core_args(), CORE_ARRAYS order)
ARG_TYPES["kern"] = types.Tuple([ARG_TYPES[n] for n in CORE_ARRAYS])


def kernel_jit(fn=None, *, extra: dict[str, types.Type] | None = None, nrt: bool = False,
               inline: str = "never"):
    """``@kernel_jit``: njit with one signature derived from the parameter names, compiled
    on first use.

    Without numba's reference counting (``nrt=False``, the default): the kernel's functions
    only index the arrays they are given and return integers, and with it every call took
    an atomic increment and decrement per array argument (``kern`` alone is twenty) -- some
    230 atomic operations per page fault, a third of the fast engine's time on a fault-heavy
    run (perf and gdb, 512 MiB ``--init none`` copy).  A function that allocates an array
    says ``nrt=True``.  ``inline="always"`` inlines the function into its jitted callers
    (numba IR)."""

    def wrap(f):
        names = list(inspect.signature(f).parameters)
        table = dict(ARG_TYPES, **(extra or {}))
        sig = tuple(table.get(n, types.int64) for n in names)
        disp = njit(cache=True, nogil=True, _nrt=nrt, inline=inline)(f)
        compile_sig = disp.compile
        # lazy, but one signature: any call -- from Python, or typing a jitted caller --
        # compiles (or loads from the cache) ``sig`` and nothing else
        disp.compile = lambda _argtypes: compile_sig(sig)
        return disp

    return wrap(fn) if fn is not None else wrap
