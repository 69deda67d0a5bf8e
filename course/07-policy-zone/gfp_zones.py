"""Lab 07: which allocations does an MPOL_BIND policy bind?  (numasim's simulated kernel)

A task on CPU 0 binds itself to one node, then the kernel allocates one page for it with
four kinds of gfp flags.  ``gfp_zone(gfp)`` is the highest zone the allocation may use;
``apply_policy_zone()`` applies the BIND mask only when that zone is at least
``policy_zone`` (the highest zone any node has, printed at boot as "Policy zone: ...").
Run:  python gfp_zones.py
"""

from __future__ import annotations

import numasim
from numasim.mm import syscalls
from numasim.mm.constants import (
    GFP_DMA32,
    GFP_KERNEL,
    GFP_NAMES,
    GFP_USER_MOVABLE,
    MPOL_BIND,
)
from numasim.mm.kernel import Kernel
from numasim.mm.nodemask import UserMask

ALLOCATIONS = (
    (GFP_USER_MOVABLE, "a user page (page fault)", "Movable"),
    (GFP_KERNEL, "a page table, a slab page", "Normal"),
    (GFP_DMA32, "a buffer for a 32-bit device", "DMA32"),
)


def answer(machine: str, bind_node: int) -> list[tuple[str, str, int]]:
    """Node of one page per kind of allocation, task on CPU 0 bound to ``bind_node``."""
    k = Kernel(numasim.load_machine(machine))
    t = k.new_process(cpu=0)
    syscalls.set_mempolicy(k, t, MPOL_BIND, UserMask.of({bind_node}), 1025)
    return [(GFP_NAMES[g], zone, k.temp_page(t, gfp=g)) for g, _, zone in ALLOCATIONS]


def main() -> None:
    for machine in ("oracle-4node-asym", "oracle-4node-normal"):
        k = Kernel(numasim.load_machine(machine))
        pz = next(line for line in k.dmesg if line.startswith("Policy zone"))
        print(f"{machine}: {pz}; task on CPU 0 (node 0), set_mempolicy(MPOL_BIND, {{3}})")
        for gfp, zone, node in answer(machine, 3):
            bound = "bound" if node == 3 else "NOT bound"
            print(f"  {gfp:<22} highest zone {zone:<8} -> node {node}  ({bound})")


if __name__ == "__main__":
    main()
