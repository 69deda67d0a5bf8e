"""The ``dram`` model: a request-level DRAM memory controller (configuration and simulation).

What is modelled (per controller = per NUMA node): ``channels`` independent channels, each
with ``ranks`` x ``bankgroups`` x ``banks`` banks; open-page row buffers (a request is a row
*hit*: CL + burst; a *miss* on a closed bank: tRCD + CL + burst; a *conflict*: tRP + tRCD + CL
+ burst, PRE no earlier than tRAS after the ACT and tRTP / tWR after the last column command);
tCCD_S/L, tRRD_S/L and tFAW; separate read and write queues with a write drain between a high
and a low watermark; read-to-write (tRTW = CL + burst + 2 - CWL) and write-to-read (CWL + burst
+ tWTR_S/L) turnaround; rank-to-rank bus gaps (tRTRS); all-bank refresh (every tREFI each rank
is closed and blocked for tRFC, ranks staggered); a fixed latency outside the DRAM
(``added_latency_ns``, CXL).  Scheduling: FR-FCFS with a hit cap (see
:mod:`numasim.memctrl.dram_core`).  Address mapping, low to high bits: line, channel, bank
group, column, bank, rank, row (consecutive lines interleave over channels, then bank groups).

Not modelled: the command bus (one command per clock), power-down, per-bank or fine-grained
refresh, DDR5 same-bank refresh, write-to-read forwarding, ECC, read/write data bus inversion,
the controller's front-end queues and the path from the core (the engines add the idle
latency of the machine's latency matrix; :class:`LoadedCurve` gives only what load adds).

Presets (with every number's source): :mod:`numasim.memctrl.dram_presets`.

How the engines use it (issue 11):

* ``memory_controller: {impl: dram, preset: ddr4-2933, ...}`` in a machine YAML selects
  :class:`numasim.memctrl.dram.DramController` (the memctrl interface's ``dram``), which
  wraps this model and its derived curve.
* fast engine: :func:`numasim.memctrl.dram_curve.loaded_curve` drives the model with
  synthetic traffic once per configuration and returns a ``LoadedCurve``: read latency as a
  function of utilisation for read fractions 1, 2/3 and 1/2, and the sustainable bandwidth of
  each mix (one stream, 24 streams, random lines) as a fraction of the peak; cached in memory
  and on disk.  ``DramController.wait_table`` / ``extra_latency`` /
  ``sustainable_bandwidth`` serve it to the engines.
* exact engine (``exact: banks``, the default): every request reaching the controller is
  served through the banks by :mod:`numasim.memctrl.dram_online`, this model's scheduler run
  online (it agrees with :func:`simulate` within 2 % on the synthetic loads); ``exact:
  curve`` makes it ask ``DramController.extra_latency`` like the fast engine.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from numasim.errors import ConfigError
from numasim.memctrl import dram_core as K
from numasim.memctrl.dram_presets import DESCRIPTIONS, PRESETS, Param

TIMING_SLOTS = ("CL", "CWL", "tRCD", "tRP", "tRAS", "tBURST", "tCCD_S", "tCCD_L", "tRRD_S",
                "tRRD_L", "tFAW", "tWTR_S", "tWTR_L", "tRTP", "tWR", "tRTRS", "tRTW",
                "tREFI", "tRFC")
ORG_SLOTS = ("channels", "ranks", "bankgroups", "banks", "lines_per_row")
POLICY_SLOTS = ("window", "write_high", "write_low", "hit_cap", "refresh")
LINE = 64
MODEL_VERSION = 1  # bump when the model's answers change: on-disk curves are keyed by it


@dataclass(frozen=True)
class DramConfig:
    """A resolved DRAM configuration: the parameter table and the arrays the model runs."""

    name: str
    params: tuple[Param, ...]

    def __getitem__(self, key: str) -> float:
        for p in self.params:
            if p.name == key:
                return p.value
        raise KeyError(key)

    @property
    def tck_ns(self) -> float:
        return 2000.0 / self["data_rate"]

    @property
    def peak_bytes_per_s(self) -> float:
        """Burst-limited peak of all channels: one line per tBURST per channel."""
        return self["channels"] * LINE / (self["tBURST"] * self.tck_ns * 1e-9)

    @property
    def refresh_fraction(self) -> float:
        """The share of time a rank is refreshing: tRFC / tREFI (0 without refresh)."""
        return self["tRFC"] / self["tREFI"] if self["refresh"] else 0.0

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        v = {p.name: int(round(p.value)) for p in self.params}
        v["tRTW"] = v["CL"] + v["tBURST"] + 2 - v["CWL"]
        v["lines_per_row"] = v["row_bytes"] // LINE
        tim = np.array([v[k] for k in TIMING_SLOTS], dtype=np.int64)
        org = np.array([v[k] for k in ORG_SLOTS], dtype=np.int64)
        pol = np.array([v[k] for k in POLICY_SLOTS], dtype=np.int64)
        return tim, org, pol

    def key(self) -> str:
        """A stable hash of everything that changes the model's answers."""
        blob = json.dumps([MODEL_VERSION, [(p.name, p.value) for p in self.params]])
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _check(name: str, v: dict[str, float], file: str | None) -> None:
    problems = []

    def bad(field: str, why: str) -> None:
        problems.append((field, why))

    for k in ("data_rate", "bus_bytes", "channels", "ranks", "bankgroups", "banks",
              "row_bytes", "CL", "CWL", "tRCD", "tRP", "tRAS", "tBURST", "tCCD_S", "tCCD_L",
              "tREFI", "tRFC", "window", "write_high"):
        if not v[k] > 0:
            bad(k, f"must be > 0 (got {v[k]:g})")
    for k, val in v.items():
        if val < 0:
            bad(k, f"must be >= 0 (got {val:g})")
        elif k != "added_latency_ns" and k != "data_rate" and val != int(val):
            bad(k, f"must be a whole number of {DESCRIPTIONS[k][0]} (got {val:g})")
    if v["bus_bytes"] > 0 and v["tBURST"] > 0 and v["bus_bytes"] * 2 * v["tBURST"] != LINE:
        bad("tBURST", f"bus_bytes x 2 x tBURST must be one {LINE}-byte line "
                      f"(got {v['bus_bytes']:g} x 2 x {v['tBURST']:g})")
    if v["row_bytes"] % LINE:
        bad("row_bytes", f"must be a multiple of {LINE}")
    if v["write_low"] >= v["write_high"]:
        bad("write_low", f"must be below write_high ({v['write_high']:g})")
    if v["tRFC"] >= v["tREFI"]:
        bad("tRFC", f"must be shorter than tREFI ({v['tREFI']:g}): the rank would never be "
                    "available")
    if v["tCCD_L"] < v["tCCD_S"]:
        bad("tCCD_L", "must be >= tCCD_S")
    if problems:
        from numasim.errors import Problem
        raise ConfigError(problems=[Problem(f"dram preset '{name}': {why}", file,
                                            f"memory_controller.{f}",
                                            hint=DESCRIPTIONS[f][1]) for f, why in problems])


def dram_config(preset: str, overrides: Mapping[str, float] | None = None, *,
                file: str | None = None) -> DramConfig:
    """The configuration of ``preset`` with ``overrides`` (name -> value) applied and checked.

    Unknown presets or parameter names and impossible values raise :class:`ConfigError`
    naming the field and what would be valid."""
    from numasim.errors import did_you_mean

    if preset not in PRESETS:
        raise ConfigError(f"unknown DRAM preset '{preset}'", file=file,
                          field="memory_controller.preset", hint=did_you_mean(preset, PRESETS))
    params = {p.name: p for p in PRESETS[preset]}
    for k, val in (overrides or {}).items():
        if k not in params:
            raise ConfigError(f"unknown DRAM parameter '{k}'", file=file,
                              field=f"memory_controller.{k}", hint=did_you_mean(k, params))
        if isinstance(val, bool) or not isinstance(val, (int, float)):
            raise ConfigError(f"DRAM parameter '{k}' must be a number (got {val!r})",
                              file=file, field=f"memory_controller.{k}",
                              hint=DESCRIPTIONS[k][1])
        p = params[k]
        params[k] = Param(k, float(val), p.unit, p.description, "user override")
    _check(preset, {k: p.value for k, p in params.items()}, file)
    return DramConfig(preset, tuple(params.values()))


@dataclass(frozen=True)
class Served:
    """What :func:`simulate` returns, one entry per request in input order."""

    done_ns: np.ndarray  # completion: last data beat (+ added_latency_ns)
    latency_ns: np.ndarray  # done_ns - arrival
    kind: np.ndarray  # dram_core.ROW_HIT / ROW_MISS / ROW_CONFLICT


def simulate(cfg: DramConfig, arrival_ns: np.ndarray, addr: np.ndarray,
             is_write: np.ndarray) -> Served:
    """Serve a stream of 64-byte requests; ``arrival_ns`` must be non-decreasing."""
    arrival_ns = np.ascontiguousarray(arrival_ns, dtype=np.float64)
    addr = np.ascontiguousarray(addr, dtype=np.int64)
    w = np.ascontiguousarray(is_write, dtype=np.int64)
    if not (arrival_ns.shape == addr.shape == w.shape) or arrival_ns.ndim != 1:
        raise ValueError("arrival_ns, addr and is_write must be 1-D arrays of one length")
    if not np.all(np.isfinite(arrival_ns)) or np.any(arrival_ns < 0):
        raise ValueError("arrival_ns must be finite and >= 0")
    if np.any(addr < 0):
        raise ValueError("addr must be >= 0")
    if arrival_ns.size and np.any(np.diff(arrival_ns) < 0):
        raise ValueError("arrival_ns must be sorted (non-decreasing)")
    tim, org, pol = cfg.arrays()
    tck = cfg.tck_ns
    arr = np.ceil(arrival_ns / tck - 1e-9).astype(np.int64)
    dec = K.decode(addr, org)
    nbg, nba = org[K.O_BANKGROUPS], org[K.O_BANKS]
    gbank = dec[:, 1] * nbg + dec[:, 2]
    bank = gbank * nba + dec[:, 3]
    done = np.zeros(arr.size, dtype=np.int64)
    kind = np.zeros(arr.size, dtype=np.int64)
    req = np.ascontiguousarray(np.stack([bank, dec[:, 4], dec[:, 1], gbank], axis=1))
    par = K.pack_params(tim, org, pol)
    order = np.argsort(dec[:, 0], kind="stable")  # by channel, arrival order kept
    bounds = np.searchsorted(dec[order, 0], np.arange(org[K.O_CHANNELS] + 1))
    for c in range(org[K.O_CHANNELS]):
        idx = order[bounds[c]:bounds[c + 1]]
        if idx.size == 0:
            continue
        d = np.zeros(idx.size, dtype=np.int64)
        kd = np.zeros(idx.size, dtype=np.int64)
        K.run_channel(arr[idx], w[idx], req[idx], par, d, kd)
        done[idx] = d
        kind[idx] = kd
    done_ns = done * tck + cfg["added_latency_ns"]
    return Served(done_ns, done_ns - arrival_ns, kind)

