"""Every recorded oracle scenario, replayed by ``numasim script`` and compared with what the
real kernel printed (Linux 6.12 and 6.1 under QEMU; recordings in ``tests/data/oracle``,
see its SOURCES.md and FINDINGS.md).

Each scenario/kernel pair is one test.  It checks, in this order:

1. the oracle's own ``run_oracle.py --check`` comparison: every line except those that
   depend on timing or memory state; in ``fill`` scenarios only the order in which nodes
   appear in each query (kernel console messages with boot timestamps are left out);
2. ``numastat_delta`` answers counter by counter, with the tolerance for the probe's own
   background allocations that ``numasim.mm.script.check.check_numastat`` states and
   justifies: a few extra pages, never fewer, and only on the nodes where the task's own
   kernel allocations go and node 0 (elsewhere exact, give or take one stray slab page);
   tens of pages under memory pressure;
3. ``zone`` lines (present exact, managed and watermarks within stated tolerances) and
   ``numa_maps`` lines (address, policy, file, anon and per-node counts);
4. NUMA balancing scenarios (81-89; promotion in tiering mode 100-101): where pages are
   after a ``spin`` and the ``vmstat_delta`` counters, with the tolerances
   ``check_vmstat`` and ``moved_summary_ok`` state (pages left in a per-CPU LRU
   batch, scan passes that depend on timing).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from numasim.mm.script import run_script, script_layout
from numasim.mm.script.check import (
    check_lines,
    check_numa_maps,
    check_numastat,
    check_vmstat,
    check_zones,
    lru_batch_of,
    noise_nodes_of,
)
from numasim.topology.loaders import layout

DATA = Path(__file__).parent / "data"
ORACLE = DATA / "oracle"
LAYOUTS = DATA / "topologies" / "layouts"
KERNELS = ("6.12", "6.1")

# (scenario stem, kernel) -> reason: differences that are understood and documented.
XFAIL: dict[tuple[str, str], str] = {}


def cases():
    for scen in sorted(ORACLE.glob("[0-9]*_*.txt")):
        for kern in KERNELS:
            exp = ORACLE / f"expected_{scen.stem}.{kern}.txt"
            if not exp.exists():
                continue
            marks = ()
            reason = XFAIL.get((scen.stem, kern))
            if reason:
                marks = (pytest.mark.xfail(strict=True, reason=reason),)
            yield pytest.param(scen, exp, kern, id=f"{scen.stem}-{kern}", marks=marks)


_machines: dict = {}


def machine_for(text: str, kern: str):
    name = script_layout(text) or "4node-asym"
    key = (name, kern)
    if key not in _machines:
        _machines[key] = layout.load(LAYOUTS / f"{name}.layout", kernel=kern)
    return _machines[key]


@pytest.mark.parametrize(("scenario", "recording", "kernel"), list(cases()))
def test_oracle_scenario(scenario: Path, recording: Path, kernel: str) -> None:
    text = scenario.read_text()
    records = run_script(text, machine_for(text, kernel), kernel=kernel, file=str(scenario))
    got = [r.text for r in records]
    expected = [x.rstrip("\n") for x in recording.read_text().splitlines()
                if not x.startswith("## ")]
    batch = lru_batch_of(kernel)
    diffs = check_lines(expected, got, lru_batch=batch)
    diffs += check_numastat(expected, got, noise_nodes=noise_nodes_of(records))
    diffs += check_vmstat(expected, got, lru_batch=batch)
    diffs += check_zones(expected, got)
    diffs += check_numa_maps(expected, got)
    assert not diffs, f"{len(diffs)} differences, first ones:\n" + "\n".join(
        str(d) for d in diffs[:6])


def test_every_scenario_has_a_recording() -> None:
    """A scenario without any recording would silently test nothing."""
    missing = [s.name for s in ORACLE.glob("[0-9]*_*.txt")
               if not any((ORACLE / f"expected_{s.stem}.{k}.txt").exists() for k in KERNELS)]
    assert not missing, f"scenarios without recordings: {missing}"


def test_recordings_name_their_scenario() -> None:
    """Each recording's header names the scenario and kernel it was made from."""
    for rec in ORACLE.glob("expected_*.txt"):
        head = rec.read_text().splitlines()[0]
        m = re.match(r"## kernel (\S+)\s+layout (\S+)\s+scenario (\S+)", head)
        assert m, rec.name
        kern = re.search(r"\.(6\.\d+)\.txt$", rec.name).group(1)
        assert m.group(1).startswith(kern), rec.name
