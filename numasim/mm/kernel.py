"""The simulated kernel: processes, address spaces, files, faults and the OOM killer.

:class:`Kernel` is the Python face of :class:`~numasim.mm.state.KernelState`.  It does what
is rare (mmap, munmap, fork, exec, exit, OOM kills) in Python and hands page faults to the
allocator core in batches.  The NUMA system calls live in :mod:`numasim.mm.syscalls` and take
a ``Kernel``.

Tasks are single-threaded processes here (``task id`` = pid), each with its own mm.
Addresses are handled in virtual page numbers (vpn = address >> 12) inside, bytes at the
system-call boundary.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from numasim.mm import alloc_core as core
from numasim.mm import state as S
from numasim.mm.backend import backend_module
from numasim.mm.constants import (
    DEFAULT_KERNEL,
    GFP_KERNEL,
    GFP_USER_MOVABLE,
    KERNELS,
    KGEN_2_6_7,
    KGEN_6_1,
    KGEN_6_12,
    MPOL_BIND,
)
from numasim.mm.khugepaged import Khugepaged
from numasim.mm.memory_tiers import memory_tiers
from numasim.mm.vmscan import KSWAPD_CHUNK, reclaim
from numasim.topology.model import Machine

PAGE_SHIFT = 12
HPAGE_PMD_NR = 512
TASK_SIZE_VPN = 0x7FFFFFFFF000 >> PAGE_SHIFT
# top-down mmap base of a process without address randomisation and an 8 MiB stack limit
# (mmap_base = TASK_SIZE - 128 MiB gap)
MMAP_BASE_VPN = (0x7FFFFFFFF000 - (128 << 20)) >> PAGE_SHIFT


class Segfault(Exception):
    """A fault the kernel answers with SIGSEGV/SIGBUS (no VMA, wrong protection, past EOF)."""

    def __init__(self, vpn: int, signal: int = 11) -> None:
        super().__init__(f"{'SIGBUS' if signal == 7 else 'SIGSEGV'} at {vpn << PAGE_SHIFT:#x}")
        self.vpn, self.signal = vpn, signal


class TaskKilled(Exception):
    """The task was killed (the OOM killer's SIGKILL) while it ran."""

    def __init__(self, task: int, signal: int = 9) -> None:
        super().__init__(f"task {task} killed by signal {signal}")
        self.task, self.signal = task, signal


@dataclass
class File:
    """A file the simulated processes can map: tmpfs/memfd/SysV shm (shmem) or page cache."""

    path: str
    obj: int
    fs: str  # 'tmpfs', 'ramfs', 'memfd', 'shm', 'anon_shared'


@dataclass
class MM:
    id: int
    regions: list[int] = field(default_factory=list)
    users: int = 1


class Kernel:
    """One simulated machine running Linux's memory management."""

    def __init__(self, machine: Machine, kernel: str = DEFAULT_KERNEL, *,
                 thp: bool | str | None = None, backend: str = "numba") -> None:
        if kernel not in KERNELS:
            from numasim.errors import ConfigError

            raise ConfigError(f"unknown kernel generation {kernel!r}", field="kernel",
                              hint="valid: " + ", ".join(KERNELS))
        self.machine = machine
        self.kernel = kernel
        # the allocator backend (numasim.mm.backend): the numba core, or its plain-Python
        # twin for differential tests
        self.core = backend_module(backend)
        self.kgen = KERNELS[kernel]
        self.ks = S.KernelState(machine, self.kgen)
        from numasim.mm.huge_memory import thp_mode_value

        # transparent_hugepage/enabled: the argument, else the machine's kernel settings
        self.ks.sysvars[S.SV_THP] = thp_mode_value(
            getattr(machine, "thp", "never") if thp is None else thp)
        # transparent_hugepage/defrag (machine YAML kernel: thp_defrag; default madvise)
        self.thp_defrag_mode = getattr(machine, "thp_defrag", "madvise")
        self.mms: dict[int, MM] = {}
        self.next_mm = 1
        self.files: dict[str, File] = {}
        self.fs_next_ino: dict[str, int] = {"tmpfs": 2, "ramfs": 2, "memfd": 2048,
                                            "anon_shared": 4096, "shm": 8192}
        # mm/memory-tiers.c: tiers and demotion targets for this generation's boot
        self.memory_tiers = memory_tiers(machine, kernel, self.ks.derived.fallback_order)
        # /sys/kernel/mm/numa/demotion_enabled (machine YAML kernel: demotion_enabled)
        self.demotion_enabled = bool(getattr(machine, "demotion_enabled", False))
        self.dmesg: list[str] = self._boot_log() + list(self.memory_tiers.log)
        self.forked_anon: set[int] = set()  # anon_vmas made by fork (non-singular chains)
        self.task_names: dict[int, dict] = {}  # pid, comm, uid, cpuset for the kernel log
        self.console: list[str] = []  # log lines printed on the console (loglevel <= 3)
        self._res = core.fault_res(int(self.ks.nodeinfo.shape[0]))
        # the khugepaged thread (numasim.mm.khugepaged), with the machine YAML's knobs
        self.khugepaged = Khugepaged(self, **dict(getattr(machine, "khugepaged", ()) or ()))
        # vm.min_free_kbytes / watermark_scale_factor as the zones' marks were made from;
        # khugepaged raises min_free_kbytes when THP is on at boot
        self.min_free_kbytes = int(self.ks.derived.min_free_kbytes)
        self.watermark_scale_factor = int(machine.watermark_scale_factor)
        if int(self.ks.sysvars[S.SV_THP]):
            from numasim.mm.khugepaged import set_recommended_min_free_kbytes

            set_recommended_min_free_kbytes(self)

    def setup_per_zone_wmarks(self, min_free_kbytes: int | None = None,
                              watermark_scale_factor: int | None = None) -> None:
        """``setup_per_zone_wmarks`` after a change of either knob: every zone's min, low
        and high marks from today's managed pages."""
        from numasim.topology.derive import setup_per_zone_wmarks
        from numasim.topology.model import ZoneSpec

        if min_free_kbytes is not None:
            self.min_free_kbytes = int(min_free_kbytes)
        if watermark_scale_factor is not None:
            self.watermark_scale_factor = int(watermark_scale_factor)
        ks = self.ks
        zones = ks.derived.zones
        specs = [(z.node, ZoneSpec(z.type, z.start_pfn, z.spanned, z.present,
                                   int(ks.zones[z.index, S.Z_MANAGED]))) for z in zones]
        marks = setup_per_zone_wmarks(specs, self.min_free_kbytes, self.watermark_scale_factor,
                                      self.machine.page_size)
        for z, (wmin, wlow, whigh) in zip(zones, marks, strict=True):
            ks.zones[z.index, S.Z_MIN], ks.zones[z.index, S.Z_LOW] = wmin, wlow
            ks.zones[z.index, S.Z_HIGH] = whigh

    def _boot_log(self) -> list[str]:
        """The kernel log of the boot (fallback orders, policy zone).  Linux 6.1 lists a
        memoryless node itself first in its own fallback order ("Fallback order for Node 1:
        1 0 2"); 6.12 leaves it out ("... Node 1: 0 2") -- both seen on the oracle.  The
        zonelists are the same (a memoryless node has no zones to list)."""
        d = self.ks.derived
        lines = list(d.boot_log())
        if self.kgen != KGEN_6_1:
            return lines
        for nid, order in d.fallback_order.items():
            if nid not in self.machine.memory_nodes and (not order or order[0] != nid):
                old = f"Fallback order for Node {nid}: " + " ".join(map(str, order)) + " "
                new = f"Fallback order for Node {nid}: " + " ".join(map(str, (nid, *order))) + " "
                lines = [new if x == old else x for x in lines]
        return lines

    # ------------------------------------------------------------ tasks
    def new_process(self, cpu: int = 0, parent: int = -1) -> int:
        mm = self._new_mm()
        return self.ks.new_task(cpu, mm, parent)

    def new_thread(self, t: int, cpu: int) -> int:
        """``clone(CLONE_VM)``: a thread sharing t's address space (and so its VMA policies),
        with a copy of t's task policy and interleave counter, running on ``cpu``."""
        ks = self.ks
        mm = self.task_mm(t)
        self.mms[mm].users += 1
        th = ks.new_task(cpu, mm, parent=t)
        for col in (S.T_IL_PREV, S.T_IL_WEIGHT, S.T_CAP_SYS_NICE, S.T_OOM_SCORE_ADJ):
            ks.tasks[th, col] = ks.tasks[t, col]
        ks.task_mems[th] = ks.task_mems[t]
        ks.tasks[th, S.T_POLICY] = self.dup_policy(int(ks.tasks[t, S.T_POLICY]))
        return th

    def _new_mm(self) -> int:
        mm = self.next_mm
        self.next_mm += 1
        self.mms[mm] = MM(mm)
        return mm

    def task_mm(self, t: int) -> int:
        return int(self.ks.tasks[t, S.T_MM])

    def set_cpu(self, t: int, cpu: int) -> None:
        self.ks.set_task_cpu(t, cpu)

    def task_node(self, t: int) -> int:
        return int(self.ks.tasks[t, S.T_NODE])

    def alive(self, t: int) -> bool:
        return bool(self.ks.tasks[t, S.T_ALIVE])

    def premap_pgtables(self, t: int, vpns: list[int]) -> None:
        """Mark page-table pages as already present (a process image's own mappings)
        without allocating them; keeps numastat deltas comparable with a real process."""
        mm = self.task_mm(t)
        for vpn in vpns:
            for level, shift in ((S.PGT_PUD, 27), (S.PGT_PMD, 18), (S.PGT_PTE, 9)):
                key = S.pgtable_key(mm, level, vpn >> shift)
                if self.ks.pgt_get(key) is None:
                    self.ks.pgt_set(key, S.PGT_NO_PAGE)

    def fork(self, t: int) -> int:
        """``copy_process``: the child gets copies of the task policy (il_prev and il_weight
        included), the cpuset, and the address space (VMA policies duplicated, private pages
        shared copy-on-write, shared mappings left to fault in again)."""
        ks = self.ks
        child = self.new_process(int(ks.tasks[t, S.T_CPU]), parent=t)
        cmm = self.task_mm(child)
        for col in (S.T_IL_PREV, S.T_IL_WEIGHT, S.T_CAP_SYS_NICE, S.T_OOM_SCORE_ADJ):
            ks.tasks[child, col] = ks.tasks[t, col]
        ks.task_mems[child] = ks.task_mems[t]
        ks.tasks[child, S.T_POLICY] = self.dup_policy(int(ks.tasks[t, S.T_POLICY]))
        pmm = self.task_mm(t)
        anon_map: dict[int, int] = {}
        if getattr(self, "thp_pmds", None):
            # numasim shares 4 KiB pages copy-on-write: the parent's THPs are split first
            # (Linux shares the PMD and splits on the first write, on the same node)
            from numasim.mm.huge_memory import split_huge_range

            for r in list(self.mms[pmm].regions):
                split_huge_range(self, pmm, r, int(ks.regions[r, S.R_START]),
                                 int(ks.regions[r, S.R_END]))
        for r in list(self.mms[pmm].regions):
            row = ks.regions[r]
            start, end = int(row[S.R_START]), int(row[S.R_END])
            nr = ks.new_region(cmm, start, end, int(row[S.R_OBJ]), int(row[S.R_PGOFF]))
            self.mms[cmm].regions.append(nr)
            pbase, cbase = int(ks.regions[r, S.R_PT]), int(ks.regions[nr, S.R_PT])
            n = end - start
            vmap: dict[int, int] = {}
            for v in self.region_vmas(r):
                f = ks.vmas[v].copy()
                nv = ks.new_vma()
                ks.vmas[nv] = f
                ks.vmas[nv, S.V_MM] = cmm
                ks.vmas[nv, S.V_REGION] = nr
                ks.vmas[nv, S.V_POLICY] = self.dup_policy(int(f[S.V_POLICY]))
                if f[S.V_ANON_VMA]:
                    # anon_vma_fork: the child's VMA gets an anon_vma of its own
                    old = int(f[S.V_ANON_VMA])
                    if old not in anon_map:
                        anon_map[old] = int(ks.sysvars[S.SV_NEXT_ANON_VMA])
                        ks.sysvars[S.SV_NEXT_ANON_VMA] += 1
                        self.forked_anon.add(anon_map[old])
                    ks.vmas[nv, S.V_ANON_VMA] = anon_map[old]
                vmap[v] = nv
            pv = ks.pt_vma[pbase: pbase + n]
            ks.pt_vma[cbase: cbase + n] = [vmap.get(int(x), -1) for x in pv]
            # copy_page_range: private mappings with an anon_vma copy their PTEs (COW);
            # shared ones are left for the child to fault in again
            pp = ks.pt_page[pbase: pbase + n]
            for i in range(n):
                v = int(pv[i])
                pg = int(pp[i])
                if v < 0 or pg == S.PT_NONE:
                    continue
                copy = not ks.vmas[v, S.V_SHARED] and ks.vmas[v, S.V_ANON_VMA] != 0
                if not copy:
                    continue
                ks.pt_page[cbase + i] = pg
                if pg >= 0:
                    ks.pages[pg, S.PG_MAPCOUNT] += 1
            self._fork_pgtables(t, cmm, [start + i for i in range(n)
                                         if ks.pt_page[cbase + i] != S.PT_NONE])
        if pmm in self.khugepaged.slots:  # khugepaged_fork
            self.khugepaged.enter(cmm)
        return child

    def _fork_pgtables(self, parent: int, cmm: int, vpns: list[int]) -> None:
        """The child's page tables for the copied PTEs, allocated by the parent (current)."""
        if not vpns:
            return
        self.ks.ensure_pages(3 * len(vpns) + 8)
        for vpn in vpns:
            st = self.core.pgtable_alloc(self.ks.core_args(), parent, cmm, vpn, core.OOM_MAY,
                                         self._res)
            if st != S.FAULT_OK:
                break

    def exec(self, t: int) -> None:
        """``execve``: a fresh address space; the task policy (and counter) survive."""
        old = self.task_mm(t)
        mm = self._new_mm()
        self.ks.tasks[t, S.T_MM] = mm
        self._mm_put(old)

    def exit(self, t: int, signal: int = 0) -> None:
        ks = self.ks
        if not ks.tasks[t, S.T_ALIVE]:
            return
        ks.tasks[t, S.T_ALIVE] = 0
        ks.tasks[t, S.T_KILLED] = signal
        self._mm_put(self.task_mm(t))
        self.put_policy(int(ks.tasks[t, S.T_POLICY]))
        ks.tasks[t, S.T_POLICY] = -1

    def _mm_put(self, mm: int) -> None:
        m = self.mms.get(mm)
        if m is None:
            return
        m.users -= 1
        if m.users > 0:
            return
        for r in list(m.regions):
            row = self.ks.regions[r]
            self.munmap(mm, int(row[S.R_START]), int(row[S.R_END] - row[S.R_START]))
        self._free_pgtables(mm, everything=True)
        del self.mms[mm]

    # ---------------------------------------------------------- policies
    def dup_policy(self, p: int) -> int:
        """``mpol_dup``: a private copy of policy row ``p`` (-1 stays -1)."""
        if p < 0:
            return -1
        ks = self.ks
        q = ks.new_policy(int(ks.policies[p, S.P_MODE]), int(ks.policies[p, S.P_FLAGS]),
                          ks.policy_nodes(p), int(ks.policies[p, S.P_HOME]))
        self.policy_meta[q] = dict(self.policy_meta.get(p, {}))
        return q

    def put_policy(self, p: int) -> None:
        if p >= 0:
            self.ks.policies[p, S.P_ALIVE] = 0
            self.policy_meta.pop(p, None)

    @property
    def policy_meta(self) -> dict[int, dict]:
        """Per-policy facts the core does not need: the user's nodemask (for STATIC and
        RELATIVE), the cpuset mems it was made against (w.cpuset_mems_allowed)."""
        if not hasattr(self, "_policy_meta"):
            self._policy_meta: dict[int, dict] = {}
        return self._policy_meta

    # -------------------------------------------------------------- files
    def open_file(self, path: str, fs: str, npages: int, keep: bool = False) -> File:
        """Create (or with ``keep`` reopen) a file; grows it to ``npages`` pages."""
        f = self.files.get(path)
        kind = S.KIND_FILE if fs == "ramfs" else S.KIND_SHMEM
        if f is not None and keep:
            self.ks.grow_obj(f.obj, npages)
            return f
        if f is not None:  # O_TRUNC: drop the old pages
            self._truncate(f.obj)
            self.ks.grow_obj(f.obj, npages)
            return f
        ino = self.fs_next_ino.get(fs, 2)
        self.fs_next_ino[fs] = ino + 1
        o = self.ks.new_obj(kind, npages, ino)
        f = File(path, o, fs)
        if not path.startswith("anon:"):
            self.files[path] = f
        return f

    def _truncate(self, o: int) -> None:
        ks = self.ks
        base, n = int(ks.objs[o, S.O_BASE]), int(ks.objs[o, S.O_NPAGES])
        for i in range(n):
            pg = int(ks.obj_pages[base + i])
            if pg >= 0 and ks.pages[pg, S.PG_MAPCOUNT] <= 0:
                self.core.free_page(ks.zones, ks.vmstat, ks.pages, pg)
            ks.obj_pages[base + i] = S.PT_NONE

    def unlink(self, path: str) -> None:
        f = self.files.pop(path, None)
        if f is not None:
            self._truncate(f.obj)

    # ------------------------------------------------------------- mmap
    def get_unmapped_area(self, mm: int, npages: int) -> int:
        """Top-down search below mmap_base for a hole of ``npages`` (``vm_unmapped_area``)."""
        regs = self.mms[mm].regions
        if not regs:
            return MMAP_BASE_VPN - npages
        rows = self.ks.regions[np.asarray(regs, dtype=np.int64)]
        order = np.lexsort((rows[:, S.R_END], rows[:, S.R_START]))[::-1]  # highest first
        starts, ends = rows[order, S.R_START], rows[order, S.R_END]
        # walking down from mmap_base, the top of the hole below each region is the lowest
        # start seen so far (vectorised: a cumulative minimum, not a Python loop per region)
        tops = np.minimum.accumulate(np.concatenate(([MMAP_BASE_VPN], starts)))
        fits = np.flatnonzero((starts < tops[:-1]) & (ends <= tops[:-1])
                              & (tops[:-1] - ends >= npages))
        top = int(tops[fits[0]]) if fits.size else int(tops[-1])
        return top - npages

    def thp_get_unmapped_area(self, mm: int, npages: int) -> int:
        """6.12's ``__get_unmapped_area`` for a private anonymous mapping without an address
        hint whose length is a multiple of 2 MiB (Linux >= 6.7, limited to such lengths by
        6.12): ``__thp_get_unmapped_area`` searches a hole 2 MiB longer and aligns the
        start; top-down, an already aligned result moves up by 2 MiB, so the mapping ends
        as high as it can.  Whatever the THP mode (the condition is CONFIG_TRANSPARENT_
        HUGEPAGE, which Debian sets).  6.1 has no such rule."""
        ret = self.get_unmapped_area(mm, npages + HPAGE_PMD_NR)
        off_sub = -ret & (HPAGE_PMD_NR - 1)  # pgoff 0 for anonymous memory
        return ret + (off_sub or HPAGE_PMD_NR)

    def overlaps(self, mm: int, start: int, end: int) -> bool:
        t = self.ks.regions
        # the candidates, vectorised over the table (linear, no Python loop per region)
        hits = np.flatnonzero((t[:, S.R_ALIVE] == 1) & (t[:, S.R_START] < end)
                              & (start < t[:, S.R_END]))
        mine = set(self.mms[mm].regions) if len(hits) else set()
        for r in (int(x) for x in hits if int(x) in mine):
            row = t[r]
            if row[S.R_START] < end and start < row[S.R_END]:
                live = self.ks.pt_vma[int(row[S.R_PT]) + max(start, int(row[S.R_START]))
                                      - int(row[S.R_START]):
                                      int(row[S.R_PT]) + min(end, int(row[S.R_END]))
                                      - int(row[S.R_START])]
                if (live >= 0).any():
                    return True
        return False

    def mmap(self, t: int, npages: int, *, kind: str = "anon", vpn: int | None = None,
             file: File | None = None, pgoff: int = 0, shared: bool | None = None,
             prot: int = S.PROT_READ | S.PROT_WRITE, thp_align: bool = True) -> int:
        """Map ``npages`` pages; returns the region id.  ``kind``: 'anon' (private
        anonymous), 'shared' (MAP_SHARED|MAP_ANONYMOUS), or 'file' (with ``file``).
        ``thp_align``: False places a private anonymous mapping without 6.12's 2 MiB
        alignment, as a length that is not a multiple of 2 MiB would be (malloc's mmap:
        the size plus its header)."""
        ks = self.ks
        mm = self.task_mm(t)
        if vpn is None and kind == "anon" and self.kgen == KGEN_6_12 and thp_align and \
                npages % HPAGE_PMD_NR == 0:
            vpn = self.thp_get_unmapped_area(mm, npages)
        elif vpn is None:
            vpn = self.get_unmapped_area(mm, npages)
        elif self.overlaps(mm, vpn, vpn + npages):
            raise FileExistsError(f"range {vpn << 12:#x} is already mapped")
        if kind == "anon":
            obj, okind, vshared = -1, S.KIND_ANON, False
            vpgoff = 0 if self.kgen == KGEN_2_6_7 else vpn
        elif kind == "shared":
            f = self.open_file(f"anon:{self.next_mm}:{vpn}", "anon_shared", npages)
            obj, okind, vshared, vpgoff = f.obj, S.KIND_SHMEM, True, 0
        else:
            assert file is not None
            obj = file.obj
            okind = int(ks.objs[obj, S.O_KIND])
            vshared = True if shared is None else shared
            vpgoff = pgoff
        r = ks.new_region(mm, vpn, vpn + npages, obj, vpgoff)
        self.mms[mm].regions.append(r)
        v = ks.new_vma(mm=mm, start=vpn, end=vpn + npages, pgoff=vpgoff, kind=okind, obj=obj,
                       region=r, prot=prot, shared=int(vshared))
        base = int(ks.regions[r, S.R_PT])
        ks.pt_vma[base: base + npages] = v
        self._share_anon_vma_with_neighbours(mm, v)
        if kind == "anon" and int(ks.sysvars[S.SV_THP]):
            self.khugepaged.enter_vma(v)  # mmap_region: a new VMA khugepaged may scan
        return r

    def _share_anon_vma_with_neighbours(self, mm: int, v: int) -> None:
        """``vma_merge_new_range``: Linux would extend a compatible neighbouring VMA over
        the new mapping.  numasim keeps the new mapping as its own VMA (each region is its
        own slice of the page-table arrays) but gives it the neighbour's anon_vma, as the
        merged VMA would have; the probe's maps view shows the two as one."""
        ks = self.ks
        row = ks.vmas[v]
        t = ks.vmas
        # only the VMAs that touch the new one (vectorised: linear, not a sort per mmap)
        near = np.flatnonzero((t[:, S.V_ALIVE] == 1) & (t[:, S.V_MM] == mm)
                              & ((t[:, S.V_END] == row[S.V_START])
                                 | (t[:, S.V_START] == row[S.V_END])))
        for u in sorted((int(x) for x in near), key=lambda x: int(t[x, S.V_START])):
            if u == v:
                continue
            ru = ks.vmas[u]
            before = ru[S.V_END] == row[S.V_START]
            after = ru[S.V_START] == row[S.V_END]
            if not (before or after) or ru[S.V_POLICY] >= 0 or row[S.V_POLICY] >= 0:
                continue
            if any(ru[c] != row[c] for c in (S.V_OBJ, S.V_PROT, S.V_SHARED, S.V_KIND)):
                continue
            lo, hi = (ru, row) if before else (row, ru)
            if hi[S.V_PGOFF] != lo[S.V_PGOFF] + lo[S.V_END] - lo[S.V_START]:
                continue
            av = int(ru[S.V_ANON_VMA])
            if av and av not in self.forked_anon and not row[S.V_ANON_VMA]:
                ks.vmas[v, S.V_ANON_VMA] = av

    def region_vmas(self, r: int) -> list[int]:
        ks = self.ks
        vs = np.flatnonzero((ks.vmas[:, S.V_ALIVE] == 1) & (ks.vmas[:, S.V_REGION] == r))
        return sorted((int(v) for v in vs), key=lambda v: int(ks.vmas[v, S.V_START]))

    def mm_vmas(self, mm: int) -> list[int]:
        ks = self.ks
        vs = np.flatnonzero((ks.vmas[:, S.V_ALIVE] == 1) & (ks.vmas[:, S.V_MM] == mm))
        return sorted((int(v) for v in vs), key=lambda v: int(ks.vmas[v, S.V_START]))

    def find_vma(self, mm: int, vpn: int) -> int:
        """``find_vma`` restricted to a VMA containing vpn, or -1."""
        r = self.find_region(mm, vpn)
        if r < 0:
            return -1
        row = self.ks.regions[r]
        return int(self.ks.pt_vma[int(row[S.R_PT]) + vpn - int(row[S.R_START])])

    def find_region(self, mm: int, vpn: int) -> int:
        """The region whose page-table slice holds a live VMA at vpn, else one whose
        range merely contains vpn, else -1.  Regions may overlap: a mapping placed with a
        fixed address into a hole that munmap punched in an older region gets a region of
        its own inside the older one's range (the older one's slots there stay dead)."""
        ks = self.ks
        dead = -1
        for r in self.mms[mm].regions:
            row = ks.regions[r]
            if row[S.R_START] <= vpn < row[S.R_END]:
                if ks.pt_vma[int(row[S.R_PT]) + vpn - int(row[S.R_START])] >= 0:
                    return r
                if dead < 0:
                    dead = r
        return dead

    def _live_run(self, r: int, vpn: int, n: int) -> int:
        """How many of the n pages from vpn have a VMA in region r's slice (at least 1:
        a dead first slot is left to the fault handler, which says SIGSEGV)."""
        ks = self.ks
        lo = int(ks.regions[r, S.R_PT]) + vpn - int(ks.regions[r, S.R_START])
        dead = np.flatnonzero(ks.pt_vma[lo: lo + n] < 0)
        return max(1, int(dead[0])) if dead.size else n

    def pte(self, mm: int, vpn: int) -> int:
        """What the page table holds at vpn: a page row, PT_NONE, PT_ZERO or PT_SWAP."""
        r = self.find_region(mm, vpn)
        if r < 0:
            return S.PT_NONE
        row = self.ks.regions[r]
        return int(self.ks.pt_page[int(row[S.R_PT]) + vpn - int(row[S.R_START])])

    def munmap(self, mm: int, vpn: int, npages: int) -> None:
        """Unmap [vpn, vpn+npages): drop the mappings, free private pages nobody else maps,
        split VMAs at the edges, free page tables no VMA needs any more."""
        ks = self.ks
        end = vpn + npages
        for r in list(self.mms[mm].regions):
            row = ks.regions[r]
            rs, re_ = int(row[S.R_START]), int(row[S.R_END])
            a, b = max(vpn, rs), min(end, re_)
            if a >= b:
                continue
            base = int(row[S.R_PT])
            if getattr(self, "thp_pmds", None):
                from numasim.mm.huge_memory import zap_huge_pmds

                zap_huge_pmds(self, mm, r, a, b)
            for i in range(a - rs, b - rs):
                pg = int(ks.pt_page[base + i])
                if pg >= 0:
                    self._unmap_page(pg)
                ks.pt_page[base + i] = S.PT_NONE
            for v in self.region_vmas(r):
                vs, ve = int(ks.vmas[v, S.V_START]), int(ks.vmas[v, S.V_END])
                if ve <= a or vs >= b:
                    continue
                if vs < a and ve > b:  # hole in the middle: split in three, drop the middle
                    tail = self.split_vma(v, b)
                    self.split_vma(v, a)
                    mid = self._vma_at(r, a)
                    self._drop_vma(mid)
                    del tail
                elif vs < a:
                    self.split_vma(v, a)
                    self._drop_vma(self._vma_at(r, a))
                elif ve > b:
                    self.split_vma(v, b)
                    self._drop_vma(v)
                else:
                    self._drop_vma(v)
            ks.pt_vma[base + a - rs: base + b - rs] = -1
            if not (ks.pt_vma[base: base + re_ - rs] >= 0).any():
                ks.regions[r, S.R_ALIVE] = 0
                self.mms[mm].regions.remove(r)
        self._free_pgtables(mm)

    def _vma_at(self, r: int, vpn: int) -> int:
        row = self.ks.regions[r]
        return int(self.ks.pt_vma[int(row[S.R_PT]) + vpn - int(row[S.R_START])])

    def _drop_vma(self, v: int) -> None:
        self.put_policy(int(self.ks.vmas[v, S.V_POLICY]))
        self.ks.vmas[v, S.V_ALIVE] = 0

    def _unmap_page(self, pg: int) -> None:
        ks = self.ks
        ks.pages[pg, S.PG_MAPCOUNT] -= 1
        if ks.pages[pg, S.PG_MAPCOUNT] <= 0 and ks.pages[pg, S.PG_KIND] == S.PGK_ANON:
            self.core.free_page(ks.zones, ks.vmstat, ks.pages, pg)

    def split_vma(self, v: int, at: int) -> int:
        """``split_vma``: VMA v becomes [start, at) and a new VMA [at, end) is returned,
        with a copy of the policy and the same anon_vma."""
        ks = self.ks
        row = ks.vmas[v]
        nv = ks.new_vma()
        row = ks.vmas[v]  # the table may have grown
        ks.vmas[nv] = row
        ks.vmas[nv, S.V_START] = at
        ks.vmas[nv, S.V_PGOFF] = row[S.V_PGOFF] + (at - row[S.V_START])
        ks.vmas[nv, S.V_POLICY] = self.dup_policy(int(row[S.V_POLICY]))
        ks.vmas[v, S.V_END] = at
        r = int(row[S.V_REGION])
        base, rs = int(ks.regions[r, S.R_PT]), int(ks.regions[r, S.R_START])
        end = int(ks.vmas[nv, S.V_END])
        ks.pt_vma[base + at - rs: base + end - rs] = nv
        return nv

    def merge_vmas(self, a: int, b: int) -> None:
        """b (right after a) joins a."""
        ks = self.ks
        r = int(ks.vmas[b, S.V_REGION])
        base, rs = int(ks.regions[r, S.R_PT]), int(ks.regions[r, S.R_START])
        bs, be = int(ks.vmas[b, S.V_START]), int(ks.vmas[b, S.V_END])
        ks.vmas[a, S.V_END] = be
        if ks.vmas[a, S.V_ANON_VMA] == 0:
            ks.vmas[a, S.V_ANON_VMA] = ks.vmas[b, S.V_ANON_VMA]
        ks.pt_vma[base + bs - rs: base + be - rs] = a
        self._drop_vma(b)

    def _free_pgtables(self, mm: int, everything: bool = False) -> None:
        """``free_pgtables``: page-table pages whose range no VMA of the mm touches any more."""
        ks = self.ks
        spans = [(int(ks.vmas[v, S.V_START]), int(ks.vmas[v, S.V_END]))
                 for v in self.mm_vmas(mm)] if not everything else []
        for key, pg in ks.pgt_items(mm):
            level = (key >> 36) & 0xF
            idx = key & ((1 << 36) - 1)
            shift = {S.PGT_PTE: 9, S.PGT_PMD: 18, S.PGT_PUD: 27}[level]
            lo, hi = idx << shift, (idx + 1) << shift
            if everything or not any(s < hi and lo < e for s, e in spans):
                if pg >= 0:
                    self.core.free_page(ks.zones, ks.vmstat, ks.pages, pg)
                ks.pgt_delete(key)

    # ------------------------------------------------------------ faults
    def touch(self, t: int, vpn: int, npages: int, write: bool = True) -> int:
        """Access one byte in each page of [vpn, vpn+npages) as task t.

        Returns the number of pages newly allocated.  Raises :class:`Segfault` for a page
        with no VMA (or past the end of a file), :class:`TaskKilled` when the OOM killer
        chose this task.
        """
        ks = self.ks
        mm = self.task_mm(t)
        done_total = 0
        allocated = 0
        oom_mode = core.OOM_MAY
        vm = reclaim(self)
        while done_total < npages:
            cur = vpn + done_total
            r = self.find_region(mm, cur)
            if r < 0:
                raise Segfault(cur)
            rend = int(ks.regions[r, S.R_END])
            n = self._live_run(r, cur, min(npages - done_total, rend - cur))
            if oom_mode == core.OOM_VICTIM:
                # the OOM killer chose this task while it faulted: the fault it is in
                # may still take a page from the reserves, then the pending SIGKILL is
                # delivered on the way back to user space; it touches nothing more
                n = 1
            if ks.sysvars[S.SV_THP]:
                n, handled = self._huge_faults(t, mm, r, cur, n, write)
                if handled:
                    done_total += handled
                    allocated += 512 if write else 0
                    continue
            if vm.awake:  # reclaim hook: kswapd runs beside the task, chunk by chunk
                n = min(n, KSWAPD_CHUNK)
            ks.ensure_pages(n + n // 256 + 64)  # data pages + page tables
            st = self.core.handle_mm_fault_range(ks.core_args(), t, r, cur, n, int(write),
                                                 oom_mode, self._res)
            done = int(self._res[core.R_DONE])
            done_total += done
            allocated += int(self._res[core.R_ALLOCATED])
            vm.touched(t, r, cur, done, int(self._res[core.R_ALLOCATED]))  # reclaim hook
            if st == S.FAULT_OK:
                if oom_mode == core.OOM_VICTIM:
                    self.exit(t, 9)
                    raise TaskKilled(t)
                continue
            if st == S.FAULT_NEED_ROOM:
                ks.ensure_pages(ks.pages.shape[0])
                continue
            if st in (S.FAULT_SEGV, S.FAULT_SIGBUS):
                raise Segfault(vpn + done_total, 7 if st == S.FAULT_SIGBUS else 11)
            if st == S.FAULT_OOM:
                if oom_mode == core.OOM_VICTIM:  # not even the reserves had a page: die
                    self.exit(t, 9)
                    raise TaskKilled(t)
                mask = None
                if self._res[core.R_MASK_KIND] == core.MASK_POLICY:
                    mask = set(ks.policy_nodes(int(self._res[core.R_MASK_IDX])))
                if vm.direct_reclaim(t, mask):  # reclaim hook: try_to_free_pages, retry
                    continue
                victim = self.oom_kill(t, mask)
                if victim == t:
                    oom_mode = core.OOM_VICTIM
                elif victim < 0:
                    raise TaskKilled(t)
        vm.kswapd_run()  # reclaim hook: kswapd finishes before the next command
        return allocated

    def _huge_faults(self, t: int, mm: int, r: int, cur: int, n: int, write: bool
                     ) -> tuple[int, int]:
        """THP on: (pages the 4 KiB path should take from ``cur``, pages the huge fault
        at ``cur`` mapped).  A write into a PMD-mapped huge zero page splits it first."""
        from numasim.mm import huge_memory as H

        if write:
            H.split_zero_pmds(self, mm, r, cur, cur + n)
        k0 = H.next_huge_fault(self, mm, r, cur, n, write)
        if k0 > 0:
            return k0, 0
        done = H.do_huge_pmd_anonymous_page(self, t, r, cur, write)
        if done:
            return 0, min(done, n)
        # fallback: the 4 KiB path for the rest of this block
        return min(n, H.HPAGE_PMD_NR - (cur & (H.HPAGE_PMD_NR - 1))), 0

    # ------------------------------------------------------- page cache
    def shared_policy_at(self, o: int, index: int) -> int:
        """``mpol_shared_policy_lookup``: the shared-policy row covering page ``index`` of
        object ``o``, or -1."""
        sp = self.ks.sp
        hit = np.flatnonzero((sp[:, S.S_ALIVE] == 1) & (sp[:, S.S_OBJ] == o)
                             & (sp[:, S.S_START] <= index) & (sp[:, S.S_END] > index))
        return int(sp[hit[0], S.S_POLICY]) if hit.size else -1

    def pwrite(self, t: int, o: int, index: int, npages: int) -> int:
        """``write(2)`` of whole pages into a file: page-cache pages allocated without a VMA.

        shmem (tmpfs, memfd) asks its shared policy, else the task policy, with the
        interleave index inode + page index (``shmem_alloc_folio``); other page cache
        (ramfs) uses the task policy and its interleave counter (``filemap_alloc_folio``).
        Returns the number of pages allocated."""
        ks = self.ks
        kind = int(ks.objs[o, S.O_KIND])
        if index + npages > int(ks.objs[o, S.O_NPAGES]):
            ks.grow_obj(o, index + npages)
        ks.objs[o, S.O_SIZE] = max(int(ks.objs[o, S.O_SIZE]), index + npages)
        ino = int(ks.objs[o, S.O_INO])
        allocated = 0
        for i in range(index, index + npages):
            slot = int(ks.objs[o, S.O_BASE]) + i
            if ks.obj_pages[slot] >= 0:
                continue
            ks.ensure_pages(4)
            if kind == S.KIND_SHMEM:
                p = self.shared_policy_at(o, i)
                if p < 0:
                    p = int(ks.tasks[t, S.T_POLICY])
                ilx, pk = ino + i, S.PGK_SHMEM
            else:
                p, ilx, pk = int(ks.tasks[t, S.T_POLICY]), core.NO_ILX, S.PGK_FILE
            while True:
                pg = self.core.alloc_pages_mpol(ks.core_args(), t, GFP_USER_MOVABLE, 0, p, ilx,
                                                pk, o, i, core.OOM_MAY, self._res)
                if pg != core.ALLOC_OOM:
                    break
                victim = self.oom_kill(t)
                if victim == t or victim < 0:
                    self.exit(t, 9)
                    raise TaskKilled(t)
            if pg < 0:
                break
            if ks.obj_pages[slot] == S.PT_SWAP:
                ks.vmstat[S.VM_SWPIN] += 1
            ks.pages[pg, S.PG_MAPCOUNT] = 0
            ks.obj_pages[slot] = pg
            allocated += 1
        return allocated

    def temp_page(self, t: int, gfp: int = GFP_KERNEL) -> int:
        """A page the kernel allocates for itself during a system call and frees before
        returning (``__get_free_page``, e.g. mincore's buffer): it follows the task policy
        with the interleave counter and moves numastat like any allocation.  Returns its
        node, or -1 when nothing could be allocated."""
        ks = self.ks
        ks.ensure_pages(4)
        pg = self.core.alloc_pages_mpol(ks.core_args(), t, gfp, 0, int(ks.tasks[t, S.T_POLICY]),
                                        core.NO_ILX, S.PGK_KERNEL, -1, -1, core.OOM_NEVER,
                                        self._res)
        if pg < 0:
            return -1
        node = int(ks.pages[pg, S.PG_NODE])
        self.core.free_page(ks.zones, ks.vmstat, ks.pages, pg)
        return node

    def swapout(self, t: int, vpn: int, npages: int) -> int:
        """Push the pages of [vpn, vpn+npages) out to swap (as reclaim would): private
        pages mapped only here and shmem pages leave memory; the next access faults them
        back in under the policy in force then (the policy is not remembered)."""
        ks = self.ks
        mm = self.task_mm(t)
        out = 0
        if getattr(self, "thp_pmds", None):  # swap-out splits a THP first (split_folio)
            from numasim.mm.huge_memory import split_huge_range

            for r in list(self.mms[mm].regions):
                split_huge_range(self, mm, r, vpn, vpn + npages)
        for x in range(vpn, vpn + npages):
            r = self.find_region(mm, x)
            if r < 0:
                continue
            slot = int(ks.regions[r, S.R_PT]) + x - int(ks.regions[r, S.R_START])
            pg = int(ks.pt_page[slot])
            if pg < 0:
                continue
            kind = int(ks.pages[pg, S.PG_KIND])
            if kind == S.PGK_ANON:
                if ks.pages[pg, S.PG_MAPCOUNT] > 1:
                    continue
                self.core.free_page(ks.zones, ks.vmstat, ks.pages, pg)
                ks.pt_page[slot] = S.PT_SWAP
            elif kind == S.PGK_SHMEM:
                o = int(ks.pages[pg, S.PG_OBJ])
                oslot = int(ks.objs[o, S.O_BASE]) + int(ks.pages[pg, S.PG_INDEX])
                hits = (ks.pt_page[: ks.pt_used] == pg).nonzero()[0]
                ks.pt_page[hits] = S.PT_NONE
                ks.obj_pages[oslot] = S.PT_SWAP
                self.core.free_page(ks.zones, ks.vmstat, ks.pages, pg)
            else:
                continue
            ks.vmstat[S.VM_SWPOUT] += 1
            out += 1
        return out

    # --------------------------------------------------------------- OOM
    def rss(self, t: int) -> int:
        ks = self.ks
        mm = self.task_mm(t)
        total = 0
        for r in self.mms.get(mm, MM(mm)).regions:
            row = ks.regions[r]
            base, n = int(row[S.R_PT]), int(row[S.R_END] - row[S.R_START])
            total += int((ks.pt_page[base: base + n] >= 0).sum())
        return total

    def oom_kill(self, t: int, nodemask: set[int] | None = None) -> int:
        """``out_of_memory``: choose and kill a victim; returns its id (-1: nobody).

        ``nodemask`` is the failed allocation's BIND mask (None: no policy mask).  As in
        ``constrained_alloc``: a mask that does not cover every memory node makes it
        CONSTRAINT_MEMORY_POLICY (only tasks whose policy may use those nodes are
        candidates, ``mempolicy_in_oom_domain``, and the badness scale is the mask's
        memory), a cpuset narrower than all memory CONSTRAINT_CPUSET, else CONSTRAINT_NONE.
        ``oom_badness`` = resident pages + page-table pages + oom_score_adj * scale / 1000;
        the largest is killed.  The kernel log gets the usual three lines."""
        ks = self.ks
        mem_nodes = {int(n) for n in np.flatnonzero(ks.nodeinfo[:, S.N_MEMORY])}
        mems = {int(n) for n in np.flatnonzero(ks.task_mems[t])}
        if nodemask is not None and not mem_nodes <= set(nodemask):
            constraint = "CONSTRAINT_MEMORY_POLICY"
            scale_nodes = set(nodemask)
        elif mems != mem_nodes:
            constraint = "CONSTRAINT_CPUSET"
            scale_nodes = mems
        else:
            constraint = "CONSTRAINT_NONE"
            scale_nodes = mem_nodes
        scale = int(sum(ks.zones[z, S.Z_MANAGED] for z in range(ks.zones.shape[0])
                        if int(ks.zones[z, S.Z_NODE]) in scale_nodes))
        best, best_score = -1, None
        for u in range(ks.tasks.shape[0]):
            if not ks.tasks[u, S.T_ALIVE]:
                continue
            adj = int(ks.tasks[u, S.T_OOM_SCORE_ADJ])
            if adj == -1000:
                continue
            p = int(ks.tasks[u, S.T_POLICY])
            if constraint == "CONSTRAINT_MEMORY_POLICY" and p >= 0 and \
                    int(ks.policies[p, S.P_MODE]) == MPOL_BIND and \
                    not set(ks.policy_nodes(p)) & set(nodemask or ()):
                continue
            if constraint == "CONSTRAINT_CPUSET" and \
                    not {int(n) for n in np.flatnonzero(ks.task_mems[u])} & mems:
                continue
            score = self.rss(u) + self.pgtable_pages(u) + adj * scale // 1000
            if best_score is None or score > best_score:
                best, best_score = u, score
        ks.vmstat[S.VM_OOM] += 1
        info = self.task_info(t)
        self.dmesg.append(f"{info['comm']} invoked oom-killer: gfp_mask=0x140dca"
                          "(GFP_HIGHUSER_MOVABLE|__GFP_COMP|__GFP_ZERO), order=0, "
                          f"oom_score_adj={int(ks.tasks[t, S.T_OOM_SCORE_ADJ])}")
        if best < 0:
            self.dmesg.append("Out of memory and no killable processes...")
            self.console.append("Out of memory and no killable processes...")
            return -1
        v = self.task_info(best)
        from numasim.bitmap import format_list

        nm = format_list(nodemask or ()) if constraint == "CONSTRAINT_MEMORY_POLICY" \
            else "(null)"
        self.dmesg.append(f"oom-kill:constraint={constraint},nodemask={nm},"
                          f"cpuset={info['cpuset']},mems_allowed={format_list(mems)},"
                          f"global_oom,task_memcg=/,task={v['comm']},pid={v['pid']},"
                          f"uid={v['uid']}")
        rss = self.rss(best)
        shmem = self.rss_shmem(best)
        msg = (f"Out of memory: Killed process {v['pid']} ({v['comm']}) "
               f"total-vm:{self.total_vm(best) * 4}kB, anon-rss:{(rss - shmem) * 4}kB, "
               f"file-rss:0kB, shmem-rss:{shmem * 4}kB, UID:{v['uid']} "
               f"pgtables:{self.pgtable_pages(best) * 4}kB "
               f"oom_score_adj:{int(ks.tasks[best, S.T_OOM_SCORE_ADJ])}")
        self.dmesg.append(msg)
        self.console.append(msg)
        if best != t:
            self.exit(best, 9)
        return best

    def task_info(self, t: int) -> dict:
        """What the kernel log says about a task: pid, comm, uid and cpuset name (a caller
        such as the script runner fills :attr:`task_names`)."""
        d = {"pid": t, "comm": "task", "uid": 0, "cpuset": "/"}
        d.update(self.task_names.get(t, {}))
        return d

    def total_vm(self, t: int) -> int:
        ks = self.ks
        return int(sum(int(ks.vmas[v, S.V_END] - ks.vmas[v, S.V_START])
                       for v in self.mm_vmas(self.task_mm(t))))

    def rss_shmem(self, t: int) -> int:
        ks = self.ks
        total = 0
        for r in self.mms.get(self.task_mm(t), MM(0)).regions:
            row = ks.regions[r]
            base, n = int(row[S.R_PT]), int(row[S.R_END] - row[S.R_START])
            pt = ks.pt_page[base: base + n]
            pt = pt[pt >= 0]
            total += int((ks.pages[pt, S.PG_KIND] == S.PGK_SHMEM).sum())
        return total

    def pgtable_pages(self, t: int) -> int:
        return sum(1 for _k, pg in self.ks.pgt_items(self.task_mm(t)) if pg >= 0)

    # ------------------------------------------------------------ views
    def page_node(self, t: int, vpn: int) -> int | None:
        """Node of the page mapped at vpn in t's address space, None if nothing is mapped."""
        pg = self.pte(self.task_mm(t), vpn)
        if pg == S.PT_ZERO:
            return int(self.ks.sysvars[S.SV_ZERO_PAGE_NODE])
        if pg < 0:
            return None
        return int(self.ks.pages[pg, S.PG_NODE])

    def numastat(self) -> dict[int, dict[str, int]]:
        from numasim.mm.constants import NUMASTAT_NAMES

        return {nid: dict(zip(NUMASTAT_NAMES, map(int, self.ks.numastat[nid]), strict=True))
                for nid in self.machine.node_ids}
