"""libnuma's API over a simulated kernel, in libnuma's words, for people who know it.

``Libnuma(kernel, task)`` is one process linked with libnuma: its methods are the
``numa_*`` functions of ``numa.h`` that make sense in a simulator, making the same system
calls with the same arguments (``maxnode`` = nodemask size 1024 (+1 where libnuma adds one),
``bind_policy``, ``mbind_flags``) as libnuma 2.0.19 and its development head do.

Conventions, stated once:

* Nodemasks and CPU masks are Python ``set``\\ s of ints (``struct bitmask``); addresses are
  ints (bytes); sizes are bytes.  ``numa_alloc*`` return the address, or None for a failed
  mmap.
* Failures follow libnuma: most functions only report.  ``numa_error`` messages
  (``"mbind: Invalid argument"``) go to :attr:`Libnuma.errors`, ``numa_warn`` messages (each
  kind once) to :attr:`Libnuma.warnings`, and :attr:`Libnuma.errno` keeps the last errno.  With
  ``exit_on_error`` / ``exit_on_warn`` (libnuma's ``numa_exit_on_error``/``_warn``) they raise
  :class:`LibnumaExit` instead.  Functions that wrap one system call (``numa_move_pages``,
  ``numa_migrate_pages``, ``numa_run_on_node``...) return -1 and set ``errno`` as in C.
* ``numa_all_nodes_ptr`` / ``numa_all_cpus_ptr`` are taken when the object is made (libnuma
  reads them once, at load time): :attr:`all_nodes`, :attr:`all_cpus`.
* The task's CPU affinity is :attr:`affinity`; numasim runs a task on one CPU, so when the
  affinity stops containing the current CPU the task moves to the lowest allowed CPU (Linux
  picks some allowed CPU).
"""

from __future__ import annotations

import errno as _errno
import math
import os
from dataclasses import dataclass, field

from numasim.errors import NumasimError
from numasim.mm import state as S
from numasim.mm import syscalls as sc
from numasim.mm.constants import (
    EINVAL,
    KGEN_2_6_7,
    MAX_NUMNODES,
    MPOL_BIND,
    MPOL_DEFAULT,
    MPOL_F_MEMS_ALLOWED,
    MPOL_F_NODE,
    MPOL_F_NUMA_BALANCING,
    MPOL_INTERLEAVE,
    MPOL_LOCAL,
    MPOL_MF_STRICT,
    MPOL_PREFERRED,
    MPOL_PREFERRED_MANY,
    MPOL_WEIGHTED_INTERLEAVE,
)
from numasim.mm.kernel import PAGE_SHIFT, Kernel
from numasim.mm.nodemask import UserMask
from numasim.mm.nodestring import ParseFailure, parse_mask_string, possible_cpus

PAGE_SIZE = 1 << PAGE_SHIFT
NODEMASK_BITS = MAX_NUMNODES
"""``numa_num_possible_nodes()``: the kernel's nodemask size (CONFIG_NODES_SHIFT=10)."""


class LibnumaExit(NumasimError):
    """libnuma would have called ``exit(1)`` (``numa_exit_on_error``/``numa_exit_on_warn``)."""


# W_* kinds of numa_warn (each kind is printed once per process)
W_NODEPARSE = "nodeparse"
W_CPUPARSE = "cpuparse"
W_NODERUNMASK = "noderunmask"
W_BADMEMINFO = "badmeminfo"


# ----------------------------------------------------------- read-only helpers
def mems_allowed(k: Kernel, t: int) -> set[int]:
    """The task's cpuset mems (``Mems_allowed`` of /proc/PID/status)."""
    return {int(n) for n in k.ks.task_mems[t].nonzero()[0]}


def getpol(k: Kernel, t: int) -> tuple[int, set[int]]:
    """libnuma's ``getpol``: get_mempolicy(&mode, mask, 1025, 0, 0) -> (mode|flags, mask)."""
    mode, nodes = sc.get_mempolicy(k, t, want_mask=True, maxnode=NODEMASK_BITS + 1)
    return mode, set(nodes or ())


def interleave_node(k: Kernel, t: int) -> int:
    """``numa_get_interleave_node``: get_mempolicy(MPOL_F_NODE), 0 when it fails."""
    try:
        node, _ = sc.get_mempolicy(k, t, want_mask=False, flags=MPOL_F_NODE)
    except OSError:
        return 0
    return int(node)


def node_weights(k: Kernel) -> dict[int, int]:
    """``/sys/kernel/mm/mempolicy/weighted_interleave/nodeN`` for every node."""
    return {n: int(k.ks.nodeinfo[n, S.N_WEIGHT]) for n in k.machine.node_ids}


def node_cpus(k: Kernel, node: int) -> set[int]:
    """``/sys/devices/system/node/nodeN/cpulist``."""
    return {c for c, n in k.machine.cpu_to_node.items() if n == node}


def run_node_mask(k: Kernel, cpus: set[int], all_nodes: set[int]) -> set[int]:
    """``numa_get_run_node_mask``: nodes of ``all_nodes`` with a CPU in ``cpus``."""
    return {n for n in all_nodes if node_cpus(k, n) & cpus}


def node_meminfo(k: Kernel, node: int) -> tuple[int, int]:
    """(MemTotal, MemFree) of a node in bytes: its zones' managed and free pages."""
    ks = k.ks
    sel = ks.zones[:, S.Z_NODE] == node
    page = k.machine.page_size
    return (int(ks.zones[sel, S.Z_MANAGED].sum()) * page, int(ks.zones[sel, S.Z_FREE].sum())
            * page)


@dataclass
class Libnuma:
    """One process using libnuma: ``task`` of ``kernel``.  See the module docstring."""

    kernel: Kernel
    task: int
    exit_on_error: bool = False
    exit_on_warn: bool = False
    fail_alloc_on_error: bool = False
    """``numa_fail_alloc_on_error``: a failed mbind makes numa_alloc_* unmap and fail."""
    probe: bool = True
    """Probe MPOL_PREFERRED_MANY at start as libnuma does (set it, then restore the old
    policy -- which restarts an interleave policy's counter)."""
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    errno: int = 0
    bind_policy: int = MPOL_BIND
    mbind_flags: int = 0

    def __post_init__(self) -> None:
        k, t = self.kernel, self.task
        self._warned: set[str] = set()
        self.all_nodes: set[int] = mems_allowed(k, t)
        self.all_cpus: set[int] = set(k.machine.cpus)
        self.possible_nodes: set[int] = set(range(max(k.machine.node_ids) + 1))
        self.affinity: set[int] = set(k.machine.cpus)
        self.has_preferred_many = 0
        if self.probe:
            self._probe_preferred_many()

    # ---------------------------------------------------------- error plumbing
    def _numa_error(self, where: str, err: int | None = None) -> None:
        if err is not None:
            self.errno = err
        msg = f"{where}: {os.strerror(self.errno)}"
        self.errors.append(msg)
        if self.exit_on_error:
            raise LibnumaExit(msg, hint="numa_exit_on_error is set")

    def _numa_warn(self, kind: str, msg: str) -> None:
        if kind in self._warned:
            return
        self._warned.add(kind)
        text = f"libnuma: Warning: {msg}"
        self.warnings.append(text)
        if self.exit_on_warn:
            raise LibnumaExit(text, hint="numa_exit_on_warn is set")

    def _call(self, fn, *args, **kw):
        """Run a system call; on OSError remember errno and return None."""
        try:
            return fn(self.kernel, self.task, *args, **kw)
        except OSError as e:
            self.errno = e.errno
            return None

    def _setpol(self, mode: int, nodes: set[int], maxnode: int = NODEMASK_BITS) -> bool:
        """``setpol``: set_mempolicy(mode, mask, size); numa_error on failure."""
        if self._call(sc.set_mempolicy, mode, _mask(nodes), maxnode) is None:
            self._numa_error("set_mempolicy")
            return False
        return True

    def _dombind(self, addr: int, size: int, mode: int, nodes: set[int] | None) -> bool:
        """``dombind``: mbind(addr, size, mode, mask or NULL, size or 0, mbind_flags)."""
        mask = None if nodes is None else _mask(nodes)
        maxnode = 0 if nodes is None else NODEMASK_BITS
        if self._call(sc.mbind, addr, size, mode, mask, maxnode, self.mbind_flags) is None:
            self._numa_error("mbind")
            return False
        return True

    def _probe_preferred_many(self) -> None:
        """libnuma's start-up probe: set MPOL_PREFERRED_MANY over Mems_allowed, and if the
        kernel takes it, put the old policy back."""
        old = self._call(sc.get_mempolicy, want_mask=True, maxnode=NODEMASK_BITS + 1)
        if old is None:
            return
        if self._call(sc.set_mempolicy, MPOL_PREFERRED_MANY, _mask(self.all_nodes),
                      NODEMASK_BITS) is not None:
            self.has_preferred_many = 1
            self._call(sc.set_mempolicy, old[0], _mask(old[1] or ()), NODEMASK_BITS + 1)
        self.errno = 0

    # ---------------------------------------------------- availability, topology
    def numa_available(self) -> int:
        return 0

    def numa_max_node(self) -> int:
        return max(self.kernel.machine.node_ids)

    def numa_max_possible_node(self) -> int:
        return NODEMASK_BITS - 1

    def numa_num_possible_nodes(self) -> int:
        return NODEMASK_BITS

    def numa_num_configured_nodes(self) -> int:
        """Nodes with memory (despite the name, as libnuma documents)."""
        return len(self.kernel.machine.memory_nodes)

    def numa_num_configured_cpus(self) -> int:
        return max(self.kernel.machine.cpus) + 1

    def numa_num_possible_cpus(self) -> int:
        return possible_cpus(self.kernel.machine)

    def numa_num_task_nodes(self) -> int:
        return len(self.all_nodes)

    def numa_num_task_cpus(self) -> int:
        return len(self.all_cpus)

    def numa_pagesize(self) -> int:
        return PAGE_SIZE

    def numa_node_size64(self, node: int) -> tuple[int, int]:
        """(MemTotal, MemFree) of the node in bytes; (-1, -1) for a node that does not
        exist."""
        if node not in self.kernel.machine.node_ids:
            return -1, -1
        return node_meminfo(self.kernel, node)

    numa_node_size = numa_node_size64

    def numa_distance(self, a: int, b: int) -> int:
        """SLIT distance; 0 when either node does not exist."""
        ids = self.kernel.machine.node_ids
        if a not in ids or b not in ids:
            return 0
        return self.kernel.machine.dist(a, b)

    def numa_node_to_cpus(self, node: int) -> set[int] | None:
        """CPUs of the node; None (errno ERANGE) past the highest node, None for an id with
        no node."""
        if node > self.numa_max_node() or node < 0:
            self.errno = _errno.ERANGE
            return None
        if node not in self.kernel.machine.node_ids:
            return None
        return node_cpus(self.kernel, node)

    def numa_node_of_cpu(self, cpu: int) -> int:
        node = self.kernel.machine.cpu_to_node.get(cpu)
        if node is None:
            self.errno = EINVAL
            return -1
        return node

    # ------------------------------------------------------------ task policy
    def numa_set_interleave_mask(self, nodes: set[int]) -> None:
        """INTERLEAVE over ``nodes``; an empty set means MPOL_DEFAULT."""
        self._setpol(MPOL_INTERLEAVE if nodes else MPOL_DEFAULT, nodes)

    def numa_get_interleave_mask(self) -> set[int]:
        """The interleave mask, empty unless the policy is exactly MPOL_INTERLEAVE."""
        mode, nodes = getpol(self.kernel, self.task)
        return nodes if mode == MPOL_INTERLEAVE else set()

    def numa_set_weighted_interleave_mask(self, nodes: set[int]) -> None:
        self._setpol(MPOL_WEIGHTED_INTERLEAVE if nodes else MPOL_DEFAULT, nodes)

    def numa_get_weighted_interleave_mask(self) -> set[int]:
        mode, nodes = getpol(self.kernel, self.task)
        return nodes if mode == MPOL_WEIGHTED_INTERLEAVE else set()

    def numa_get_interleave_node(self) -> int:
        return interleave_node(self.kernel, self.task)

    def _preferred_mask(self) -> set[int]:
        """``__numa_preferred``: the policy's mask (left as get_mempolicy wrote it for every
        mode; more than one node in a PREFERRED/PREFERRED_MANY/BIND mask is numa_error)."""
        mode, nodes = getpol(self.kernel, self.task)
        if mode in (MPOL_PREFERRED, MPOL_PREFERRED_MANY, MPOL_BIND) and len(nodes) > 1:
            self._numa_error("libnuma.c", 0)
        return nodes

    def numa_preferred(self) -> int:
        """First node of the policy's mask, -1 when it has none (default, local)."""
        m = self._preferred_mask()
        return min(m) if m else -1

    def numa_preferred_many(self) -> set[int]:
        return self._preferred_mask()

    def numa_set_preferred(self, node: int) -> None:
        """PREFERRED on ``node``; a node outside the bitmask (e.g. -1) means MPOL_LOCAL."""
        nodes = {node} if 0 <= node < NODEMASK_BITS else set()
        self._setpol(MPOL_PREFERRED if nodes else MPOL_LOCAL, nodes)

    def numa_has_preferred_many(self) -> int:
        return self.has_preferred_many

    def numa_set_preferred_many(self, nodes: set[int]) -> None:
        if not self.has_preferred_many:
            self._numa_warn(W_NODEPARSE, "Unable to handle MANY preferred nodes. Falling "
                                         "back to first node")
            self.numa_set_preferred(min(nodes) if nodes else -1)
            return
        self._setpol(MPOL_PREFERRED_MANY, nodes)

    def numa_set_localalloc(self) -> None:
        self._setpol(MPOL_LOCAL, set())

    def numa_set_membind(self, nodes: set[int]) -> None:
        self._setpol(MPOL_BIND, nodes)

    def numa_set_membind_balancing(self, nodes: set[int]) -> None:
        """BIND|MPOL_F_NUMA_BALANCING; a kernel that refuses it (EINVAL) gets plain BIND."""
        if self._call(sc.set_mempolicy, MPOL_BIND | MPOL_F_NUMA_BALANCING, _mask(nodes),
                      NODEMASK_BITS + 1) is None:
            if self.errno == EINVAL:
                self.errno = 0
                self.numa_set_membind(nodes)
            else:
                self._numa_error("set_mempolicy")

    def numa_get_membind(self) -> set[int]:
        """The BIND mask, or every node of ``numa_all_nodes_ptr`` unless the policy is
        exactly MPOL_BIND."""
        mode, nodes = getpol(self.kernel, self.task)
        return nodes if mode == MPOL_BIND else set(self.all_nodes)

    def numa_get_mems_allowed(self) -> set[int]:
        r = self._call(sc.get_mempolicy, want_mask=True, maxnode=NODEMASK_BITS + 1,
                       flags=MPOL_F_MEMS_ALLOWED)
        if r is None:
            self._numa_error("get_mempolicy")
            return set()
        return set(r[1] or ())

    def numa_bind(self, nodes: set[int]) -> None:
        self.numa_run_on_node_mask(nodes)
        self.numa_set_membind(nodes)

    def numa_set_bind_policy(self, strict: int) -> None:
        """Strict: later tonode/tonodemask/alloc_onnode use BIND; else PREFERRED_MANY when
        the kernel has it, PREFERRED otherwise."""
        if strict:
            self.bind_policy = MPOL_BIND
        elif self.has_preferred_many:
            self.bind_policy = MPOL_PREFERRED_MANY
        else:
            self.bind_policy = MPOL_PREFERRED

    def numa_set_strict(self, flag: int) -> None:
        """Add (or drop) MPOL_MF_STRICT in later mbind calls."""
        if flag:
            self.mbind_flags |= MPOL_MF_STRICT
        else:
            self.mbind_flags &= ~MPOL_MF_STRICT

    def numa_set_mempolicy_home_node(self, addr: int, size: int, home_node: int,
                                     flags: int = 0) -> int:
        r = self._call(sc.set_mempolicy_home_node, addr, size, home_node, flags)
        return -1 if r is None else 0

    def numa_has_home_node(self) -> int:
        return int(self.kernel.kgen != KGEN_2_6_7)

    # ----------------------------------------------------------- range policy
    def numa_interleave_memory(self, addr: int, size: int, nodes: set[int]) -> None:
        self._dombind(addr, size, MPOL_INTERLEAVE, nodes)

    def numa_weighted_interleave_memory(self, addr: int, size: int, nodes: set[int]) -> None:
        self._dombind(addr, size, MPOL_WEIGHTED_INTERLEAVE, nodes)

    def numa_tonode_memory(self, addr: int, size: int, node: int) -> None:
        nodes = {node} if 0 <= node < NODEMASK_BITS else set()
        self._dombind(addr, size, self.bind_policy, nodes)

    def numa_tonodemask_memory(self, addr: int, size: int, nodes: set[int]) -> None:
        self._dombind(addr, size, self.bind_policy, nodes)

    def numa_setlocal_memory(self, addr: int, size: int) -> None:
        """mbind(MPOL_PREFERRED, NULL): local allocation for the range."""
        self._dombind(addr, size, MPOL_PREFERRED, None)

    def numa_police_memory(self, addr: int, size: int) -> None:
        """Read then write one byte of every page (``mem[i] = mem[i]``), 2 MiB at a time so
        page tables come before the pages they map, as on the real fault path."""
        k, t = self.kernel, self.task
        vpn, end = addr >> PAGE_SHIFT, (addr + size + PAGE_SIZE - 1) >> PAGE_SHIFT
        while vpn < end:
            n = min(end - vpn, 512 - (vpn & 511))
            k.touch(t, vpn, n, write=False)
            k.touch(t, vpn, n, write=True)
            vpn += n

    # ------------------------------------------------------------- allocation
    def _mmap(self, size: int) -> int | None:
        if size <= 0:
            self.errno = EINVAL
            return None
        k = self.kernel
        r = k.mmap(self.task, math.ceil(size / PAGE_SIZE))
        return int(k.ks.regions[r, S.R_START]) << PAGE_SHIFT

    def _mmap_bind(self, size: int, mode: int, nodes: set[int] | None) -> int | None:
        addr = self._mmap(size)
        if addr is None:
            return None
        if not self._dombind(addr, size, mode, nodes) and self.fail_alloc_on_error:
            self.numa_free(addr, size)
            return None
        return addr

    def numa_alloc(self, size: int) -> int | None:
        """mmap and touch every page (task policy decides where)."""
        addr = self._mmap(size)
        if addr is not None:
            self.numa_police_memory(addr, size)
        return addr

    def numa_alloc_onnode(self, size: int, node: int) -> int | None:
        """mmap and mbind to ``node`` with ``bind_policy``; pages come at first touch."""
        nodes = {node} if 0 <= node < NODEMASK_BITS else set()
        return self._mmap_bind(size, self.bind_policy, nodes)

    def numa_alloc_local(self, size: int) -> int | None:
        return self._mmap_bind(size, MPOL_PREFERRED, None)

    def numa_alloc_interleaved_subset(self, size: int, nodes: set[int]) -> int | None:
        return self._mmap_bind(size, MPOL_INTERLEAVE, nodes)

    def numa_alloc_interleaved(self, size: int) -> int | None:
        return self.numa_alloc_interleaved_subset(size, self.all_nodes)

    def numa_alloc_weighted_interleaved_subset(self, size: int, nodes: set[int]
                                               ) -> int | None:
        return self._mmap_bind(size, MPOL_WEIGHTED_INTERLEAVE, nodes)

    def numa_alloc_weighted_interleaved(self, size: int) -> int | None:
        return self.numa_alloc_weighted_interleaved_subset(size, self.all_nodes)

    def numa_free(self, addr: int, size: int) -> None:
        k = self.kernel
        k.munmap(k.task_mm(self.task), addr >> PAGE_SHIFT, math.ceil(size / PAGE_SIZE))

    # -------------------------------------------------------------------- CPUs
    def numa_sched_getaffinity(self, pid: int = 0) -> set[int]:
        return set(self.affinity)

    def numa_sched_setaffinity(self, pid: int, cpus: set[int]) -> int:
        """sched_setaffinity: the online CPUs of ``cpus``; none -> EINVAL."""
        eff = set(cpus) & set(self.kernel.machine.cpus)
        if not eff:
            self.errno = EINVAL
            return -1
        self.affinity = eff
        k, t = self.kernel, self.task
        if int(k.ks.tasks[t, S.T_CPU]) not in eff:
            k.set_cpu(t, min(eff))
        return 0

    def _run_on_nodes(self, nodes: set[int], usable: set[int]) -> int:
        cpus: set[int] = set()
        for n in sorted(nodes):
            if n not in usable:
                self._numa_warn(W_NODERUNMASK, f"node {n} not allowed")
                continue
            cpus |= node_cpus(self.kernel, n)
        if self.numa_sched_setaffinity(0, cpus) < 0:
            self._numa_error("numa_sched_setaffinity_v2_int() failed")
            return -1
        return 0

    def numa_run_on_node_mask(self, nodes: set[int]) -> int:
        """Run on the CPUs of ``nodes`` (only nodes in ``numa_all_nodes_ptr``)."""
        return self._run_on_nodes(nodes, self.all_nodes)

    def numa_run_on_node_mask_all(self, nodes: set[int]) -> int:
        """Same over every possible node, ignoring the cpuset (numactl --cpunodebind)."""
        return self._run_on_nodes(nodes, self.possible_nodes)

    def numa_run_on_node(self, node: int) -> int:
        """Run on the node's CPUs; -1 means every CPU."""
        if node >= NODEMASK_BITS:
            self.errno = EINVAL
            return -1
        cpus = set(self.kernel.machine.cpus) if node == -1 else node_cpus(self.kernel, node)
        return self.numa_sched_setaffinity(0, cpus)

    def numa_get_run_node_mask(self) -> set[int]:
        return run_node_mask(self.kernel, self.affinity, self.all_nodes)

    # -------------------------------------------------------------- migration
    def numa_migrate_pages(self, pid: int, from_nodes: set[int], to_nodes: set[int]) -> int:
        """migrate_pages(pid, 1025, from, to): pages not moved, or -1 with errno."""
        r = self._call(sc.migrate_pages, pid, NODEMASK_BITS + 1, _mask(from_nodes),
                       _mask(to_nodes))
        return -1 if r is None else int(r)

    def numa_move_pages(self, pid: int, pages: list[int], nodes: list[int] | None,
                        flags: int = 0) -> tuple[int, list[int] | None]:
        """move_pages: (return value, status per page); (-1, None) with errno on failure.
        ``nodes`` None queries where the pages are."""
        r = self._call(sc.move_pages, pid, list(pages), None if nodes is None else
                       list(nodes), flags)
        if r is None:
            return -1, None
        return int(r[0]), list(r[1])

    # ---------------------------------------------------------------- parsing
    def _parse(self, s: str, allowed: set[int], kind: str) -> set[int] | None:
        m = self.kernel.machine
        if kind == "node":
            r = parse_mask_string(s, allowed, len(m.memory_nodes), kind="node")
        else:
            r = parse_mask_string(s, allowed, max(m.cpus) + 1, kind="cpu",
                                  size=possible_cpus(m))
        if isinstance(r, ParseFailure):
            self._numa_warn(W_NODEPARSE if kind == "node" else W_CPUPARSE, r.warning)
            return None
        return r

    def numa_parse_nodestring(self, s: str) -> set[int] | None:
        """Nodes named by ``s`` among the task's allowed nodes; None if invalid."""
        return self._parse(s, self.all_nodes, "node")

    def numa_parse_nodestring_all(self, s: str) -> set[int] | None:
        return self._parse(s, self.possible_nodes, "node")

    def numa_parse_cpustring(self, s: str) -> set[int] | None:
        return self._parse(s, self.all_cpus, "cpu")

    def numa_parse_cpustring_all(self, s: str) -> set[int] | None:
        return self._parse(s, set(range(self.numa_num_configured_cpus())), "cpu")

    # ------------------------------------------------------------ bitmasks
    @staticmethod
    def numa_bitmask_equal(a: set[int], b: set[int]) -> bool:
        return set(a) == set(b)

    @staticmethod
    def numa_bitmask_weight(a: set[int]) -> int:
        return len(a)

    @property
    def numa_all_nodes_ptr(self) -> set[int]:
        return set(self.all_nodes)

    @property
    def numa_no_nodes_ptr(self) -> set[int]:
        return set()

    @property
    def numa_all_cpus_ptr(self) -> set[int]:
        return set(self.all_cpus)

    @property
    def numa_nodes_ptr(self) -> set[int]:
        return set(self.kernel.machine.node_ids)


def _mask(nodes) -> UserMask:
    """A ``struct bitmask`` of NODEMASK_BITS bits (bits past it are dropped, as setbit does)."""
    return UserMask.of(n for n in nodes if 0 <= n < NODEMASK_BITS)


__all__ = ["Libnuma", "LibnumaExit", "getpol", "mems_allowed", "interleave_node",
           "node_weights", "node_meminfo", "run_node_mask"]
