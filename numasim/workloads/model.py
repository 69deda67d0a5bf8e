"""A workload, as plain dataclasses: threads, memory regions with policies, phases.

This is the Python API under the YAML schema (:mod:`numasim.workloads.schema`) and the
built-in kernels (:mod:`numasim.workloads.kernels`).  Sizes are bytes; policies are written
the way numactl takes them (``--interleave=all``, ``--membind=1``, ``--localalloc``) and are
applied with ``set_mempolicy`` (the task policy, before the threads start, as ``numactl``
does before ``exec``) or ``mbind`` (a region's policy, right after its ``mmap``).

Phases run one after another with a barrier between them.  Work in a phase is split among
the threads that run it: ``parallel`` gives each thread a contiguous chunk (OpenMP's static
schedule), ``serial`` lets thread 0 do everything while the others wait (the classic
first-touch trap), ``each`` gives every thread the whole range.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

KERNELS = ("init", "stream", "gups", "pointer_chase", "stride", "zipf", "kv", "prodcons",
           "trace", "mbind")
STREAM_OPS = ("copy", "scale", "add", "triad")
SPLITS = ("parallel", "serial", "each")
PLACEMENTS = ("spread", "compact")
REGION_KINDS = ("anon", "shared")

# compute cycles before each access, by kernel (a few cycles of arithmetic per line for STREAM,
# the random number and index arithmetic of GUPS, nothing between dependent loads)
DEFAULT_COMPUTE = {"init": 1, "stream": 2, "gups": 8, "pointer_chase": 0, "stride": 2,
                   "zipf": 4, "kv": 4, "prodcons": 2, "trace": 1}


@dataclass
class Region:
    """An ``mmap`` of ``size`` bytes (``anon``: private anonymous, ``shared``:
    MAP_SHARED|MAP_ANONYMOUS), with an optional ``mbind`` policy in numactl syntax."""

    name: str
    size: int
    kind: str = "anon"
    policy: str | None = None


@dataclass
class Phase:
    """One loop of the program over some regions.

    ``kernel``: ``init`` (write every line: first touch), ``stream`` (``op`` copy, scale, add,
    triad over regions a, b, c), ``gups`` (random read-modify-write), ``pointer_chase``
    (dependent loads), ``stride`` (``stride`` bytes apart), ``zipf`` (``theta``; ``shift``
    moves the hot set each repetition), ``kv`` (gets of ``value`` bytes on Zipf(``theta``)
    popular keys, ``write_fraction`` of them sets, ``shift`` as zipf; ``count`` is gets),
    ``prodcons`` (the first ``producers`` threads write the buffer, the others read what a
    producer wrote), ``trace`` (replay the workload's trace), ``mbind`` (set ``policy`` on the
    regions, moving pages with ``move``).
    """

    name: str
    kernel: str
    regions: list[str] = field(default_factory=list)
    split: str = "parallel"
    threads: list[int] | None = None
    repeat: int = 1
    compute: int | None = None
    measure: bool | None = None
    op: str = "triad"
    stride: int = 64
    count: int | None = None
    theta: float = 0.99
    write: bool = False
    # zipf/kv: the hot set moves by this much per repetition: bytes (an int) or a fraction
    # of the region (a float below 1); 0: it stays
    shift: float = 0
    value: int = 4096  # kv: bytes of one value (whole lines)
    write_fraction: float = 0.0  # zipf/kv: the share of items accessed with a write
    producers: int | None = None
    policy: str | None = None
    move: bool = False

    @property
    def measured(self) -> bool:
        if self.measure is not None:
            return self.measure
        return self.kernel not in ("init", "mbind")


@dataclass
class Trace:
    """A memory trace to replay (see :mod:`numasim.workloads.trace` for the formats)."""

    path: str
    format: str = "auto"  # auto | npz | lackey
    cpu: int | None = None  # CPU a single-threaded (lackey) trace runs on
    instructions: bool = False  # lackey 'I' records as loads


@dataclass
class Workload:
    """Everything a run needs besides the machine."""

    name: str
    threads: int = 1
    placement: str = "spread"
    cpus: list[int] | None = None
    # pinned (each thread's affinity is its one CPU) or free to run on any CPU the task may
    # use; only NUMA balancing's task placement moves a free thread
    pin: bool = True
    numactl: list[str] = field(default_factory=list)
    regions: list[Region] = field(default_factory=list)
    phases: list[Phase] = field(default_factory=list)
    cpu: dict[str, Any] = field(default_factory=dict)
    trace: Trace | None = None
    description: str = ""
    file: str | None = None

    def region(self, name: str) -> Region:
        for r in self.regions:
            if r.name == name:
                return r
        raise KeyError(name)
