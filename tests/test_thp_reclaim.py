"""The THP fault under memory pressure: its gfp mask (``vma_thp_gfp_mask``, by
``transparent_hugepage/defrag`` and MADV_HUGEPAGE) decides whether a huge attempt on a full
node wakes kswapd, reclaims, or spills the huge page to the next node; and THP on raises
``min_free_kbytes`` (khugepaged's ``set_recommended_min_free_kbytes``).

The real kernel's answers are scenarios 122-125 (tests/data/oracle, replayed by
test_oracle_scenarios.py); these tests pin the mechanism on a small tiered machine."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from numasim.mm import huge_memory as H
from numasim.mm import state as S
from numasim.mm.kernel import Kernel
from numasim.mm.khugepaged import recommended_min_free_kbytes
from numasim.mm.script import run_script
from numasim.mm.vmscan import reclaim
from numasim.topology.loaders import layout

# node 0 DRAM, node 1 a CPU-less node in a lower tier (HMAT), 128 MiB each
TIER_LAYOUT = Path(__file__).parent / "data" / "machines" / "tier-128m.layout"
BASE = 0x40000  # 2 MiB aligned


@pytest.fixture(scope="module")
def tier():
    return layout.load(TIER_LAYOUT, kernel="6.12")


def spill(machine, defrag: str, madvise: bool = False) -> Kernel:
    """THP ``always`` (or ``madvise`` + MADV_HUGEPAGE), demotion on: a task on CPU 0
    write-touches 8000 pages more than node 0 has free."""
    k = Kernel(machine, "6.12", thp="madvise" if madvise else "always")
    k.demotion_enabled = True
    H.set_thp_defrag(k, defrag)
    t = k.new_process(0)
    n = (k.ks.node_free_pages(0) + 8000) // 512 * 512
    k.mmap(t, n, vpn=BASE)
    if madvise:
        from numasim.mm import syscalls as sc

        assert sc.madvise_hugepage(k, t, BASE << 12, n << 12, H.MADV_HUGEPAGE) == 0
    k.touch(t, BASE, n)
    k.task = t
    return k


def huge_nodes(k: Kernel) -> dict[int, int]:
    return {n: c // 512 for n, c in H.anon_huge_pages(k).items()}


@pytest.mark.parametrize(("defrag", "madvise", "kswapd", "huge_spill"), [
    ("madvise", False, False, False),   # GFP_TRANSHUGE_LIGHT: 122
    ("never", False, False, False),     # GFP_TRANSHUGE_LIGHT
    ("madvise", True, False, True),     # GFP_TRANSHUGE: 123
    ("always", False, False, True),     # GFP_TRANSHUGE | __GFP_NORETRY: 124
    ("defer", False, True, False),      # GFP_TRANSHUGE_LIGHT | __GFP_KSWAPD_RECLAIM: 125
    ("defer+madvise", False, True, False),
    ("defer+madvise", True, False, True),
])
def test_who_reclaims_for_a_thp_spill(tier, defrag, madvise, kswapd, huge_spill) -> None:
    """Only a mask with __GFP_KSWAPD_RECLAIM wakes node 0's kswapd (and then it demotes);
    only a mask with direct reclaim retries the whole zonelist and puts THPs on node 1; the
    others fall back to 4 KiB pages, which spill to node 1 in the fast path without waking
    anybody (the 4 KiB fallback does not wake kswapd either: 122 on both kernels)."""
    k = spill(tier, defrag, madvise)
    r = reclaim(k)
    assert (r.counters["pgdemote_kswapd"] > 0) is kswapd
    assert r.counters["pgdemote_direct"] == 0
    if not kswapd:
        assert r.counters["pgscan_kswapd"] == 0 and r.counters["pageoutrun"] == 0
    huge = huge_nodes(k)
    assert huge.get(0, 0) > 0
    fallback = int(k.ks.vmstat[S.VM_THP_FAULT_FALLBACK])
    if huge_spill:
        assert huge.get(1, 0) > 0 and fallback == 0
    else:  # (kswapd demotes a THP whole: then node 1 holds THPs all the same, as in 125)
        assert fallback > 0 and (kswapd or huge.get(1, 0) == 0)


def test_gfp_masks_by_defrag(tier) -> None:
    """vma_thp_gfp_mask, mode by mode, without and with MADV_HUGEPAGE."""
    from numasim.mm.constants import GFP_TRANSHUGE, GFP_TRANSHUGE_KSWAPD, GFP_TRANSHUGE_LIGHT

    k = Kernel(tier, "6.12", thp="always")
    t = k.new_process(0)
    k.mmap(t, 512, vpn=BASE)
    v = int(k.ks.pt_vma[int(k.ks.regions[k.find_region(k.task_mm(t), BASE), S.R_PT])])
    want = {"always": (GFP_TRANSHUGE, GFP_TRANSHUGE),
            "defer": (GFP_TRANSHUGE_KSWAPD, GFP_TRANSHUGE_KSWAPD),
            "defer+madvise": (GFP_TRANSHUGE_KSWAPD, GFP_TRANSHUGE),
            "madvise": (GFP_TRANSHUGE_LIGHT, GFP_TRANSHUGE),
            "never": (GFP_TRANSHUGE_LIGHT, GFP_TRANSHUGE_LIGHT)}
    for mode, (plain, madvised) in want.items():
        H.set_thp_defrag(k, mode)
        k.ks.vmas[v, S.V_HUGEPAGE] = 0
        assert H.vma_thp_gfp_mask(k, v) == plain, mode
        k.ks.vmas[v, S.V_HUGEPAGE] = H.VM_HUGEPAGE
        assert H.vma_thp_gfp_mask(k, v) == madvised, mode
    assert H.thp_defrag_text(k) == "always defer defer+madvise madvise [never]"


def test_thp_on_raises_min_free_kbytes(tier) -> None:
    """khugepaged's set_recommended_min_free_kbytes: 11 pageblocks per zone up to NORMAL,
    capped at 5 % of managed-minus-HIGH; back to the boot value when THP goes off (both
    seen on the oracle's 2node-tier: node 0 DMA32 MIN 455 -> 5639 on 6.12, and 440 / 5638
    after writing never / madvise on 6.1; numasim computes from today's managed pages)."""
    k = Kernel(tier, "6.12")
    boot = [int(x) for x in k.ks.zones[:, S.Z_MIN]]
    assert k.min_free_kbytes == k.ks.derived.min_free_kbytes
    runner_lines = run_script("write /sys/kernel/mm/transparent_hugepage/enabled always\n"
                              "cat /proc/sys/vm/min_free_kbytes\n"
                              "write /sys/kernel/mm/transparent_hugepage/enabled never\n"
                              "cat /proc/sys/vm/min_free_kbytes\n", tier, kernel="6.12")
    vals = [int(r.text[2:]) for r in runner_lines if r.text.startswith("| ")]
    zones = [z for z in k.ks.derived.zones if z.present > 0]
    free_buffer = sum(max(int(k.ks.zones[z.index, S.Z_MANAGED] - k.ks.zones[z.index, S.Z_HIGH]),
                          0) for z in zones)
    assert recommended_min_free_kbytes(k) == min(512 * len(zones) * 11, free_buffer // 20) * 4
    assert vals == [recommended_min_free_kbytes(k), k.ks.derived.min_free_kbytes]
    k2 = Kernel(tier, "6.12", thp="always")  # khugepaged starts at boot
    assert k2.min_free_kbytes == recommended_min_free_kbytes(k)
    raised = [int(x) for x in k2.ks.zones[:, S.Z_MIN]]
    assert all(b <= r for b, r in zip(boot, raised, strict=True)) and sum(raised) > 5 * sum(boot)
    assert np.array_equal(k2.ks.zones[:, S.Z_LOW] - k2.ks.zones[:, S.Z_MIN],
                          np.maximum(k2.ks.zones[:, S.Z_MIN] // 4,
                                     k2.ks.zones[:, S.Z_MANAGED] * 10 // 10000))


def test_defrag_from_yaml_cli_and_python(tmp_path, capsys) -> None:
    """``transparent_hugepage/defrag`` from the machine YAML (and back through ``dump``),
    ``--thp-defrag`` on ``numasim script``/``run``, and ``numasim.run(thp_defrag=...)``;
    a bad mode is one paragraph and exit 2 (EINVAL from the sysfs file in a script)."""
    from numasim.cli import main
    from numasim.errors import NumasimError
    from numasim.kernel_settings import with_kernel_settings
    from numasim.topology.loaders import load_machine
    from numasim.topology.loaders.yaml_machine import dump

    yaml = ("name: two\nnodes:\n  - {id: 0, cpus: 0-1, memory: 2GiB}\n"
            "  - {id: 1, cpus: 2-3, memory: 2GiB}\nkernel:\n  transparent_hugepage: always\n"
            "  transparent_hugepage_defrag: defer\n")
    f = tmp_path / "m.yaml"
    f.write_text(yaml)
    m = load_machine(f)
    assert m.thp_defrag == "defer" and H.thp_defrag(Kernel(m, "6.12")) == "defer"
    g = tmp_path / "g.yaml"
    g.write_text(dump(m))
    assert load_machine(g) == m
    f.write_text(yaml.replace("defer", "sometimes"))
    with pytest.raises(NumasimError, match="transparent_hugepage_defrag"):
        load_machine(f)
    defrag = "/sys/kernel/mm/transparent_hugepage/defrag"
    assert main(["script", "--thp-defrag", "defer+madvise", "-m", str(g), "-e",
                 f"cat {defrag}; write {defrag} bogus"]) == 0
    out = capsys.readouterr().out
    assert "| always defer [defer+madvise] madvise never" in out and "errno=EINVAL" in out
    assert main(["script", "--thp-defrag", "sometimes", "-m", str(g), "-e", "getcpu"]) == 2
    err = capsys.readouterr().err
    assert "--thp-defrag" in err and "defer+madvise" in err and "Traceback" not in err
    assert with_kernel_settings(m, thp_defrag="always").thp_defrag == "always"
    with pytest.raises(NumasimError, match="defrag"):
        with_kernel_settings(m, thp_defrag="sometimes")


def test_defrag_reaches_a_timed_run_and_its_result() -> None:
    """``numasim.run(thp_defrag=...)``: the result's kernel line names the mode."""
    from numasim.api import run
    from numasim.topology.loaders import load_machine
    from numasim.workloads.model import Phase, Region, Workload

    wl = Workload(name="thp", threads=1, cpus=[0], regions=[Region("a", 4 << 20)],
                  phases=[Phase("init", "init")])
    res = run(load_machine("clx-2s"), wl, thp="always", thp_defrag="defer").to_dict(host=False)
    assert res["kernel_mm"]["thp"] == "always" and res["kernel_mm"]["thp_defrag"] == "defer"
    assert res["kernel_mm"]["thp_vmstat"]["thp_fault_alloc"] >= 1
