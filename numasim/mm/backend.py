"""The allocator backend's contract: the entry points the simulated kernel calls to fault,
allocate and free pages, which the numba core (:mod:`numasim.mm.alloc_core`) and its
plain-Python twin (:mod:`numasim.mm.alloc_ref`) both implement.

``Kernel(machine, backend="numba")`` uses the core, ``backend="python"`` the twin; both are
called with the same arguments over the same state arrays -- the kernel state as one bundle,
``kern`` = ``KernelState.core_args()`` (``state.CORE_ARRAYS`` order), then the call's own
scalars and result rows -- and must make the same decisions (``tests/test_twin.py``).  An
entry point returns a status (``FAULT_*``/``ALLOC_*``) or a page index, and writes its results
into the arrays it is given (pages, zones, page tables, numastat, vmstat, the result row);
nothing else.

``tests/test_backend_contract.py`` checks that both modules provide every entry point below
with the same parameters, so a change to one that the other does not follow fails there
before it fails in a differential test.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any, Protocol, runtime_checkable

BACKENDS = ("numba", "python")


@runtime_checkable
class AllocatorBackend(Protocol):
    """The functions :class:`~numasim.mm.kernel.Kernel` calls through ``kernel.core``."""

    def handle_mm_fault_range(self, *args: Any) -> int:
        """Fault a range of a region's pages in (first touch, COW, the zero page) for one
        task, as ``handle_mm_fault`` per page; returns a FAULT_* status."""
        ...

    def alloc_pages_mpol(self, *args: Any) -> int:
        """One page under a memory policy (``alloc_pages_mpol``); a page index or ALLOC_*."""
        ...

    def alloc_pages_nid(self, *args: Any) -> int:
        """One page from a node's zonelist (``__alloc_pages_node``); a page index or
        ALLOC_*."""
        ...

    def pgtable_alloc(self, *args: Any) -> int:
        """A page-table page for a virtual page (``pte_alloc``); a status."""
        ...

    def free_page(self, *args: Any) -> None:
        """Give a page back to its zone (``free_unref_page``)."""
        ...


ENTRY_POINTS = ("handle_mm_fault_range", "alloc_pages_mpol", "alloc_pages_nid",
                "pgtable_alloc", "free_page")


def backend_module(name: str) -> ModuleType:
    """The module implementing backend ``name`` (``numba`` or ``python``)."""
    if name == "numba":
        from numasim.mm import alloc_core

        return alloc_core
    if name == "python":
        from numasim.mm import alloc_ref

        return alloc_ref
    from numasim.errors import ConfigError

    raise ConfigError(f"unknown allocator backend {name!r}", field="backend",
                      hint="valid: " + ", ".join(BACKENDS))
