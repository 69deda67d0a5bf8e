"""A host-cache prefetch hint for jitted loops (LLVM's ``llvm.prefetch``).

The fast engine looks pages up in arrays far larger than the host's caches when accesses
are random (GUPS over 1 GiB: a page-table slot and a page row per access, each a host cache
miss).  The accesses are known a batch ahead, so their lookups can be started early; a
prefetch changes no value, only when the memory arrives.  An address outside the array is
harmless (x86 and ARM drop prefetches that would fault).
"""

from __future__ import annotations

from llvmlite import binding, ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

# LLVM >= 15 has opaque pointers (the intrinsic is mangled `.p0`); LLVM 14 (llvmlite 0.42, the
# oldest numba this project allows) mangles the i8* overload as `.p0i8`
_INTRINSIC = ("llvm.prefetch.p0" if binding.llvm_version_info >= (15,)
              else "llvm.prefetch.p0i8")


@intrinsic
def prefetch(typingctx, arr, idx):
    """Hint that ``arr[idx]`` (or the row ``arr[idx, 0]`` of a 2-D array) is read soon."""
    if not isinstance(arr, types.Array) or not isinstance(idx, types.Integer):
        return None
    sig = types.void(arr, idx)

    def codegen(context, builder, signature, args):
        aryty = signature.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        zero = ir.Constant(ir.IntType(64), 0)
        i = context.cast(builder, args[1], signature.args[1], types.intp)
        ptr = cgutils.get_item_pointer2(context, builder, data=ary.data,
                                        shape=cgutils.unpack_tuple(builder, ary.shape),
                                        strides=cgutils.unpack_tuple(builder, ary.strides),
                                        layout=aryty.layout, inds=[i] + [zero] * (aryty.ndim - 1),
                                        wraparound=False, boundscheck=False)
        i8p = ir.IntType(8).as_pointer()
        fnty = ir.FunctionType(ir.VoidType(), [i8p, ir.IntType(32), ir.IntType(32),
                                               ir.IntType(32)])
        fn = cgutils.get_or_insert_function(builder.module, fnty, _INTRINSIC)
        i32 = ir.IntType(32)
        # read, high locality, data cache
        builder.call(fn, [builder.bitcast(ptr, i8p), ir.Constant(i32, 0), ir.Constant(i32, 3),
                          ir.Constant(i32, 1)])
        return context.get_dummy_value()

    return sig, codegen
