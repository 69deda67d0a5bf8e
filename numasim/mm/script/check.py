"""Comparing a numasim run with an oracle recording.

:func:`check_lines` is the oracle's own ``run_oracle.py --check`` comparison (every line
except those that depend on timing or memory state; for ``fill`` scenarios only the order of
the nodes in each query's runs), with one more exclusion: kernel messages the guest printed
on its serial console in the middle of the probe's output (``[   13.686327] Out of memory:
...``), whose timestamps and pids change from boot to boot.

The other checks go further where the kernel is deterministic:

* :func:`check_numastat`: ``numastat_delta`` answers, counter by counter, within the
  stated tolerance for the probe's own background allocations (see its docstring);
* :func:`check_zones`: ``zone`` lines: present pages exactly, managed pages within the
  layout model's accuracy, watermarks and lowmem protection within a relative tolerance
  (the kernel computes them at boot, before its init memory is freed);
* :func:`check_numa_maps`: ``numa_maps`` lines: address, policy, file and per-node counts
  (``dirty``/``active`` depend on LRU state and are left out).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from numasim.mm.script.output import NOISY, run_order

CONSOLE = re.compile(r"^\[\s*\d+\.\d+\] ")

LRU_BATCH = 31
"""Pages of a per-CPU ``lru_add`` batch (6.12; 15 in 6.1).  Pages that still sit in the
batch of the CPU that faulted them cannot be isolated, so NUMA balancing cannot move them
(6.12 marks them and they fail at each hinting fault; 6.1 does not even mark them, the
batch's reference makes page_count != 1).  How many sit there depends on every LRU page
the CPU added since its last drain -- the probe's own pages, the shell's, boot history --
so the recordings differ between boots (FINDINGS.md, NUMA balancing): up to
``LRU_BATCH - 1`` pages of a range may stay behind."""


def lru_batch_of(kernel: str) -> int:
    """The per-CPU LRU batch size of a kernel generation (PAGEVEC_SIZE 15 before 6.2)."""
    return 15 if kernel == "6.1" else LRU_BATCH


@dataclass(frozen=True)
class Diff:
    kind: str
    expected: str
    got: str
    note: str = ""

    def __str__(self) -> str:
        extra = f" ({self.note})" if self.note else ""
        return f"[{self.kind}]{extra}\n   expected: {self.expected[:220]}\n   got:      " \
               f"{self.got[:220]}"


def _strip_console(lines: list[str]) -> list[str]:
    return [x for x in lines if not CONSOLE.match(x)]


RECLAIM_TOL = 3000
"""Pages by which a count may differ in a reclaim scenario (:func:`is_reclaim_scenario`).
How many pages reclaim takes, and from where, depends on what else the guest holds and
on the race between kswapd and the faulting task: two boots of the same kernel differed by
up to 2608 pages (98: 24069 / 26677 pages of region 0 demoted; 2296 / 0 of region 1; 97:
110840 / 112311 pages on node 0 before the spill), FINDINGS.md sections 8 and 11."""
RECLAIM_PAIRS = (("pgdemote_kswapd", "pgdemote_direct"), ("pgsteal_kswapd", "pgsteal_direct"))
"""Counters compared as a sum: the split between kswapd and direct reclaim is the race."""
RECLAIM_SKIP = ("pgscan_kswapd", "pgscan_direct", "pgscan_anon", "pgscan_file")
"""Not compared: how many pages reclaim scans depends on the LRU implementation (MGLRU on
by default in Debian's 6.12; numasim models the two-list LRU, module numasim.mm.vmscan)."""


def is_reclaim_scenario(expected: list[str]) -> bool:
    """A scenario that watches reclaim (its ``vmstat_mark`` names ``pgdemote_*`` or
    ``pswpout``): its page counts are compared within :data:`RECLAIM_TOL`."""
    return any(x.startswith("> vmstat_mark") and ("pgdemote_" in x or "pswpout" in x)
               for x in expected)


def reclaim_summary_ok(expected: str, got: str) -> bool:
    """Same region, offset and count; every node's (and ``absent``) count within
    :data:`RECLAIM_TOL`."""
    ex, gy = _kv(expected), _kv(got)
    if any(ex.get(f) != gy.get(f) for f in ("region", "off", "n")):
        return False
    ce = {k: int(v) for k, v in ex.items() if re.fullmatch(r"node\d+|absent", k)}
    cg = {k: int(v) for k, v in gy.items() if re.fullmatch(r"node\d+|absent", k)}
    return all(abs(ce.get(n, 0) - cg.get(n, 0)) <= RECLAIM_TOL for n in set(ce) | set(cg))


def check_lines(expected: list[str], got: list[str], *, lru_batch: int = LRU_BATCH
                ) -> list[Diff]:
    """``run_oracle.py --check``, console messages left out.  A ``summary`` line that
    answers a query made after a ``spin`` (NUMA balancing has moved pages) is compared by
    :func:`moved_summary_ok` (``lru_batch``: 31 for 6.12, 15 for 6.1); in a reclaim
    scenario by :func:`reclaim_summary_ok`."""
    reclaim = is_reclaim_scenario(expected)
    expected, got = _strip_console(expected), _strip_console(got)
    pressure = any(x.startswith("> fill") for x in expected)
    timed_e, timed_g = _after_spin(expected), _after_spin(got)

    def keep(x: str) -> bool:
        if x.startswith(NOISY):
            return False
        return not (pressure and x.startswith("page "))

    a = [(x, i in timed_e) for i, x in enumerate(expected) if keep(x)]
    b = [(x, i in timed_g) for i, x in enumerate(got) if keep(x)]
    diffs = []
    for i in range(max(len(a), len(b))):
        x, tx = a[i] if i < len(a) else ("<missing>", False)
        y, ty = b[i] if i < len(b) else ("<missing>", False)
        if tx and ty:
            if not moved_summary_ok(x, y, lru_batch):
                diffs.append(Diff("lines", x, y, f"pages moved by NUMA balancing, per node "
                                                 f"within {lru_batch - 1}"))
        elif reclaim and x.startswith("summary ") and y.startswith("summary "):
            if not reclaim_summary_ok(x, y):
                diffs.append(Diff("lines", x, y, f"reclaim: per node within {RECLAIM_TOL}"))
        elif pressure and x.startswith("summary ") and y.startswith("summary "):
            if run_order(x) != run_order(y):
                diffs.append(Diff("lines", x, y, "node order of the runs"))
        elif x != y:
            diffs.append(Diff("lines", x, y))
    return diffs




def _after_spin(lines: list[str]) -> set[int]:
    """Indexes of ``summary`` lines that answer a query made after a ``spin`` of the same
    process (until the next fork/endfork)."""
    out: set[int] = set()
    spun = False
    for i, x in enumerate(lines):
        if x.startswith("> spin"):
            spun = True
        elif x.startswith(("> fork", "> endfork", "child ")):
            spun = False
        elif spun and x.startswith("summary "):
            out.add(i)
    return out


def moved_summary_ok(expected: str, got: str, lru_batch: int = LRU_BATCH) -> bool:
    """Same region, offset and count; every node's page count within ``lru_batch - 1``
    (pages left in a per-CPU LRU batch, see :data:`LRU_BATCH`); the same node holds the
    most pages.  ``runs=``/``seq=`` are not compared (they follow from the counts)."""
    ex, gy = _kv(expected), _kv(got)
    if any(ex.get(f) != gy.get(f) for f in ("region", "off", "n")):
        return False
    ce = {k: int(v) for k, v in ex.items() if re.fullmatch(r"node\d+", k)}
    cg = {k: int(v) for k, v in gy.items() if re.fullmatch(r"node\d+", k)}
    if any(abs(ce.get(n, 0) - cg.get(n, 0)) >= lru_batch for n in set(ce) | set(cg)):
        return False
    return max(ce, key=ce.get, default=None) == max(cg, key=cg.get, default=None)


EXACT_VMSTAT = ("numa_huge_pte_updates", "numa_hint_faults_local", "pgmigrate_fail",
                "thp_fault_alloc", "thp_fault_fallback", "thp_collapse_alloc",
                "pgdemote_kswapd", "pgdemote_direct")
MOVED_VMSTAT = ("numa_pages_migrated", "pgmigrate_success", "pgpromote_success")
TIMED_VMSTAT = ("numa_pte_updates", "numa_hint_faults", "pgpromote_candidate")
TIMED_PASSES = 4


def check_vmstat(expected: list[str], got: list[str], *, lru_batch: int = LRU_BATCH
                 ) -> list[Diff]:
    """``vmstat_delta`` answers, counter by counter (absolute ``vmstat`` lines depend on
    the boot's history and are not compared):

    * a counter the recording shows as 0 must be 0 (nothing scanned stays unscanned), and
      the THP, demotion, local-fault and failure counters must be equal;
    * pages migrated (``numa_pages_migrated``, ``pgmigrate_success``, ``pgpromote_success``)
      within ``lru_batch - 1``: the pages left in a per-CPU LRU batch (:data:`LRU_BATCH`);
      for promotions under a rate limit also the drift of the per-CPU vmstat counters the
      limit reads (``pgpromote_candidate`` folds into the node's count only past the
      CPU's stat threshold, 16 on the oracle's nodes: a window lets 256 +- a few through,
      FINDINGS.md section 12);
    * ``pgpromote_candidate`` counts a hinting fault per page and scan pass while the rate
      limit holds pages back, so it is timed like the hinting faults;
    * ``numa_pte_updates`` and ``numa_hint_faults`` depend on how many scan passes fit in
      the spin (timing) and on the batch: a page stuck in the batch is marked and faults
      again at every pass (6.12), so within ``TIMED_PASSES x lru_batch`` or 10 %.
    * With huge pages scanned (the recording's ``numa_huge_pte_updates`` H > 0) one pass
      more or less over a THP is 512 PTE updates and a local hint fault once it moved: then
      ``numa_huge_pte_updates`` is timed too (within max(2, H / 2) PMDs),
      ``numa_hint_faults_local`` within ``TIMED_PASSES``, and ``numa_pte_updates`` gets 512
      per tolerated PMD on top (Linux 6.1 gave 8 and 6 PMD updates in two boots, FINDINGS.md
      section 9).

    The recorded run-to-run spread (FINDINGS.md) lies well inside these bounds.
    """
    reclaim = is_reclaim_scenario(expected)
    a = [x for x in _strip_console(expected) if x.startswith("vmstat_delta ")]
    b = [x for x in _strip_console(got) if x.startswith("vmstat_delta ")]
    if len(a) != len(b):
        return [Diff("vmstat", f"{len(a)} vmstat_delta answers", f"{len(b)} answers")]
    diffs = []
    for x, y in zip(a, b, strict=True):
        ex, gy = _kv(x), _kv(y)
        if reclaim:
            diffs += _check_reclaim_vmstat(x, y, ex, gy)
            continue
        huge = int(ex.get("numa_huge_pte_updates", "0"))
        huge_tol = max(2, huge // 2) if huge > 0 else 0
        for key, ve in ex.items():
            e, g = int(ve), int(gy.get(key, "-999999"))
            if huge_tol and key == "numa_huge_pte_updates":
                ok = abs(e - g) <= huge_tol
            elif huge_tol and key == "numa_hint_faults_local":
                ok = abs(e - g) <= TIMED_PASSES
            elif huge_tol and key == "numa_pte_updates":
                ok = abs(e - g) <= max(TIMED_PASSES * lru_batch, e // 10) + 512 * huge_tol
            elif e == 0 or key in EXACT_VMSTAT or key not in MOVED_VMSTAT + TIMED_VMSTAT:
                ok = e == g
            elif key in MOVED_VMSTAT:
                ok = abs(e - g) < lru_batch
            else:
                ok = abs(e - g) <= max(TIMED_PASSES * lru_batch, e // 10)
            if not ok:
                diffs.append(Diff("vmstat", x, y, key))
                break
    return diffs


def _check_reclaim_vmstat(x: str, y: str, ex: dict[str, str], gy: dict[str, str]
                          ) -> list[Diff]:
    """A reclaim scenario's counters: the kswapd + direct sums (:data:`RECLAIM_PAIRS`) and
    every other counter within :data:`RECLAIM_TOL` (``pgmigrate_success`` also moves by a
    few hundred pages of compaction, FINDINGS.md section 8), zero exactly where the
    recording has zero (nothing demoted stays nothing demoted); scan counts are left out."""
    def val(d: dict[str, str], key: str) -> int:
        return int(d.get(key, "-999999"))

    keys = [k for k in ex if k not in RECLAIM_SKIP]
    for pair in RECLAIM_PAIRS:
        if all(k in ex for k in pair):
            keys = [k for k in keys if k not in pair] + ["+".join(pair)]
    for key in keys:
        parts = key.split("+")
        e = sum(val(ex, k) for k in parts)
        g = sum(val(gy, k) for k in parts)
        ok = (e == g) if e <= 0 else abs(e - g) <= RECLAIM_TOL
        if not ok:
            return [Diff("vmstat", x, y, f"{key} (reclaim: within {RECLAIM_TOL})")]
    return []


def _kv(line: str) -> dict[str, str]:
    return dict(w.split("=", 1) for w in line.split() if "=" in w)


def _by_kind(lines: list[str], prefix: str) -> list[tuple[str, str]]:
    """(command echo, line) for each line starting with ``prefix``."""
    out = []
    cmd = ""
    for x in _strip_console(lines):
        if x.startswith("> "):
            cmd = x
        elif x.startswith(prefix):
            out.append((cmd, x))
    return out


NUMASTAT_FIELDS = ("numa_hit", "numa_miss", "numa_foreign", "interleave_hit", "local_node",
                   "other_node")


NOISE_PAGES = 12
FIRST_NOISE_PAGES = 16
PRESSURE_PAGES = 40


# Bytes per page of the buffers the probe (numaprobe.c) callocs in its own heap for one
# command: query = move_pages(nodes=NULL) with pages[] (8) and status[] (4); move = pages[],
# nodes[] and status[] (16); touch ... resident = mincore's vector (1).
PROBE_BUFFER_BYTES = {"query": 12, "move": 16, "resident": 1}


def probe_buffer_pages(cmds: list[str]) -> int:
    """Pages the probe's own heap buffers can add to a numastat window (FINDINGS.md F12).

    The arrays of the window's largest query/move/resident touch, rounded up to pages,
    plus one page for the summary line's buffer (or the new top-chunk header glibc writes
    after it).  Heap pages stay after ``free``, so a later call of the same size adds
    nothing; the bound is the largest call, not the sum.  numasim does not model the
    probe's user-space heap, so these pages are allowed, never required."""
    most = 0
    for c in cmds:
        w = c[2:].split("#")[0].split()
        key = "resident" if w[:1] == ["touch"] and "resident" in w[3:] else w[0] if w else ""
        if key not in PROBE_BUFFER_BYTES or len(w) < 3:
            continue
        try:
            n = int(w[2], 0)
        except ValueError:
            continue
        if n > 0:
            most = max(most, -(-PROBE_BUFFER_BYTES[key] * n // 4096) + 1)
    return most


def _delta_blocks(lines: list[str]) -> list[tuple[str, list[dict[str, str]], int]]:
    """The numastat_delta answers, one block (all nodes) per command, each with the pages
    the probe's own buffers may add in its window (:func:`probe_buffer_pages` of the
    commands since the last ``numastat_mark``)."""
    blocks: list[tuple[str, list[dict[str, str]], int]] = []
    cmd, n_cmd, last = "", 0, -1
    window: list[str] = []
    for x in _strip_console(lines):
        if x.startswith("> "):
            cmd, n_cmd = x, n_cmd + 1
            window = [] if x.split()[1:2] == ["numastat_mark"] else window + [x]
        elif x.startswith("numastat_delta "):
            if last != n_cmd:
                blocks.append((cmd, [], probe_buffer_pages(window)))
                last = n_cmd
            blocks[-1][1].append(_kv(x))
    return blocks


def noise_nodes_of(records) -> list[set[int]]:
    """From numasim's records: for each numastat_delta answer, the nodes where the probe's
    own kernel allocations could have gone in that window (see ``Runner.kernel_alloc_nodes``)."""
    out: list[set[int]] = []
    last = None
    for r in records:
        if r.meta and "noise_nodes" in r.meta and r.text.startswith("numastat_delta "):
            if r.meta is not last:
                out.append(set(r.meta["noise_nodes"]))
                last = r.meta
    return out


def check_numastat(expected: list[str], got: list[str], *,
                   noise_nodes: list[set[int]] | None = None, noise: int = NOISE_PAGES,
                   first_noise: int = FIRST_NOISE_PAGES, pressure: int = PRESSURE_PAGES
                   ) -> list[Diff]:
    """``numastat_delta`` answers, counter by counter.

    What the real kernel adds that no model of the scenario predicts is the probe's own
    background allocations: slab pages for the sysfs reads of the numastat files, for VMA,
    anon_vma and policy objects, and the guest's background work on CPU 0.  They only ever
    ADD allocations, only a few, and only on the nodes where the task's kernel allocations go
    (its policy's nodes, else its CPU's node) and on node 0 (``noise_nodes``, one set per
    answer, from numasim's run; FINDINGS.md section 4).  Measured over four full recording
    runs (two on 6.12, two on 6.1): in 97 % of the windows nothing at all; after a
    scenario's first window at most 5, except right after the task moved to another CPU
    (scenario 55: 0, 5, 5 and 9 extra pages on the new CPU's node in the four runs); in the
    first window (the probe's very first sysfs reads) up to 11.  So:

    * on the noise nodes every counter must satisfy ``0 <= real - numasim <= noise`` (12;
      16 in a scenario's first window); on every other node ``0 <= real - numasim <= 1``
      (one stray slab page, seen once in 368 samples);
    * when the window saw counter-based interleaving (interleave_hit in either answer), a
      background page takes one of the task's interleave turns and shifts the following
      counter-placed page tables to the next node of the policy: on the noise nodes the
      counters may then also be short by up to ``noise``;
    * the total number of allocations must satisfy ``0 <= real - numasim <= noise``;
    * the probe's own buffers: move_pages (``query``, ``move``) and mincore (``touch ...
      resident``) need arrays in the probe's glibc heap, whose pages are faulted under the
      task policy the first time the heap grows that far.  So a window may hold up to
      :func:`probe_buffer_pages` more allocations on the noise nodes (and in the total).
      The "~7 extra local allocations during an mbind MOVE" of issue 14 are this (a
      4096-page ``query`` in the window: 6-7 heap pages + 1, on both kernels in every boot)
      or, not reproducibly, 0-11 pages of per-CPU kernel work (a new kworker for
      ``lru_add_drain_all``) on the CPU's node right after the task moved there, which
      the ``noise`` bound above covers; mbind MOVE itself adds nothing from a CPU the task
      has been on (scenarios 78, 79; FINDINGS.md F12);
    * in memory-pressure scenarios (``fill``) counts move by tens of pages between boots
      (per-CPU page lists, reclaim): every counter within ``pressure`` either way.
    """
    a, b = _delta_blocks(expected), _delta_blocks(got)
    if len(a) != len(b) or any(len(x[1]) != len(y[1]) for x, y in zip(a, b, strict=False)):
        return [Diff("numastat", f"{len(a)} numastat_delta answers", f"{len(b)} answers")]
    is_pressure = any(x.startswith("> fill") for x in expected)
    diffs: list[Diff] = []
    for i, ((cmd, ex, heap), (_c, gy, _h)) in enumerate(zip(a, b, strict=True)):
        tol = (first_noise if i == 0 else noise) + heap
        nodes = noise_nodes[i] if noise_nodes is not None and i < len(noise_nodes) else None
        interleaved = any(int(d.get("interleave_hit", 0)) for d in ex + gy)
        total_e = sum(int(d["numa_hit"]) + int(d["numa_miss"]) for d in ex)
        total_g = sum(int(d["numa_hit"]) + int(d["numa_miss"]) for d in gy)
        if not is_pressure and not 0 <= total_e - total_g <= tol:
            diffs.append(Diff("numastat", f"{total_e} allocations in all", f"{total_g}",
                              f"after `{cmd[2:]}`"))
            continue
        for de, dg in zip(ex, gy, strict=True):
            noisy = nodes is None or int(de["node"]) in nodes
            for f in NUMASTAT_FIELDS:
                e, g = int(de.get(f, 0)), int(dg.get(f, 0))
                if is_pressure:
                    ok = abs(e - g) <= pressure
                elif not noisy:
                    ok = 0 <= e - g <= 1
                elif interleaved:
                    ok = abs(e - g) <= tol
                else:
                    ok = 0 <= e - g <= tol
                if not ok:
                    line = " ".join(f"{k}={v}" for k, v in de.items())
                    gline = " ".join(f"{k}={v}" for k, v in dg.items())
                    diffs.append(Diff("numastat", line, gline, f"{f} after `{cmd[2:]}`"))
                    break
    return diffs


def check_zones(expected: list[str], got: list[str], *, managed_tol: int = 8,
                rel_tol: float = 0.02) -> list[Diff]:
    """``zone`` lines: same zones, ``present`` exact, ``managed`` within ``managed_tol``
    pages, min/low/high and each protection entry within ``rel_tol`` (+2 pages)."""
    a = _by_kind(expected, "zone ")
    b = _by_kind(got, "zone ")
    if len(a) != len(b):
        return [Diff("zones", f"{len(a)} zone lines", f"{len(b)} zone lines")]
    diffs = []
    for (_c, x), (_d, y) in zip(a, b, strict=True):
        ex, gy = _kv(x), _kv(y)
        bad = None
        if (ex["node"], ex["zone"]) != (gy["node"], gy["zone"]):
            bad = "zone"
        elif ex["present"] != gy["present"]:
            bad = "present"
        elif abs(int(ex["managed"]) - int(gy["managed"])) > managed_tol:
            bad = "managed"
        else:
            pairs = [(int(ex[f]), int(gy[f]), f) for f in ("min", "low", "high")]
            pe, pg = ex["protection"].split(","), gy["protection"].split(",")
            if len(pe) != len(pg):
                bad = "protection"
            pairs += [(int(p), int(q), "protection") for p, q in zip(pe, pg, strict=False)]
            for e, g, f in pairs:
                if abs(e - g) > rel_tol * max(e, g) + 2:
                    bad = f
                    break
        if bad:
            diffs.append(Diff("zones", x, y, bad))
    return diffs


def _numa_maps_key(line: str) -> tuple:
    head, _, text = line.partition(" | ")
    words = text.split()
    keep = tuple(w for w in words[2:] if re.match(r"(anon|N\d+|file)=", w))
    return (head, tuple(words[:2]), keep)


def check_numa_maps(expected: list[str], got: list[str]) -> list[Diff]:
    """``numa_maps`` lines: address, policy, file and anon/per-node counts."""
    a = _by_kind(expected, "numa_maps ")
    b = _by_kind(got, "numa_maps ")
    diffs = []
    for i in range(max(len(a), len(b))):
        x = a[i][1] if i < len(a) else "<missing>"
        y = b[i][1] if i < len(b) else "<missing>"
        if _numa_maps_key(x) != _numa_maps_key(y):
            diffs.append(Diff("numa_maps", x, y))
    return diffs
