"""The CPU model's knobs, with the defaults a modern x86 server core has.

Every number here is a modelling choice a user may change (workload YAML ``cpu:``, the
``--mlp`` style options of ``numasim numactl``, or :func:`numasim.api.run` keywords); the
defaults are stated so results can be read against them:

* ``mlp`` = 10 miss slots: an Intel core has 10-12 L1D fill buffers (10 up to Broadwell,
  probably 12 on Skylake: P. Cordes' answer to Stack Overflow question 39260020, "Why is
  Skylake so much better than Broadwell-E for single-threaded memory throughput?"), so a
  single thread whose misses no prefetcher covers streams ``10 * 64 B / latency`` at most
  (7.9 GB/s at 81 ns);
* ``prefetch`` = ``off``: the L2 stream prefetcher is not modelled, every miss needs one of
  the ``mlp`` slots.  ``stream`` models it simply: an access of a sequential sweep (a STREAM
  array, an init loop, a strided walk whose stride is at most 2 KiB -- the L1 IP-stride
  prefetcher's reach in the same manual) may issue while fewer than ``l2_mlp`` misses are in
  flight, as if the prefetcher had brought its line towards L2 ahead of the demand; random,
  Zipf, trace and dependent (pointer chase) accesses still get ``mlp``.  It is off by
  default so the shipped answers stay those the course and experiments state;
* ``l2_mlp`` = 16: outstanding L2 misses per core (the L2 "superqueue", 16 entries: same
  answer), the parallelism a prefetched stream reaches; used only with ``prefetch:
  stream``.  Single-thread bandwidth is Little's law, concurrency over latency (J. McCalpin,
  Intel community forum thread "single core bandwidth: haswell vs. broadwell vs. skylake":
  19.9 GB/s single-thread STREAM triad on a 2-socket Xeon E5-2690 v3, and lower on the
  Skylake Xeons, whose memory latency is higher); with ``prefetch: stream`` numasim gives a
  single Cascade Lake thread 16 x 64 B / 81 ns (12.6 GB/s triad, against 7.9 without);
* ``write_allocate``: a store that misses first reads the line for ownership, then the dirty line
  is written back (two transfers per stored line, as on x86 without streaming stores); off, a
  store is a non-temporal write (one transfer, holding a miss slot until it is acknowledged);
* ``fault_ns`` = 500 ns for the kernel part of a page fault (entry, allocator, page tables),
  plus the zeroing of the new page modelled as ``page_size / line`` non-temporal line writes to
  the page's node, issued every ``zero_gap_cycles`` through the miss slots;
* ``hit_ns``: the cost of an access that needs no memory (a read of the shared zero page, an LLC
  hit);
* ``start_skew_ns`` = 0: threads start every phase at the same cycle; a positive value spreads
  their starts uniformly over that many ns (threads leave a barrier a little apart), drawn
  from the run's seed.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

from numasim.errors import ConfigError


@dataclass(frozen=True)
class LlcParams:
    """A last-level cache per node (shared by that node's CPUs): set-associative, LRU."""

    size: int = 32 << 20
    ways: int = 16
    hit_ns: float = 20.0


@dataclass(frozen=True)
class TlbParams:
    """A per-CPU unified second-level TLB (4 KiB and 2 MiB entries share it), set-associative
    LRU.  Defaults: Intel Skylake-SP / Cascade Lake STLB, 1536 entries, 12-way, shared by
    4 KiB and 2 MiB pages (Intel 64 and IA-32 Architectures Optimization Reference Manual,
    section 2.2 "Skylake Server microarchitecture", table "TLB parameters").

    * ``entries`` (1536): translations held per CPU; 4 KiB pages reach 6 MiB, 2 MiB pages 3 GiB;
    * ``ways`` (12): associativity (``entries`` must be a multiple of it);
    * ``walk`` (True): a miss loads the line (8 entries of 8 B) of the page table that maps the
      page -- the PTE table, or for a PMD-mapped THP the PMD table -- from the node that holds
      that table page, before the access it serves; False counts misses only."""

    entries: int = 1536
    ways: int = 12
    walk: bool = True


@dataclass(frozen=True)
class CpuParams:
    mlp: int = 10
    l2_mlp: int = 16
    prefetch: str = "off"
    write_allocate: bool = True
    fault_ns: float = 500.0
    zero_gap_cycles: float = 1.0
    hit_ns: float = 10.0
    start_skew_ns: float = 0.0
    llc: LlcParams | None = None
    tlb: TlbParams | None = None

    @property
    def slots(self) -> int:
        """Miss slots the engines keep per CPU: ``l2_mlp`` with the prefetcher, else ``mlp``."""
        return max(self.mlp, self.l2_mlp) if self.prefetch != "off" else self.mlp

    def with_overrides(self, **kw: Any) -> CpuParams:
        names = {f.name for f in fields(self)}
        bad = sorted(set(kw) - names)
        if bad:
            raise ConfigError(f"unknown CPU parameter {bad[0]!r}", field="cpu",
                              hint="valid: " + ", ".join(sorted(names)))
        out = replace(self, **{k: v for k, v in kw.items() if v is not None})
        out.check()
        return out

    def check(self) -> None:
        if not 1 <= self.mlp <= 256:
            raise ConfigError(f"mlp must be 1..256, got {self.mlp}", field="cpu.mlp")
        if not 1 <= self.l2_mlp <= 256:
            raise ConfigError(f"l2_mlp must be 1..256, got {self.l2_mlp}", field="cpu.l2_mlp")
        if self.prefetch not in PREFETCH_MODES:
            raise ConfigError(f"unknown prefetch mode {self.prefetch!r}", field="cpu.prefetch",
                              hint="valid: " + ", ".join(PREFETCH_MODES))
        if self.prefetch != "off" and self.l2_mlp < self.mlp:
            raise ConfigError(f"l2_mlp ({self.l2_mlp}) is below mlp ({self.mlp}): the L2 "
                              "tracks at least the misses of L1", field="cpu.l2_mlp",
                              hint=f"give l2_mlp >= {self.mlp}, or prefetch: off")
        if self.fault_ns < 0 or self.hit_ns < 0 or self.zero_gap_cycles < 0:
            raise ConfigError("fault_ns, hit_ns and zero_gap_cycles must not be negative",
                              field="cpu")
        if self.llc is not None:
            if self.llc.ways < 1 or self.llc.size < 64 * self.llc.ways:
                raise ConfigError("llc needs at least one set of 'ways' lines", field="cpu.llc")
            if self.llc.size > MAX_LLC_BYTES or self.llc.ways > 1024:
                # numasim keeps 32 bytes per cached line per node: the size decides host memory
                raise ConfigError(f"an llc of {self.llc.size} bytes and {self.llc.ways} ways is "
                                  "larger than any real last-level cache", field="cpu.llc",
                                  hint="at most 1 GiB per node and 1024 ways (the largest "
                                       "real ones hold about 1.1 GB per socket)")
        if self.tlb is not None:
            t = self.tlb
            if not (1 <= t.ways <= t.entries <= 1 << 20) or t.entries % t.ways:
                raise ConfigError(f"a tlb of {t.entries} entries and {t.ways} ways is not a "
                                  "set-associative TLB", field="cpu.tlb",
                                  hint="entries 1..1048576, a multiple of ways (>= 1); e.g. "
                                       "entries: 1536, ways: 12 (Skylake-SP STLB)")


MAX_LLC_BYTES = 1 << 30
PREFETCH_MODES = ("off", "stream")


@dataclass(frozen=True)
class EngineParams:
    """Knobs of the fast engine.  ``quantum`` (cycles) fixes the quantum; otherwise it starts
    at ``quantum_min`` at every phase and doubles up to ``quantum_max``, shortening when a
    thread is about to finish.  ``concentration``: requests bunched in time within a quantum
    (threads marching through interleaved pages in lockstep, a convoy) raise the wait
    everyone meets at that resource; turn it off to model every quantum's load as steady."""

    quantum: int | None = None
    quantum_min: int = 2_000
    quantum_max: int = 2_000_000
    concentration: bool = True
    # host threads of the bound phase (numasim.machine.ahead.host_threads); None: the
    # NUMASIM_HOST_THREADS variable, else the CPUs this process may use.  Never changes a
    # result, so it is not part of a result's config
    host_threads: int | None = None
    # fast-forward (numasim.machine.fastforward.FastForwardParams); None: off, the default
    fast_forward: Any = None
