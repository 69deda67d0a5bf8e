"""Contract: the numba allocator core and its plain-Python twin make the same decisions.

Random machines (ids with gaps, memoryless and CPU-less nodes, tiny memories so watermarks and
fallback matter) and random sequences of system calls and memory touches are run through
``Kernel(backend="numba")`` and ``Kernel(backend="python")``; after every step the whole
mm state must be identical: every page on the same node, the same free counts, numastat,
vmstat, task counters, and the same errors.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from numasim.mm import state as S
from numasim.mm import syscalls as sc
from numasim.mm.constants import (
    MPOL_BIND,
    MPOL_DEFAULT,
    MPOL_F_RELATIVE_NODES,
    MPOL_F_STATIC_NODES,
    MPOL_INTERLEAVE,
    MPOL_LOCAL,
    MPOL_MF_MOVE,
    MPOL_MF_STRICT,
    MPOL_PREFERRED,
    MPOL_PREFERRED_MANY,
    MPOL_WEIGHTED_INTERLEAVE,
)
from numasim.mm.kernel import Kernel, Segfault, TaskKilled
from numasim.mm.nodemask import UserMask
from numasim.topology.build import make_machine
from numasim.topology.model import Node

MODES = [MPOL_DEFAULT, MPOL_PREFERRED, MPOL_BIND, MPOL_INTERLEAVE, MPOL_LOCAL,
         MPOL_PREFERRED_MANY, MPOL_WEIGHTED_INTERLEAVE]


@st.composite
def machines(draw):
    n = draw(st.integers(1, 5))
    ids = sorted(draw(st.sets(st.integers(0, 9), min_size=n, max_size=n)))
    nodes, cpu = [], 0
    for k, nid in enumerate(ids):
        has_cpu = k == 0 or draw(st.booleans())
        has_mem = k == 0 or draw(st.integers(0, 4)) > 0
        ncpu = draw(st.integers(1, 2)) if has_cpu else 0
        mem = draw(st.sampled_from([1 << 20, 3 << 19, 2 << 20, 3 << 20])) if has_mem else 0
        nodes.append(Node(nid, tuple(range(cpu, cpu + ncpu)), mem))
        cpu += ncpu
    dist = [[10] * n for _ in range(n)]
    for i in range(n):
        for j in range(i + 1, n):
            dist[i][j] = dist[j][i] = draw(st.sampled_from([12, 16, 20, 21, 30]))
    weights = tuple(draw(st.integers(1, 4)) for _ in range(n))
    return make_machine("rand", nodes, distance=dist, wi_weights=weights)


def twin_kernels(machine, kernel):
    return (Kernel(machine, kernel, backend="numba"), Kernel(machine, kernel, backend="python"))


def assert_same(a: Kernel, b: Kernel) -> None:
    ka, kb = a.ks, b.ks
    npages = int(ka.sysvars[S.SV_NEXT_PAGE])
    assert npages == int(kb.sysvars[S.SV_NEXT_PAGE])
    for name in ("zones", "numastat", "vmstat", "tasks", "sysvars"):
        np.testing.assert_array_equal(getattr(ka, name), getattr(kb, name), err_msg=name)
    np.testing.assert_array_equal(ka.pages[:npages], kb.pages[:npages], err_msg="pages")
    np.testing.assert_array_equal(ka.pt_page[: ka.pt_used], kb.pt_page[: kb.pt_used])
    np.testing.assert_array_equal(ka.obj_pages[: ka.obj_pages_used],
                                  kb.obj_pages[: kb.obj_pages_used])
    np.testing.assert_array_equal(ka.vmas, kb.vmas, err_msg="vmas")


def run_both(kernels, fn):
    """Apply fn to both kernels; they must raise the same error or return the same value."""
    outs = []
    for k in kernels:
        try:
            outs.append(("ok", fn(k)))
        except OSError as e:
            outs.append(("errno", e.errno))
        except Segfault as e:
            outs.append(("segv", e.signal))
        except TaskKilled as e:
            outs.append(("killed", e.task))
    assert outs[0] == outs[1]
    assert_same(*kernels)
    return outs[0]


@st.composite
def operations(draw, machine):
    ids = list(machine.node_ids)
    cpus = list(machine.cpus)
    ops = []
    for _ in range(draw(st.integers(1, 12))):
        kind = draw(st.sampled_from(["policy", "mmap", "mbind", "touch", "cpu", "move",
                                     "fork_touch", "munmap"]))
        if kind == "policy":
            mode = draw(st.sampled_from(MODES))
            nodes = draw(st.sets(st.sampled_from(ids + [11])))
            flags = draw(st.sampled_from([0, 0, MPOL_F_STATIC_NODES, MPOL_F_RELATIVE_NODES]))
            ops.append(("policy", mode | flags, sorted(nodes)))
        elif kind == "mmap":
            ops.append(("mmap", draw(st.integers(1, 1500)), draw(st.sampled_from(
                ["anon", "anon", "shared"]))))
        elif kind == "mbind":
            mode = draw(st.sampled_from(MODES))
            nodes = sorted(draw(st.sets(st.sampled_from(ids))))
            ops.append(("mbind", draw(st.integers(0, 5)), draw(st.integers(0, 400)),
                        draw(st.integers(1, 400)), mode, nodes,
                        draw(st.sampled_from([0, MPOL_MF_MOVE, MPOL_MF_STRICT]))))
        elif kind == "touch":
            ops.append(("touch", draw(st.integers(0, 5)), draw(st.integers(0, 600)),
                        draw(st.integers(1, 1500)), draw(st.booleans())))
        elif kind == "cpu":
            ops.append(("cpu", draw(st.sampled_from(cpus))))
        elif kind == "move":
            ops.append(("move", draw(st.integers(0, 5)), draw(st.integers(0, 300)),
                        draw(st.integers(1, 50)), draw(st.sampled_from(ids))))
        elif kind == "fork_touch":
            ops.append(("fork_touch", draw(st.integers(0, 5)), draw(st.integers(0, 300)),
                        draw(st.integers(1, 200))))
        else:
            ops.append(("munmap", draw(st.integers(0, 5)), draw(st.integers(0, 300)),
                        draw(st.integers(1, 100))))
    return ops


def region_start(k: Kernel, t: int, i: int) -> tuple[int, int] | None:
    regions = k.mms[k.task_mm(t)].regions
    if not regions:
        return None
    r = regions[i % len(regions)]
    return int(k.ks.regions[r, S.R_START]), int(k.ks.regions[r, S.R_END])


def apply(k: Kernel, t: int, op) -> object:
    name = op[0]
    if name == "policy":
        return sc.set_mempolicy(k, t, op[1], UserMask.of(op[2]), 1025)
    if name == "mmap":
        r = k.mmap(t, op[1], kind=op[2])
        return int(k.ks.regions[r, S.R_START])
    span = region_start(k, t, op[1]) if len(op) > 1 and name != "cpu" else None
    if name == "cpu":
        k.set_cpu(t, op[1])
        return None
    if span is None:
        return None
    start, end = span
    if name == "mbind":
        _, _, off, n, mode, nodes, flags = op
        return sc.mbind(k, t, (start + off) << 12, n << 12, mode, UserMask.of(nodes), 1025,
                        flags)
    if name == "touch":
        _, _, off, n, write = op
        return k.touch(t, start + off, max(0, min(n, end - start - off)), write=write)
    if name == "move":
        _, _, off, n, node = op
        addrs = [(start + off + i) << 12 for i in range(n)]
        return sc.move_pages(k, t, 0, addrs, [node] * n, 0)
    if name == "fork_touch":
        _, _, off, n = op
        child = k.fork(t)
        try:
            return k.touch(child, start + off, max(0, min(n, end - start - off)), write=True)
        finally:
            k.exit(child)
    if name == "munmap":
        _, _, off, n = op
        return k.munmap(k.task_mm(t), start + off, n)
    raise AssertionError(name)


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                    HealthCheck.data_too_large])
@given(data=st.data())
@pytest.mark.parametrize("kernel", ["6.12", "6.1", "2.6.7"])
def test_numba_core_and_python_twin_agree(kernel, data):
    machine = data.draw(machines())
    kernels = twin_kernels(machine, kernel)
    tasks = [k.new_process(machine.cpus[0]) for k in kernels]
    assert tasks[0] == tasks[1]
    t = tasks[0]
    for op in data.draw(operations(machine)):
        if not all(k.alive(t) for k in kernels):
            break
        run_both(kernels, lambda k, op=op: apply(k, t, op))
