"""Lab 08: an allocation in interrupt context ignores the running task's policy.
(numasim's simulated kernel; the real kernel's code is quoted in README.md)

A task on CPU 1 (node 1) sets a task policy.  The kernel then allocates one page on its
behalf (process context, GFP_KERNEL: a page table, a pipe buffer...) and one page from an
interrupt that happens to arrive while this task runs on CPU 1 (GFP_ATOMIC: a network
packet's buffer).  ``alloc_pages()`` uses ``get_task_policy(current)`` only when
``!in_interrupt()``; an interrupt gets ``default_policy``, which is MPOL_LOCAL.
Run:  python interrupt.py
"""

from __future__ import annotations

import numasim
from numasim.mm import syscalls
from numasim.mm.constants import GFP_ATOMIC, GFP_KERNEL, MPOL_BIND, MPOL_INTERLEAVE
from numasim.mm.kernel import Kernel
from numasim.mm.nodemask import UserMask

POLICIES = ((MPOL_BIND, {3}, "bind {3}"), (MPOL_INTERLEAVE, {2, 3}, "interleave {2,3}"))


def answer(mode: int, nodes: set[int], cpu: int = 1) -> tuple[list[int], list[int]]:
    """Nodes of four process-context pages and four interrupt-context pages."""
    k = Kernel(numasim.load_machine("oracle-4node-asym"))
    t = k.new_process(cpu=cpu)
    syscalls.set_mempolicy(k, t, mode, UserMask.of(nodes), 1025)
    task = [k.temp_page(t, gfp=GFP_KERNEL) for _ in range(4)]
    irq = [k.temp_page(t, gfp=GFP_ATOMIC) for _ in range(4)]
    return task, irq


def main() -> None:
    print("oracle-4node-asym, task on CPU 1 (node 1)")
    for mode, nodes, name in POLICIES:
        task, irq = answer(mode, nodes)
        print(f"  task policy {name:<17} process context -> nodes {task}"
              f"   interrupt context -> nodes {irq}")


if __name__ == "__main__":
    main()
