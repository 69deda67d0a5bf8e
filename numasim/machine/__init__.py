"""The machine in time: CPUs, memory controllers and interconnect links with finite bandwidth.

* ``resources``: the queues a memory request passes (controllers, links, bandwidth caps) and
  the route of every (CPU node, memory node) pair;
* ``params``: the CPU model's knobs (miss slots, compute, fault cost, write policy) and the
  fast engine's;
* ``cpu``: what both engines share about a CPU: state arrays, statistics, the latency
  histogram, the optional per-node last-level cache;
* ``exact``: the reference engine, SimPy request by request, true FIFO queues;
* ``fast``: the bound-weave engine, one numba call per CPU per quantum, contention estimated
  from the previous quantum;
* ``engine``: the contract both engines keep (what they read and write of a run);
* ``sim``: one run in time: a built program (:mod:`numasim.wiring`), resources, an engine, raw
  statistics;
* ``report``: the statistics as a JSON document and as a readable summary.

Both engines read the same :class:`~numasim.machine.resources.Resources` and the same access
streams (:mod:`numasim.workloads.gen`), so a difference between them is a difference in how
queueing is resolved, nothing else.
"""
