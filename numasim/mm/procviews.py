"""What a student reads: ``/proc/PID/numa_maps``, the ``numastat`` tool's tables, and an
explanation of one page's placement.

* :func:`numa_maps` prints one line per VMA as ``show_numa_map`` (fs/proc/task_mmu.c) does:
  ``<start> <policy>[ file=<path>][ anon=N][ dirty=N][ mapped=N][ mapmax=N][ active=N]
  N<nid>=<pages>... kernelpagesize_kB=4``.  The policy is the VMA's (for shmem: the shared
  policy at the VMA's first page), else the task's, through ``mpol_to_str``.
* :func:`numastat_table` prints what ``numastat`` (numactl's numastat.c) prints: with no
  options the legacy table of raw counts, ``-n`` the same in MB with a Total column, ``-m``
  the per-node meminfo table.
* :func:`explain_page` walks, in plain Python over the kernel's arrays, the decision the
  allocator core would make for one address now: policy scope, mode and nodemask,
  interleave index and target, start node, cpuset, every zone of the zonelist tried
  against its watermark plus lowmem_reserve, and the zone used.  It does not call the
  numba core; tests hold the two together.

Model limits that show here (stated once): numasim keeps no LRU lists, so ``active=``
counts only unevictable (ramfs) pages -- on Linux 6.12 pages still sitting in a CPU's
LRU-add batch also count as active, on 6.1 they do not; no swap cache; no heap/stack/
file-backed program VMAs (only what the simulation mapped); a shmem/file page is counted
dirty when numasim cannot tell (see :func:`numa_maps`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from numasim.mm import state as S
from numasim.mm.constants import (
    GFP_ATOMIC,
    GFP_DMA,
    GFP_DMA32,
    GFP_KERNEL,
    GFP_NAMES,
    GFP_THISNODE,
    GFP_USER_MOVABLE,
    KGEN_2_6_7,
    KGEN_6_1,
    MAX_NUMNODES,
    MODE_NAMES,
    MPOL_BIND,
    MPOL_INTERLEAVE,
    MPOL_PREFERRED,
    MPOL_PREFERRED_MANY,
    MPOL_WEIGHTED_INTERLEAVE,
    NUMASTAT_NAMES,
)
from numasim.mm.kernel import PAGE_SHIFT, Kernel
from numasim.mm.mempolicy import mpol_to_str
from numasim.topology.model import ZoneType

ZONE_NORMAL = int(ZoneType.NORMAL)
ZONE_MOVABLE = int(ZoneType.MOVABLE)


# ===================================================================== numa_maps
def _escape(path: str) -> str:
    """``seq_file_path(m, file, "\\n\\t= ")``: those four characters as ``\\ooo``."""
    return "".join(f"\\{ord(c):03o}" if c in "\n\t= " else c for c in path)


def file_name(kernel: Kernel, obj: int) -> str:
    """The path ``/proc`` shows for a mapped object: ``/dev/zero (deleted)`` for shared
    anonymous memory, ``/memfd:NAME (deleted)``, ``/SYSV<key> (deleted)`` for SysV shm, the
    file's path otherwise (``(deleted)`` once unlinked, when numasim still knows the name)."""
    for f in kernel.files.values():
        if f.obj == obj:
            if f.fs == "memfd":
                name = f.path.lstrip("/")
                name = name[len("memfd:"):] if name.startswith("memfd:") else name
                return f"/memfd:{name} (deleted)"
            if f.fs == "shm":
                name = f.path if f.path.startswith("/SYSV") else "/SYSV00000000"
                return f"{name} (deleted)"
            if f.fs == "anon_shared":
                return "/dev/zero (deleted)"
            return f.path
    if int(kernel.ks.objs[obj, S.O_KIND]) == S.KIND_SHMEM:
        return "/dev/zero (deleted)"
    return "(unknown) (deleted)"


def shared_policy_at(kernel: Kernel, obj: int, index: int) -> int:
    """``mpol_shared_policy_lookup``: the shared-policy row covering page ``index`` of a
    shmem object, -1 if none."""
    sp = kernel.ks.sp
    hit = np.flatnonzero((sp[:, S.S_ALIVE] == 1) & (sp[:, S.S_OBJ] == obj)
                         & (sp[:, S.S_START] <= index) & (sp[:, S.S_END] > index))
    return int(sp[hit[0], S.S_POLICY]) if hit.size else -1


def vma_policy(kernel: Kernel, v: int, vpn: int | None = None) -> int:
    """``__get_vma_policy`` at ``vpn`` (default: the VMA's start): the shared policy for a
    shmem VMA, the VMA's own policy otherwise; -1 when there is none."""
    ks = kernel.ks
    start = int(ks.vmas[v, S.V_START])
    vpn = start if vpn is None else vpn
    if int(ks.vmas[v, S.V_KIND]) == S.KIND_SHMEM:
        index = int(ks.vmas[v, S.V_PGOFF]) + vpn - start
        return shared_policy_at(kernel, int(ks.vmas[v, S.V_OBJ]), index)
    return int(ks.vmas[v, S.V_POLICY])


def policy_str(kernel: Kernel, p: int) -> str:
    """``mpol_to_str`` of a policy row (-1: ``default``)."""
    if p < 0:
        return "default"
    ks = kernel.ks
    return mpol_to_str(int(ks.policies[p, S.P_MODE]), int(ks.policies[p, S.P_FLAGS]),
                       ks.policy_nodes(p))


def _vma_pages(kernel: Kernel, v: int) -> np.ndarray:
    """Page rows mapped in the VMA (present PTEs; the zero page and swap entries skipped)."""
    ks = kernel.ks
    r = int(ks.vmas[v, S.V_REGION])
    base, rs = int(ks.regions[r, S.R_PT]), int(ks.regions[r, S.R_START])
    lo = base + int(ks.vmas[v, S.V_START]) - rs
    hi = base + int(ks.vmas[v, S.V_END]) - rs
    pt = ks.pt_page[lo:hi]
    return pt[pt >= 0]


def numa_maps_line(kernel: Kernel, task: int, v: int, *,
                   names: dict[int, str] | None = None) -> str:
    """The ``/proc/PID/numa_maps`` line of VMA ``v``.  ``names`` maps objects to the path
    to print (before escaping) when the caller knows better than :func:`file_name` (e.g. a
    file unlinked while mapped: ``/mnt/tmpfs/f (deleted)``).

    ``dirty``: anonymous pages are always written in numasim (a read fault maps the zero
    page); for shmem/file pages numasim keeps a dirty bit only if the state has a
    ``PG_DIRTY`` column, otherwise it counts them dirty (so a page only ever read shows as
    dirty where Linux shows it clean).
    """
    ks = kernel.ks
    p = vma_policy(kernel, v)
    if p < 0:
        p = int(ks.tasks[task, S.T_POLICY])
    out = f"{int(ks.vmas[v, S.V_START]) << PAGE_SHIFT:08x} {policy_str(kernel, p)}"
    obj = int(ks.vmas[v, S.V_OBJ])
    if int(ks.vmas[v, S.V_KIND]) != S.KIND_ANON and obj >= 0:
        name = (names or {}).get(obj) or file_name(kernel, obj)
        out += " file=" + _escape(name)
    rows = _vma_pages(kernel, v)
    if rows.size == 0:
        return out
    pages = ks.pages[rows]
    kind = pages[:, S.PG_KIND]
    anon = int((kind == S.PGK_ANON).sum())
    dcol = getattr(S, "PG_DIRTY", None)
    if dcol is None:
        dirty = rows.size
    else:
        dirty = int(((kind == S.PGK_ANON) | (pages[:, dcol] != 0)).sum())
    active = int((kind == S.PGK_FILE).sum())  # ramfs pages are unevictable
    mapmax = int(pages[:, S.PG_MAPCOUNT].max())
    n = rows.size
    if anon:
        out += f" anon={anon}"
    if dirty:
        out += f" dirty={dirty}"
    if n != anon and n != dirty:
        out += f" mapped={n}"
    if mapmax > 1:
        out += f" mapmax={mapmax}"
    if active < n:
        out += f" active={active}"
    nodes = pages[:, S.PG_NODE]
    for nid in kernel.machine.memory_nodes:
        c = int((nodes == nid).sum())
        if c:
            out += f" N{nid}={c}"
    return out + f" kernelpagesize_kB={kernel.machine.page_size >> 10}"


def numa_maps(kernel: Kernel, task: int, *, names: dict[int, str] | None = None) -> list[str]:
    """``/proc/PID/numa_maps`` of ``task``: one line per VMA, by address."""
    return [numa_maps_line(kernel, task, v, names=names)
            for v in kernel.mm_vmas(kernel.task_mm(task))]


# ===================================================================== numastat
@dataclass
class _Col:
    width: int
    justify: str  # 'l' or 'r'
    always: bool = True


def _render(rows: list[list[str | None]], cols: list[_Col], header_rows: int,
            screen_width: int) -> str:
    """numastat.c's ``display_table``: cells cut to the column width and justified; data
    columns folded into sections of at most ``screen_width`` characters, the row labels
    repeated, sections separated by an empty line.  A cell ``"\\x00-"`` is a rule of
    width-1 dashes."""

    def cell(text: str | None, c: _Col) -> str:
        if text is None:
            text = ""
        elif text == "\x00-":
            text = "-" * (c.width - 1)
        text = text[:c.width]
        return text.ljust(c.width) if c.justify == "l" else text.rjust(c.width)

    out: list[str] = []
    data_col = 1
    first = True
    while data_col < len(cols):
        if not first:
            out.append("")
        first = False
        col = data_col
        for row in rows:
            line = cell(row[0], cols[0])
            width = cols[0].width
            col = data_col
            while True:
                line += cell(row[col], cols[col])
                width += cols[col].width
                col += 1
                if col >= len(cols) or width + cols[col].width > screen_width:
                    break
            out.append(line)
        data_col = col
    return "\n".join(out) + "\n"


def _node_ids(kernel: Kernel, nodes) -> list[int]:
    ids = sorted(kernel.machine.node_ids if nodes is None else nodes)
    bad = [n for n in ids if n not in kernel.machine.node_ids]
    if bad:
        from numasim.errors import NumasimError

        raise NumasimError(f"no node {bad[0]} on this machine", field="nodes",
                           hint="nodes: " + ",".join(map(str, kernel.machine.node_ids)))
    return ids


# every row label of ``numastat -m`` (numastat.c's system_meminfo): ``-c`` sizes the label
# column over all of them, shown or not
MEMINFO_LABELS = (
    "MemTotal", "MemFree", "MemUsed", "HighTotal", "HighFree", "LowTotal", "LowFree",
    "Active", "Inactive", "Active(anon)", "Inactive(anon)", "Active(file)",
    "Inactive(file)", "Unevictable", "Mlocked", "Dirty", "Writeback", "FilePages", "Mapped",
    "AnonPages", "Shmem", "KernelStack", "PageTables", "NFS_Unstable", "Bounce",
    "WritebackTmp", "Slab", "SReclaimable", "SUnreclaim", "AnonHugePages", "ShmemHugePages",
    "ShmemPmdMapped", "HugePages_Total", "HugePages_Free", "HugePages_Surp", "KReclaimable")


def _meminfo_rows(kernel: Kernel, ids: list[int]) -> list[tuple[str, list[float]]]:
    """Per-node meminfo numasim can tell, in kB, in numastat's row order."""
    ks = kernel.ks
    used = int(ks.sysvars[S.SV_NEXT_PAGE])
    live = ks.pages[:used]
    live = live[live[:, S.PG_ZONE] >= 0]
    kb = kernel.machine.page_size >> 10
    rows: dict[str, list[float]] = {k: [] for k in (
        "MemTotal", "MemFree", "MemUsed", "FilePages", "AnonPages", "Shmem", "PageTables")}
    for nid in ids:
        sel = ks.zones[:, S.Z_NODE] == nid
        total = int(ks.zones[sel, S.Z_MANAGED].sum()) * kb
        free = int(ks.zones[sel, S.Z_FREE].sum()) * kb
        mine = live[live[:, S.PG_NODE] == nid]
        npages = (1 << mine[:, S.PG_ORDER]) if mine.size else np.zeros(0, dtype=np.int64)

        def count(*kinds: int, mine=mine, npages=npages) -> int:
            return int(npages[np.isin(mine[:, S.PG_KIND], kinds)].sum()) * kb

        rows["MemTotal"].append(total)
        rows["MemFree"].append(free)
        rows["MemUsed"].append(total - free)
        rows["FilePages"].append(count(S.PGK_FILE, S.PGK_SHMEM))
        rows["AnonPages"].append(count(S.PGK_ANON))
        rows["Shmem"].append(count(S.PGK_SHMEM))
        rows["PageTables"].append(count(S.PGK_PGTABLE))
    if int(ks.sysvars[S.SV_THP]) or getattr(kernel, "thp_pmds", None):
        # with THP on: PMD-mapped THPs per node (meminfo's AnonHugePages)
        from numasim.mm.huge_memory import anon_huge_pages

        huge = anon_huge_pages(kernel)
        rows["AnonHugePages"] = [huge.get(nid, 0) * kb for nid in ids]
    return list(rows.items())


def node_meminfo_lines(kernel: Kernel, nid: int) -> list[str]:
    """``/sys/devices/system/node/nodeN/meminfo`` as ``node_read_meminfo`` prints it
    (``Node N Label:`` padded to 16, the value in 8 columns, kB), only the rows numasim
    keeps (MemTotal, MemFree, MemUsed, FilePages, AnonPages, Shmem, PageTables and, with THP
    on, AnonHugePages)."""
    return [f"Node {nid} {label + ':':<16}{int(vals[0]):>8} kB"
            for label, vals in _meminfo_rows(kernel, [nid])]


def numastat_table(kernel: Kernel, *, mode: str = "legacy", nodes=None,
                   counters: np.ndarray | None = None, compress: bool = False,
                   screen_width: int = 10_000_000,
                   meminfo_kB: dict[str, list[int]] | None = None) -> str:
    """The ``numastat`` tool's output.

    ``mode``: ``legacy`` (no arguments: ``node0 node1 ...`` header, one row per counter of
    /sys/devices/system/node/nodeN/numastat, raw counts, 16-wide columns, no total),
    ``mb`` (``numastat -n``: ``Per-node numastat info (in MBs):``, ``Node 0 ... Total``,
    counts x page size in MB with two decimals) or ``meminfo`` (``numastat -m``; only the
    rows numasim models: MemTotal, MemFree, MemUsed, FilePages, AnonPages, Shmem,
    PageTables).  ``counters`` replaces the kernel's numastat array (e.g. a delta since a
    mark, indexed by node id); ``meminfo_kB`` replaces the meminfo rows ({label: kB per
    shown node}); ``compress`` is ``-c``; ``screen_width`` folds columns like
    ``NUMASTAT_WIDTH`` (default: not a terminal, no folding).
    """
    ids = _node_ids(kernel, nodes)
    stats = kernel.ks.numastat if counters is None else np.asarray(counters)
    page = kernel.machine.page_size
    if mode == "legacy":
        cols = [_Col(16, "l")] + [_Col(16, "r") for _ in ids]
        rows: list[list[str | None]] = [[None] + [f"node{n}" for n in ids]]
        for j, name in enumerate(NUMASTAT_NAMES):
            rows.append([name] + [f"{float(stats[n, j]):.0f}" for n in ids])
        return _render(rows, cols, 1, screen_width)
    if mode == "mb":
        title = "\nPer-node numastat info (in MBs):\n"
        labels = ("Numa_Hit", "Numa_Miss", "Numa_Foreign", "Interleave_Hit", "Local_Node",
                  "Other_Node")
        data = [(lab, [float(stats[n, j]) * page / (1 << 20) for n in ids])
                for j, lab in enumerate(labels)]
    elif mode == "meminfo":
        title = "\nPer-node system memory usage (in MBs):\n"
        src = _meminfo_rows(kernel, ids) if meminfo_kB is None else [
            (lab, meminfo_kB[lab]) for lab in MEMINFO_LABELS if lab in meminfo_kB]
        data = [(lab, [v * 1024 / (1 << 20) for v in vals]) for lab, vals in src]
    else:
        from numasim.errors import NumasimError

        raise NumasimError(f"unknown numastat mode {mode!r}", field="mode",
                           hint="valid: legacy, mb, meminfo")
    places = 0 if compress else 2
    rows = [[None] + [f"Node {n}" for n in ids] + ["Total"],
            [None] + ["\x00-"] * (len(ids) + 1)]
    for lab, vals in data:
        rows.append([lab] + [f"{v:.{places}f}" for v in vals] + [f"{sum(vals):.{places}f}"])
    ncols = len(ids) + 2
    if compress:
        widths = []
        for c in range(ncols):
            w = max([4] + [len(r[c]) for r in rows if r[c] not in (None, "\x00-")])
            if c == 0 and mode == "meminfo":
                w = max(w, *map(len, MEMINFO_LABELS))
            widths.append(min(w + 1, 16))
    else:
        widths = [16] * ncols
    cols = [_Col(widths[0], "l")] + [_Col(w, "r") for w in widths[1:]]
    return title + _render(rows, cols, 2, screen_width)


# ================================================================== explain_page
@dataclass
class ZoneCheck:
    """One zone of the zonelist as the allocator looked at it."""

    zone: int
    node: int
    zone_name: str
    free: int
    mark: int
    reserve: int
    passed: bool
    skipped: str = ""
    """Why the zone was not even tested (outside the nodemask, the cpuset, above the
    allocation's highest zone); empty when it was tested."""


@dataclass
class Pass:
    """One walk of the zonelist at one watermark."""

    label: str
    mark_name: str
    checks: list[ZoneCheck]
    zone: int | None
    start: int | None = None
    """The preferred zone the walk starts from (the first zone inside the nodemask)."""


@dataclass
class AllocTrace:
    """One allocation as the allocator would do it."""

    what: str
    gfp: int
    scope: str
    """``vma``, ``shared``, ``task``, or ``default`` (no policy: the local node)."""
    policy: int
    mode: int
    flags: int
    nodes: list[int]
    ilx: int | None
    il_how: str | None
    """``offset`` (index from the VMA or file) or ``counter`` (the task's il_prev)."""
    nid: int
    nid_why: str
    mask: list[int] | None
    mask_why: str | None
    highest: int
    passes: list[Pass] = field(default_factory=list)
    preferred_zone: int | None = None
    zone: int | None = None
    node: int | None = None
    result: str = "ok"
    """``ok``, ``fail`` (no page, no OOM killer) or ``oom`` (the OOM killer runs)."""
    counters: dict[int, dict[str, int]] = field(default_factory=dict)
    note: str = ""


@dataclass
class Explanation:
    """Why (or where) the page at ``addr`` of ``task`` is placed."""

    task: int
    addr: int
    cpu: int
    cpu_node: int
    kernel: str
    vma: tuple[int, int, str] | None
    """(start address, end address, kind) of the VMA, None without one."""
    cpuset: list[int]
    fault: str
    """What a write access does now: ``allocate``, ``present`` (nothing to do),
    ``map-cached`` (a shmem/file page already exists), ``segv``, ``sigbus``."""
    pgtables: list[AllocTrace] = field(default_factory=list)
    data: AllocTrace | None = None
    hypothetical: bool = False
    """True when the page exists: ``data`` is what a fresh fault would do now."""
    existing_node: int | None = None
    oom: bool = False
    """No zone passed even the MIN mark: the OOM killer runs (``final_node`` is None)."""
    oom_retry: AllocTrace | None = None
    """If the OOM killer picks this task: its fault retried with the OOM reserves and
    without the nodemask (then the task dies)."""
    final_node: int | None = None
    final_zone: int | None = None
    notes: list[str] = field(default_factory=list)
    _k: Kernel | None = field(default=None, repr=False, compare=False)

    @property
    def counters(self) -> dict[int, dict[str, int]]:
        """numastat increments the fault makes (page tables and page)."""
        out: dict[int, dict[str, int]] = {}
        for tr in self.pgtables + ([self.data] if self.data and not self.hypothetical
                                   else []):
            for n, d in tr.counters.items():
                for k, v in d.items():
                    out.setdefault(n, {}).setdefault(k, 0)
                    out[n][k] += v
        return out

    def text(self) -> str:
        return _explanation_text(self)


def _zone_name(ks: S.KernelState, z: int) -> str:
    return ZoneType(int(ks.zones[z, S.Z_TYPE])).kname


def _gfp_zone(gfp: int) -> int:
    if gfp in (GFP_USER_MOVABLE, GFP_THISNODE):
        return ZONE_MOVABLE
    if gfp == GFP_DMA32:
        return int(ZoneType.DMA32)
    if gfp == GFP_DMA:
        return int(ZoneType.DMA)
    return ZONE_NORMAL


class _Walker:
    """The allocator's decisions in plain Python, on copies of the state they change (free
    pages per zone, the task's interleave counter)."""

    def __init__(self, k: Kernel, t: int) -> None:
        self.k, self.t, self.ks = k, t, k.ks
        ks = k.ks
        self.free = ks.zones[:, S.Z_FREE].copy()
        self.il_prev = int(ks.tasks[t, S.T_IL_PREV])
        self.il_weight = int(ks.tasks[t, S.T_IL_WEIGHT])
        self.nr = ks.nodeinfo.shape[0]
        self.cpu_nid = int(ks.tasks[t, S.T_NODE])
        self.kgen = int(ks.sysvars[S.SV_KGEN])
        self.mems = {int(n) for n in ks.task_mems[t].nonzero()[0]}

    # ---------------------------------------------------------------- policy
    def pol_nodes(self, p: int) -> list[int]:
        return self.ks.policy_nodes(p)

    def next_node_in(self, node: int, mask: list[int]) -> int:
        later = [n for n in mask if n > node]
        return later[0] if later else (mask[0] if mask else MAX_NUMNODES)

    def policy_nodemask(self, p: int, gfp: int, ilx: int | None, tr: AllocTrace) -> None:
        """``policy_nodemask``: start node and nodemask (interleave target included)."""
        ks = self.ks
        nid, mask, mask_why = self.cpu_nid, None, None
        nid_why = f"the CPU's node ({self.cpu_nid})"
        mode = tr.mode
        nodes = self.pol_nodes(p) if p >= 0 else []
        highest = _gfp_zone(gfp)
        home = int(ks.policies[p, S.P_HOME]) if p >= 0 else -1
        if mode == MPOL_PREFERRED:
            if nodes:
                nid, nid_why = nodes[0], f"the preferred node ({nodes[0]})"
        elif mode == MPOL_PREFERRED_MANY:
            mask, mask_why = nodes, "the policy's nodes, first pass"
            if home >= 0:
                nid, nid_why = home, f"the home node ({home})"
        elif mode == MPOL_BIND:
            if self.kgen == KGEN_2_6_7:
                if highest >= int(ks.sysvars[S.SV_POLICY_ZONE]):
                    mask, mask_why = nodes, "the policy's nodes (2.6.7 bind zonelist)"
                    nid, nid_why = nodes[0], f"the lowest node of the mask ({nodes[0]})"
            else:
                normal = any(ks.nodeinfo[n, S.N_NORMAL] for n in nodes)
                pzone = int(ks.sysvars[S.SV_POLICY_ZONE]) if normal else ZONE_MOVABLE
                if highest < pzone:
                    tr.note = (f"BIND's nodes are ignored: the allocation's highest "
                                      f"zone {ZoneType(highest).kname} is below policy_zone "
                                      f"{ZoneType(pzone).kname} (apply_policy_zone)")
                elif not set(nodes) & self.mems:
                    tr.note = "BIND's nodes are ignored: none is in the cpuset"
                else:
                    mask, mask_why = nodes, "the policy's nodes"
                if home >= 0:
                    nid, nid_why = home, f"the home node ({home})"
        elif mode in (MPOL_INTERLEAVE, MPOL_WEIGHTED_INTERLEAVE):
            nid = self.interleave(mode, nodes, ilx, tr)
            nid_why = f"the interleave target ({nid})"
        if nid < 0 or nid >= self.nr:
            nid, nid_why = self.cpu_nid, f"the CPU's node ({self.cpu_nid}): empty mask"
        tr.nid, tr.nid_why, tr.mask, tr.mask_why = nid, nid_why, mask, mask_why

    def interleave(self, mode: int, nodes: list[int], ilx: int | None,
                   tr: AllocTrace) -> int:
        weights = {n: int(self.ks.nodeinfo[n, S.N_WEIGHT]) for n in nodes}
        if ilx is None:
            tr.il_how = "counter"
            if mode == MPOL_INTERLEAVE:
                nid = self.next_node_in(self.il_prev, nodes)
                if nid < MAX_NUMNODES:
                    self.il_prev = nid
                return nid
            node = self.il_prev
            if self.il_weight == 0 or node not in nodes:
                node = self.next_node_in(node, nodes)
                if node == MAX_NUMNODES:
                    return node
                self.il_prev = node
                self.il_weight = weights[node]
            self.il_weight -= 1
            return node
        tr.il_how = "offset"
        if not nodes:
            return self.cpu_nid
        if mode == MPOL_INTERLEAVE:
            i = ilx & 0xFFFFFFFF if self.kgen in (KGEN_6_1, KGEN_2_6_7) else ilx
            return nodes[i % len(nodes)]
        target = ilx % sum(weights.values())
        for n in nodes:
            if target < weights[n]:
                return n
            target -= weights[n]
        return nodes[-1]

    # ----------------------------------------------------------------- zones
    def allowed(self, z: int, highest: int, mask: set[int] | None) -> str:
        ks = self.ks
        if int(ks.zones[z, S.Z_TYPE]) > highest:
            return f"above the highest zone {ZoneType(highest).kname}"
        if mask is not None and int(ks.zones[z, S.Z_NODE]) not in mask:
            return "node not in the nodemask"
        return ""

    def zonelist(self, nid: int) -> list[int]:
        zl = self.ks.zonelist[nid]
        return [int(z) for z in zl if z >= 0]

    def first_zone(self, nid: int, highest: int, mask: set[int] | None) -> int | None:
        for z in self.zonelist(nid):
            if not self.allowed(z, highest, mask):
                return z
        return None

    def mark(self, z: int, wmark: int, highest: int, mult8: int = 8) -> tuple[int, int]:
        ks = self.ks
        m = int(ks.zones[z, S.Z_MIN + wmark])
        if wmark == 0 and mult8 != 8:
            mm = m
            if mult8 <= 4:
                mm -= m // 2
                if mult8 <= 3:
                    mm -= mm // 4
            m = mm
        return m, int(ks.zones[z, S.Z_RES + highest])

    def walk(self, label: str, nid: int, highest: int, mask: set[int] | None,
             cpuset_filter: bool, wmark: int, mult8: int = 8) -> Pass:
        """``get_page_from_freelist`` from the preferred zone on."""
        ks = self.ks
        checks: list[ZoneCheck] = []
        pref = self.first_zone(nid, highest, mask)
        name = "min" if wmark == 0 else "low"
        if mult8 == 4:
            name = "min/2 (OOM victim reserves)"
        p = Pass(label, name, checks, None, pref)
        if pref is None:
            return p
        started = False
        for z in self.zonelist(nid):
            if not started:
                if z != pref:
                    continue
                started = True
            node = int(ks.zones[z, S.Z_NODE])
            why = self.allowed(z, highest, mask)
            if not why and cpuset_filter and node not in self.mems:
                why = "node not in the cpuset"
            m, res = self.mark(z, wmark, highest, mult8)
            free = int(self.free[z])
            if why:
                checks.append(ZoneCheck(z, node, _zone_name(ks, z), free, m, res, False,
                                        why))
                continue
            ok = free > m + res
            checks.append(ZoneCheck(z, node, _zone_name(ks, z), free, m, res, ok))
            if ok:
                p.zone = z
                return p
        return p

    def alloc_pages(self, tr: AllocTrace, gfp: int, nid: int, mask: set[int] | None,
                    may_oom: str, label: str = "") -> int | None:
        """``__alloc_pages``: LOW pass, then MIN; records passes; returns the zone."""
        ks = self.ks
        highest = _gfp_zone(gfp)
        cpusets = bool(ks.sysvars[S.SV_CPUSETS_ENABLED])
        if cpusets and mask is None and gfp != GFP_ATOMIC:
            mask = set(self.mems)
            if tr.mask is None:
                tr.mask, tr.mask_why = sorted(mask), "the cpuset's mems (no policy mask)"
        cpuset_filter = cpusets and gfp in (GFP_USER_MOVABLE, GFP_THISNODE)
        pref = self.first_zone(nid, highest, mask)
        tr.preferred_zone = pref
        if pref is None:
            tr.result = "fail"
            return None
        p = self.walk(f"{label}fast path", nid, highest, mask, cpuset_filter, 1)
        tr.passes.append(p)
        z = p.zone
        if z is None:
            mult = 3 if gfp == GFP_ATOMIC else 8
            p = self.walk(f"{label}slow path", nid, highest, mask, cpuset_filter, 0, mult)
            tr.passes.append(p)
            z = p.zone
            if z is None and may_oom == "victim":
                vmask = set(self.mems) if cpusets else None
                pref = self.first_zone(nid, highest, vmask)
                tr.preferred_zone = pref
                if pref is not None:
                    p = self.walk(f"{label}OOM victim, nodemask dropped", nid, highest,
                                  vmask, False, 0, 4)
                    tr.passes.append(p)
                    z = p.zone
            if z is None:
                tr.result = "oom" if may_oom == "may" and gfp not in (GFP_ATOMIC,
                                                                     GFP_THISNODE) \
                    else "fail"
                return None
        self.count(tr, tr.preferred_zone, z)
        return z

    def count(self, tr: AllocTrace, pref: int, z: int) -> None:
        ks = self.ks
        if not ks.sysvars[S.SV_STATS_ENABLED]:
            return
        node, pnode = int(ks.zones[z, S.Z_NODE]), int(ks.zones[pref, S.Z_NODE])

        def add(n: int, name: str) -> None:
            d = tr.counters.setdefault(n, {})
            d[name] = d.get(name, 0) + 1

        if node == pnode:
            add(node, "numa_hit")
        else:
            add(node, "numa_miss")
            add(pnode, "numa_foreign")
        add(node, "local_node" if node == self.cpu_nid else "other_node")

    def bind_2_6_7(self, tr: AllocTrace, gfp: int, nodes: list[int], may_oom: str
                   ) -> int | None:
        """2.6.7's private BIND zonelist: mask nodes in id order, zones highest first."""
        ks = self.ks
        highest = _gfp_zone(gfp)
        order = [z for n in nodes for z in sorted(
            (z for z in range(ks.zones.shape[0]) if int(ks.zones[z, S.Z_NODE]) == n
             and int(ks.zones[z, S.Z_TYPE]) <= highest),
            key=lambda z: -int(ks.zones[z, S.Z_TYPE]))]
        pref = order[0] if order else None
        tr.preferred_zone = pref
        for wmark, label in ((1, "bind zonelist, low"), (0, "bind zonelist, min")):
            checks: list[ZoneCheck] = []
            p = Pass(label, "low" if wmark else "min", checks, None, pref)
            tr.passes.append(p)
            for z in order:
                m, res = self.mark(z, wmark, highest)
                free = int(self.free[z])
                ok = free > m + res
                checks.append(ZoneCheck(z, int(ks.zones[z, S.Z_NODE]), _zone_name(ks, z),
                                        free, m, res, ok))
                if ok:
                    p.zone = z
                    self.count(tr, pref, z)
                    return z
        tr.result = "oom" if pref is not None and may_oom == "may" else "fail"
        return None

    def allocate(self, tr: AllocTrace, gfp: int, p: int, ilx: int | None, may_oom: str
                 ) -> None:
        """``alloc_pages_mpol``: policy -> node and mask -> zones -> page (takes it from the
        copied free counts)."""
        self.policy_nodemask(p, gfp, ilx, tr)
        mode = tr.mode
        mask = None if tr.mask is None else set(tr.mask)
        if self.kgen == KGEN_2_6_7 and mode == MPOL_BIND and mask is not None:
            z = self.bind_2_6_7(tr, gfp, sorted(mask), may_oom)
        elif mode == MPOL_PREFERRED_MANY:
            z = self.alloc_pages(tr, gfp, tr.nid, mask, "never", "preferred nodes: ")
            if z is None:
                tr.result = "ok"
                z = self.alloc_pages(tr, gfp, tr.nid, None, may_oom, "any node: ")
        else:
            z = self.alloc_pages(tr, gfp, tr.nid, mask, may_oom)
        if z is None:
            return
        ks = self.ks
        tr.zone, tr.node = z, int(ks.zones[z, S.Z_NODE])
        counts_hit = mode == MPOL_INTERLEAVE or (
            mode == MPOL_WEIGHTED_INTERLEAVE and ks.sysvars[S.SV_INTERLEAVE_HIT_WEIGHTED])
        if counts_hit and tr.node == tr.nid and ks.sysvars[S.SV_STATS_ENABLED]:
            tr.counters.setdefault(tr.nid, {})
            tr.counters[tr.nid]["interleave_hit"] = \
                tr.counters[tr.nid].get("interleave_hit", 0) + 1
        self.free[z] -= 1


def _trace(k: Kernel, what: str, gfp: int, p: int, scope: str) -> AllocTrace:
    ks = k.ks
    mode = -1 if p < 0 or gfp in (GFP_ATOMIC, GFP_THISNODE) else int(ks.policies[p, S.P_MODE])
    return AllocTrace(what, gfp, scope, p, mode,
                      int(ks.policies[p, S.P_FLAGS]) if p >= 0 else 0,
                      ks.policy_nodes(p) if p >= 0 else [], None, None, -1, "", None, None,
                      _gfp_zone(gfp))


def explain_page(kernel: Kernel, task: int, addr: int, *, write: bool = True
                 ) -> Explanation:
    """Explain where a ``write`` (or read) access by ``task`` at ``addr`` gets its page.

    For a page not yet there this is exactly what :meth:`Kernel.touch` will do next: the
    page-table pages the fault allocates first (task policy, GFP_KERNEL, counter
    interleave), then the page.  For a page already there (``hypothetical``) it is the
    decision a fresh fault would make now, with ``existing_node`` where the page actually is
    (numasim cannot replay the state the page was placed in).
    """
    k, t, ks = kernel, task, kernel.ks
    vpn = (addr & ((1 << 64) - 1)) >> PAGE_SHIFT
    mm = k.task_mm(t)
    cpu = int(ks.tasks[t, S.T_CPU])
    ex = Explanation(t, addr, cpu, int(ks.tasks[t, S.T_NODE]), k.kernel, None,
                     sorted(int(n) for n in ks.task_mems[t].nonzero()[0]), "allocate",
                     _k=k)
    v = k.find_vma(mm, vpn)
    if v < 0:
        ex.fault = "segv"
        ex.notes.append("No VMA contains this address: the access raises SIGSEGV.")
        return ex
    row = ks.vmas[v]
    kind, shared = int(row[S.V_KIND]), bool(row[S.V_SHARED])
    kname = {S.KIND_ANON: "private anonymous", S.KIND_SHMEM: "shmem", S.KIND_FILE: "file"}[
        kind] + (" (MAP_SHARED)" if shared and kind != S.KIND_SHMEM else "")
    if kind == S.KIND_FILE and not shared:
        kname = "file (MAP_PRIVATE)"
    ex.vma = (int(row[S.V_START]) << PAGE_SHIFT, int(row[S.V_END]) << PAGE_SHIFT, kname)
    prot = int(row[S.V_PROT])
    if prot == 0 or (write and not prot & S.PROT_WRITE):
        ex.fault = "segv"
        ex.notes.append("The VMA's protection forbids this access: SIGSEGV.")
        return ex
    cur = k.pte(mm, vpn)
    index = int(row[S.V_PGOFF]) + vpn - int(row[S.V_START])
    private = kind == S.KIND_ANON or (kind == S.KIND_FILE and not shared and write)
    obj = int(row[S.V_OBJ])
    existing = k.page_node(t, vpn)
    if cur == S.PT_ZERO:
        existing = None
    needs_fault = True
    if cur >= 0 and (not write or shared or (int(ks.pages[cur, S.PG_KIND]) == S.PGK_ANON
                                             and int(ks.pages[cur, S.PG_MAPCOUNT]) <= 1)):
        needs_fault = False
        ex.fault = "present"
    elif cur == S.PT_ZERO and not write:
        needs_fault = False
        ex.fault = "present"
        ex.notes.append("A read of an untouched private page maps the shared zero page.")
    w = _Walker(k, t)
    task_pol = int(ks.tasks[t, S.T_POLICY])
    if needs_fault:
        for level, shift, name in ((S.PGT_PUD, 27, "PUD"), (S.PGT_PMD, 18, "PMD"),
                                   (S.PGT_PTE, 9, "PTE")):
            if ks.pgt_get(S.pgtable_key(mm, level, vpn >> shift)) is not None:
                continue
            tr = _trace(k, f"{name} table page", GFP_KERNEL, task_pol,
                        "task" if task_pol >= 0 else "default")
            w.allocate(tr, GFP_KERNEL, task_pol, None, "may")
            ex.pgtables.append(tr)
            if tr.result != "ok":
                ex.oom = True
                ex.notes.append(f"The {name} table page cannot be allocated: the OOM killer "
                                "runs.")
                return ex
    page_obj = -1
    if not private:
        if index >= int(ks.objs[obj, S.O_SIZE]) or index >= int(ks.objs[obj, S.O_NPAGES]):
            ex.fault = "sigbus"
            ex.notes.append("The page lies past the end of the file: SIGBUS.")
            return ex
        page_obj = int(ks.obj_pages[int(ks.objs[obj, S.O_BASE]) + index])
        if page_obj >= 0:
            existing = int(ks.pages[page_obj, S.PG_NODE])
            if needs_fault:
                ex.fault = "map-cached"
            needs_fault = False
    elif needs_fault and kind == S.KIND_ANON and cur == S.PT_NONE and not write:
        ex.fault = "zero-page"
        ex.notes.append("A read fault on untouched private memory maps the zero page "
                        "(no page is allocated).")
        return ex
    ex.hypothetical = not needs_fault
    ex.existing_node = existing
    # ---- the page's own policy
    if kind == S.KIND_FILE and not private:
        p, base, scope = task_pol, None, "task" if task_pol >= 0 else "default"
        ilx = None
    else:
        if kind == S.KIND_SHMEM:
            sp = shared_policy_at(k, obj, index)
            base = int(ks.objs[obj, S.O_INO])
            p, scope = (sp, "shared") if sp >= 0 else (task_pol, "task")
        else:
            base = 0
            vp = int(row[S.V_POLICY])
            p, scope = (vp, "vma") if vp >= 0 else (task_pol, "task")
        if p < 0:
            scope = "default"
        ilx = base + index
    tr = _trace(k, "page", GFP_USER_MOVABLE, p, scope)
    tr.ilx = ilx
    may = "may"
    w.allocate(tr, GFP_USER_MOVABLE, p, ilx, may)
    ex.data = tr
    if tr.result != "ok" and not ex.hypothetical:
        ex.oom = True
        retry = _trace(k, "page (retried as the OOM victim)", GFP_USER_MOVABLE, p, scope)
        retry.ilx = ilx
        w.allocate(retry, GFP_USER_MOVABLE, p, ilx, "victim")
        ex.oom_retry = retry
        ex.notes.append("No zone passed its MIN mark: the OOM killer runs.  If it picks this "
                        "task, the fault is retried with the OOM reserves and without the "
                        "nodemask" + (f" (node {retry.node})" if retry.node is not None else
                                      " (and still finds no page)")
                        + ", then the task dies (SIGKILL); if it kills another task, the "
                        "fault is retried once that task's memory is freed.")
    ex.final_zone, ex.final_node = ex.data.zone, ex.data.node
    if ex.hypothetical and existing is not None:
        ex.notes.append(f"The page already exists on node {existing}; the walk above is "
                        "what a fresh fault would do now (numasim does not replay the "
                        "state the page was placed in).")
    return ex


def _nodes_txt(nodes) -> str:
    from numasim.bitmap import format_list

    return format_list(nodes) if nodes else "none"


def _trace_text(k: Kernel, tr: AllocTrace) -> list[str]:
    ks = k.ks
    out = []
    if tr.mode < 0:
        pol = ("no policy: the per-node default (local allocation)"
               if tr.gfp not in (GFP_ATOMIC, GFP_THISNODE) else "policy ignored")
    else:
        pol = (f"{tr.scope} policy {policy_str(k, tr.policy)} "
               f"(MPOL_{MODE_NAMES.get(tr.mode, str(tr.mode)).upper()}, nodes "
               f"{_nodes_txt(tr.nodes)})")
    out.append(f"{tr.what} ({GFP_NAMES.get(tr.gfp, tr.gfp)}): {pol}")
    if tr.il_how == "offset" and tr.mode in (MPOL_INTERLEAVE, MPOL_WEIGHTED_INTERLEAVE):
        n = len(tr.nodes)
        if tr.mode == MPOL_INTERLEAVE and n:
            out.append(f"  interleave index {tr.ilx} mod {n} nodes = {tr.ilx % n} -> "
                       f"node {tr.nid}")
        else:
            out.append(f"  weighted interleave index {tr.ilx} -> node {tr.nid}")
    elif tr.il_how == "counter":
        out.append(f"  interleave by the task's counter (il_prev) -> node {tr.nid}")
    out.append(f"  start node: {tr.nid_why}; nodemask: "
               + (f"{_nodes_txt(tr.mask)} ({tr.mask_why})" if tr.mask is not None
                  else "none (any node)"))
    if tr.note:
        out.append(f"  {tr.note}")
    for p in tr.passes:
        frm = "" if p.start is None else \
            f" from node {int(ks.zones[p.start, S.Z_NODE])} {_zone_name(ks, p.start)}"
        out.append(f"  zonelist of node {tr.nid}{frm}, {p.label} at the "
                   f"{p.mark_name.upper()} mark:")
        if not p.checks:
            out.append("    no eligible zone")
        for c in p.checks:
            head = f"    node {c.node} {c.zone_name}: "
            if c.skipped:
                out.append(head + f"skipped, {c.skipped}")
            else:
                rel = ">" if c.passed else "<="
                out.append(head + f"free {c.free} {rel} {p.mark_name.split()[0]} {c.mark} + "
                           f"reserve {c.reserve} -> " + ("use it" if c.passed else "next"))
    if tr.zone is not None:
        cnt = ", ".join(f"{name} on {n}" for n, d in sorted(tr.counters.items())
                        for name in d)
        out.append(f"  -> node {tr.node}, zone {_zone_name(ks, tr.zone)}"
                   + (f" ({cnt})" if cnt else ""))
    else:
        out.append("  -> no page: " + ("out of memory, the OOM killer runs" if tr.result ==
                                        "oom" else "the allocation fails"))
    return out


def _explanation_text(ex: Explanation) -> str:
    k = ex._k
    lines = [f"Address {ex.addr:#x} of task {ex.task} (CPU {ex.cpu}, node {ex.cpu_node}), "
             f"kernel {ex.kernel}"]
    if ex.vma is not None:
        lines.append(f"VMA {ex.vma[0]:#x}-{ex.vma[1]:#x}, {ex.vma[2]}")
    lines.append(f"cpuset mems_allowed: {_nodes_txt(ex.cpuset)}")
    if k is not None:
        for tr in ex.pgtables:
            lines += _trace_text(k, tr)
        if ex.data is not None:
            if ex.hypothetical:
                lines.append("If this page were faulted in now:")
            lines += _trace_text(k, ex.data)
        if ex.oom_retry is not None:
            lines += _trace_text(k, ex.oom_retry)
    if ex.final_node is not None and not ex.hypothetical:
        lines.append(f"Result: the page goes to node {ex.final_node}.")
    if ex.existing_node is not None:
        lines.append(f"The page is on node {ex.existing_node} now.")
    lines += ex.notes
    return "\n".join(lines) + "\n"


__all__ = ["numa_maps", "numa_maps_line", "numastat_table", "explain_page", "Explanation",
           "AllocTrace", "ZoneCheck", "Pass", "policy_str", "vma_policy", "file_name"]
