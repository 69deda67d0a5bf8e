"""``kernel_jit``: one signature per function, from its parameter names, compiled on first
use -- importing the allocator core compiles (or loads) nothing."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
from numba import types

from numasim.mm import alloc_core as core


def test_import_loads_no_function():
    """A warm start pays only for the functions it calls (numasim/jit.py): the eager
    signatures loaded all of the core's 45 functions at import."""
    code = ("import numasim.mm.alloc_core as c; "
            "print(len(c.gfp_zone.signatures), len(c.handle_mm_fault_range.signatures))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["0", "0"]


def test_every_call_uses_the_one_signature():
    """Python ints, numpy int32 and int64 all run the one int64 compilation; the dispatcher
    never specialises on an argument's type (constants multiplied compile time)."""
    a = core.gfp_zone(3)
    assert core.gfp_zone(np.int32(3)) == a
    assert core.gfp_zone(np.int64(3)) == a
    assert core.gfp_zone.signatures == [(types.int64,)]
    assert len(core.gfp_zone.overloads) == 1
