"""A machine calibrated from a user's own Intel MLC run (``numasim topo import-mlc``).

:func:`merge_mlc` puts what an MLC text holds (:mod:`numasim.topology.loaders.mlc`) into a
machine: the idle latency matrix, the read bandwidth matrix (and each node's controller
bandwidth, its diagonal, as the shipped machines set it) and a ``curve`` controller model
from the loaded-latency table, with the bandwidth of each read/write mix when the run holds
MLC's peak-injection (or max) bandwidth table.  MLC names nodes as Linux numbers them, so
its matrices must cover exactly the machine's nodes.
"""

from __future__ import annotations

from dataclasses import replace

from numasim.errors import NumasimError
from numasim.memctrl import ControllerSpec
from numasim.topology.loaders.mlc import MlcRun, curve_points, mix_points
from numasim.topology.model import Machine


def _check_nodes(machine: Machine, nodes: list[int], what: str, run: MlcRun) -> None:
    ids = list(machine.node_ids)
    if nodes != ids:
        raise NumasimError(
            f"the MLC {what} has nodes {nodes} and the machine {machine.name!r} has nodes "
            f"{ids}", file=run.file, hint="give the machine MLC ran on (--machine), with the "
            "same NUMA nodes; a machine with CPU-less nodes needs its matrices written by "
            "hand (MLC measures only from nodes with CPUs)")


def merge_mlc(machine: Machine, run: MlcRun, *, curve: bool = True) -> Machine:
    """``machine`` with the matrices and loaded-latency curve of ``run`` (what ``run`` does
    not hold stays as it was)."""
    changes: dict = {}
    derived = set(machine.derived)
    source = f"MLC output {run.file}"
    if run.latency_ns is not None:
        _check_nodes(machine, run.latency_nodes or [], "idle latency matrix", run)
        changes["latency_ns"] = tuple(tuple(float(v) for v in row) for row in run.latency_ns)
        derived.discard("latency")
    if run.bandwidth_MBps is not None:
        _check_nodes(machine, run.bandwidth_nodes or [], "bandwidth matrix", run)
        gbps = tuple(tuple(v / 1000.0 for v in row) for row in run.bandwidth_MBps)
        changes["bandwidth_GBps"] = gbps
        derived.discard("bandwidth")
        nodes = []
        for i, n in enumerate(machine.nodes):
            nodes.append(replace(n, mc_bandwidth_GBps=gbps[i][i]) if n.has_memory else n)
        changes["nodes"] = tuple(nodes)
    if curve and run.loaded:
        pts = curve_points(run.loaded, run.file, run.loaded_line)
        params: tuple = (("points", pts),)
        note = ""
        if run.mix:
            params += (("mix", mix_points(run.mix)),)
            note = (f"; mix = MLC's {run.mix_kind} bandwidth per read/write mix over ALL "
                    "Reads'")
        changes["memory_controller"] = ControllerSpec.from_dict(dict(params + (
            ("impl", "curve"),
            ("source", f"{source}, --loaded_latency (utilisation = bandwidth / the table's "
                       f"peak, extra = latency - the lightest load's){note}"),)))
    changes["derived"] = frozenset(derived)
    return machine.with_changes(**changes)
