"""``/proc/vmstat`` of the simulated kernel: the event counters numasim keeps, by Linux name.

The allocator core counts into ``KernelState.vmstat`` (:data:`numasim.mm.state.VMSTAT_NAMES`);
NUMA balancing counts into its own table (:mod:`numasim.mm.numa_balancing`).  This module
gives both one face with Linux's names (``mm/vmstat.c``), so a scenario's ``vmstat`` line
reads like the oracle's; khugepaged's events come from :mod:`numasim.mm.khugepaged`.  A name
numasim does not know reads -1, as the probe prints a counter the kernel lacks.
"""

from __future__ import annotations

from numasim.mm import state as S

VMSTAT_DEFAULT = ("numa_pte_updates", "numa_huge_pte_updates", "numa_hint_faults",
                  "numa_hint_faults_local", "numa_pages_migrated", "pgmigrate_success",
                  "pgmigrate_fail", "thp_fault_alloc", "thp_fault_fallback",
                  "thp_collapse_alloc", "pgpromote_success", "pgpromote_candidate",
                  "pgdemote_kswapd", "pgdemote_direct")
"""The probe's default set (``vmstat`` without keys): what moves when pages move."""

_CORE = {"pgmigrate_success": S.VM_PGMIGRATE_SUCCESS, "pgmigrate_fail": S.VM_PGMIGRATE_FAIL,
         "thp_fault_alloc": S.VM_THP_FAULT_ALLOC,
         "thp_fault_fallback": S.VM_THP_FAULT_FALLBACK, "oom_kill": S.VM_OOM,
         "pswpin": S.VM_SWPIN, "pswpout": S.VM_SWPOUT}
_ZERO: tuple[str, ...] = ()


def vmstat_read(k, key: str) -> int:
    """The counter ``key`` of kernel ``k``, or -1 if numasim does not keep it."""
    from numasim.mm.numa_balancing import numab

    if key in _CORE:
        return int(k.ks.vmstat[_CORE[key]])
    from numasim.mm.huge_memory import thp_event

    ev = thp_event(k, key)
    if ev is not None:
        return ev
    from numasim.mm.khugepaged import vm_event

    ev = vm_event(k, key)  # thp_collapse_alloc, thp_collapse_alloc_failed, thp_scan_exceed_*
    if ev is not None:
        return ev
    if key == "nr_anon_transparent_hugepages":  # NR_ANON_THPS: PMD-mapped anonymous THPs
        from numasim.mm.huge_memory import HPAGE_PMD_NR, anon_huge_pages

        return sum(anon_huge_pages(k).values()) // HPAGE_PMD_NR
    from numasim.mm.vmscan import reclaim

    rv = reclaim(k).vmstat(key)  # pgscan_*, pgsteal_*, pgdemote_* (numasim.mm.vmscan)
    if rv is not None:
        return rv
    nb = numab(k)
    counters = nb.counters
    if key in counters:
        return int(counters[key])
    from numasim.mm.numa_promote import promotion

    pv = promotion(nb).vmstat(key)  # pgpromote_* (numasim.mm.numa_promote)
    if pv is not None:
        return pv
    if key in _ZERO:
        return 0
    return -1


def vmstat_snapshot(k, keys: tuple[str, ...] | list[str] = VMSTAT_DEFAULT) -> dict[str, int]:
    return {key: vmstat_read(k, key) for key in keys}
