"""Linux's numeric constants for NUMA memory policy, as ``include/uapi/linux/mempolicy.h``
defines them, plus numasim's internal codes for allocation kinds and kernel generations."""

from __future__ import annotations

import errno as _errno

# ---- modes (enum mempolicy mode)
MPOL_DEFAULT = 0
MPOL_PREFERRED = 1
MPOL_BIND = 2
MPOL_INTERLEAVE = 3
MPOL_LOCAL = 4
MPOL_PREFERRED_MANY = 5
MPOL_WEIGHTED_INTERLEAVE = 6
MPOL_MAX = 7

MODE_NAMES = {
    MPOL_DEFAULT: "default",
    MPOL_PREFERRED: "preferred",
    MPOL_BIND: "bind",
    MPOL_INTERLEAVE: "interleave",
    MPOL_LOCAL: "local",
    MPOL_PREFERRED_MANY: "preferred_many",
    MPOL_WEIGHTED_INTERLEAVE: "weighted_interleave",
}
MODE_BY_NAME = {v: k for k, v in MODE_NAMES.items()}

# ---- mode flags (OR-ed into the mode argument)
MPOL_F_NUMA_BALANCING = 1 << 13
MPOL_F_RELATIVE_NODES = 1 << 14
MPOL_F_STATIC_NODES = 1 << 15
MPOL_MODE_FLAGS = MPOL_F_STATIC_NODES | MPOL_F_RELATIVE_NODES | MPOL_F_NUMA_BALANCING

# ---- get_mempolicy flags
MPOL_F_NODE = 1 << 0
MPOL_F_ADDR = 1 << 1
MPOL_F_MEMS_ALLOWED = 1 << 2

# ---- mbind flags
MPOL_MF_STRICT = 1 << 0
MPOL_MF_MOVE = 1 << 1
MPOL_MF_MOVE_ALL = 1 << 2
MPOL_MF_LAZY = 1 << 3
MPOL_MF_VALID = MPOL_MF_STRICT | MPOL_MF_MOVE | MPOL_MF_MOVE_ALL

# ---- internal policy flags (never accepted from user space)
MPOL_F_SHARED = 1 << 0
MPOL_F_MOF = 1 << 3
MPOL_F_MORON = 1 << 4

NUMA_NO_NODE = -1
MAX_NUMNODES = 1024  # CONFIG_NODES_SHIFT=10, Debian x86-64
NO_INTERLEAVE_INDEX = -1

# ---- allocation kinds (what gfp_zone() and the policy code see); numasim's own codes
GFP_USER_MOVABLE = 0  # GFP_HIGHUSER_MOVABLE: user pages, highest zone MOVABLE
GFP_KERNEL = 1  # page tables, slab, page cache metadata: highest zone NORMAL
GFP_DMA32 = 2
GFP_DMA = 3
GFP_ATOMIC = 4  # interrupt context: ignores policy, no direct reclaim
GFP_THISNODE = 5  # migration targets: only the given node, no policy
# THP faults (vma_thp_gfp_mask, per transparent_hugepage/defrag and MADV_HUGEPAGE): user pages
# like GFP_USER_MOVABLE, but what may reclaim differs
GFP_TRANSHUGE_LIGHT = 6  # no __GFP_RECLAIM: neither kswapd wake nor direct reclaim
GFP_TRANSHUGE = 7  # GFP_TRANSHUGE: __GFP_DIRECT_RECLAIM, no kswapd wake
GFP_TRANSHUGE_KSWAPD = 8  # GFP_TRANSHUGE_LIGHT | __GFP_KSWAPD_RECLAIM: kswapd wake only
GFP_NAMES = {GFP_USER_MOVABLE: "GFP_HIGHUSER_MOVABLE", GFP_KERNEL: "GFP_KERNEL",
             GFP_DMA32: "GFP_DMA32", GFP_DMA: "GFP_DMA", GFP_ATOMIC: "GFP_ATOMIC",
             GFP_THISNODE: "GFP_HIGHUSER_MOVABLE|__GFP_THISNODE",
             GFP_TRANSHUGE_LIGHT: "GFP_TRANSHUGE_LIGHT", GFP_TRANSHUGE: "GFP_TRANSHUGE",
             GFP_TRANSHUGE_KSWAPD: "GFP_TRANSHUGE_LIGHT|__GFP_KSWAPD_RECLAIM"}

# ---- kernel generations
KGEN_6_12 = 0
KGEN_6_1 = 1
KGEN_2_6_7 = 2
KERNELS = {"6.12": KGEN_6_12, "6.1": KGEN_6_1, "2.6.7": KGEN_2_6_7}
DEFAULT_KERNEL = "6.12"

# ---- errno values (Linux x86-64, same as Python's errno module on Linux)
EPERM = _errno.EPERM
ENOENT = _errno.ENOENT
ESRCH = _errno.ESRCH
EIO = _errno.EIO
E2BIG = _errno.E2BIG
ENOMEM = _errno.ENOMEM
EACCES = _errno.EACCES
EFAULT = _errno.EFAULT
EBUSY = _errno.EBUSY
EEXIST = _errno.EEXIST
ENODEV = _errno.ENODEV
EINVAL = _errno.EINVAL
ENOSYS = _errno.ENOSYS
EOPNOTSUPP = _errno.EOPNOTSUPP

# numastat counter columns, in the order of /sys/devices/system/node/nodeN/numastat
NUMA_HIT = 0
NUMA_MISS = 1
NUMA_FOREIGN = 2
NUMA_INTERLEAVE_HIT = 3
NUMA_LOCAL = 4
NUMA_OTHER = 5
NUMASTAT_NAMES = ("numa_hit", "numa_miss", "numa_foreign", "interleave_hit", "local_node",
                  "other_node")
