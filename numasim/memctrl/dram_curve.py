"""What the ``dram`` model implies for an engine that cannot run it request by request.

:func:`sustainable_fraction` and :func:`loaded_curve` drive
:func:`numasim.memctrl.dram_model.simulate` with synthetic traffic (:func:`synthetic`):
Poisson (or evenly spaced) arrivals at a swept offered load; read fraction 1, 2/3 or 1/2; one
sequential stream, 24 interleaved streams (``streams``: many threads, each stream's lines
arriving in runs) or uniformly random lines.  They return plain numpy arrays in a
:class:`LoadedCurve`, the table a ``curve`` controller takes.

Only one channel is simulated: with line interleaving every channel of a controller sees the
same traffic, so per-channel fractions are the controller's fractions.  Results are cached
twice: in the process (``functools.cache``) and on disk as ``.npz`` in :func:`cache_dir`,
keyed by the configuration's parameters, the model's version, a hash of the model's source
files, the seed and the sample size, so a machine pays once and a changed model recomputes.
"""

from __future__ import annotations

import functools
import hashlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from numasim.memctrl.dram_model import LINE, DramConfig, dram_config, simulate
from numasim.memctrl.dram_presets import PRESETS

READ_FRACTIONS = (1.0, 2.0 / 3.0, 0.5)
PATTERNS = ("sequential", "streams", "random")
STREAMS = 24  # "streams": like MLC's load threads on a 24-core socket (clx-2s)...
STREAM_BURST = 8  # ...each arriving in runs of 8 lines per channel (assumed: a prefetch run)
OVERLOAD = 1.3  # offered load (x peak) that measures the sustainable bandwidth
RANDOM_SPAN = 1 << 36  # random lines are drawn over 64 GiB
WRITE_BASE = 1 << 37  # sequential writes stream from here (reads from 0), as in a copy


def synthetic(cfg: DramConfig, load: float, read_fraction: float, pattern: str, n: int,
              seed: int = 0, arrivals: str = "poisson") -> tuple[np.ndarray, ...]:
    """``n`` requests offered at ``load`` x the peak of ``cfg``: (arrival ns, address, write)."""
    if pattern not in PATTERNS:
        raise ValueError(f"pattern must be one of {PATTERNS}, not {pattern!r}")
    rng = np.random.default_rng(seed)
    gap_ns = LINE / (load * cfg.peak_bytes_per_s) * 1e9
    if arrivals == "poisson":
        gaps = rng.exponential(gap_ns, n)
        t = np.cumsum(gaps) - (gaps[0] if n else 0.0)  # the first request at 0
    elif arrivals == "uniform":
        t = np.arange(n) * gap_ns
    else:
        raise ValueError(f"arrivals must be 'poisson' or 'uniform', not {arrivals!r}")
    w = (rng.random(n) >= read_fraction).astype(np.int64)
    if pattern == "random":
        addr = rng.integers(0, RANDOM_SPAN // LINE, n) * LINE
    elif pattern == "streams":
        addr = _streams(rng, n, int(cfg["channels"]), w)
    else:
        addr = np.where(w == 1, WRITE_BASE + (np.cumsum(w) - 1) * LINE,
                        (np.cumsum(1 - w) - 1) * LINE)
    return t, addr.astype(np.int64), w


def _streams(rng: np.random.Generator, n: int, channels: int, w: np.ndarray) -> np.ndarray:
    """Line addresses of :data:`STREAMS` sequential streams from random 64 KiB-aligned bases,
    interleaved in runs of :data:`STREAM_BURST` lines per channel; a stream's writes go to
    its own second array (another random base), as a copy loop's do."""
    run = STREAM_BURST * channels
    nruns = -(-n // run)
    sid = rng.integers(0, STREAMS, nruns)
    base = rng.integers(0, RANDOM_SPAN >> 16, (2, STREAMS)) << 16
    order = np.argsort(sid, kind="stable")
    first = np.searchsorted(sid[order], sid[order])  # where each stream's runs start
    occ = np.empty(nruns, dtype=np.int64)
    occ[order] = np.arange(nruns) - first  # how many runs of the same stream came before
    line = (occ[:, None] * run + np.arange(run)[None, :]).ravel()[:n]
    return base[w, np.repeat(sid, run)[:n]] + line * LINE


def _one_channel(cfg: DramConfig) -> DramConfig:
    return dram_config(cfg.name, {p.name: p.value for p in cfg.params
                                  if p.source == "user override"} | {"channels": 1})


def _run(cfg: DramConfig, load: float, rf: float, pattern: str, n: int, seed: int):
    t, a, w = synthetic(cfg, load, rf, pattern, n, seed)
    s = simulate(cfg, t, a, w)
    util = n * LINE / (s.done_ns.max() - t[0]) * 1e9 / cfg.peak_bytes_per_s
    reads = w == 0
    lat = float(s.latency_ns[reads].mean()) if reads.any() else float(s.latency_ns.mean())
    return util, lat


def sustainable_fraction(cfg: DramConfig, read_fraction: float, pattern: str,
                         n: int = 40000, seed: int = 0) -> float:
    """Bandwidth of one channel kept busy (offered 1.3x its peak) over its burst peak."""
    return _run(_one_channel(cfg), OVERLOAD, read_fraction, pattern, n, seed)[0]


@dataclass(frozen=True)
class LoadedCurve:
    """Loaded latency and sustainable bandwidth of one DRAM configuration.

    Axis 0 of the arrays is the pattern (:data:`PATTERNS`), axis 1 the read fraction
    (:data:`READ_FRACTIONS`), axis 2 the load point.  ``utilisation`` is the bandwidth
    delivered over the peak (0..1); ``latency_ns`` the mean read latency of the DRAM alone
    (plus ``added_latency_ns``), ``added_ns`` what load adds to the lightest point."""

    preset: str
    key: str
    peak_bytes_per_s: float
    refresh_fraction: float
    patterns: tuple[str, ...]
    read_fraction: np.ndarray  # (M,)
    sustainable: np.ndarray  # (P, M) fraction of peak
    utilisation: np.ndarray  # (P, M, L)
    latency_ns: np.ndarray  # (P, M, L)

    @property
    def idle_ns(self) -> np.ndarray:
        return self.latency_ns[:, :, 0]

    @property
    def added_ns(self) -> np.ndarray:
        return self.latency_ns - self.latency_ns[:, :, :1]


def _source_hash() -> str:
    here = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for name in ("dram_core.py", "dram.py", "dram_curve.py"):
        h.update((here / name).read_bytes())
    return h.hexdigest()[:12]


def cache_dir() -> Path:
    """``$NUMASIM_CACHE_DIR``, else ``$XDG_CACHE_HOME/numasim``, else ``~/.cache/numasim``
    (numba's own cache stays where numba puts it: ``__pycache__`` or ``NUMBA_CACHE_DIR``)."""
    if os.environ.get("NUMASIM_CACHE_DIR"):
        return Path(os.environ["NUMASIM_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "numasim"


def loaded_curve(cfg: DramConfig, points: int = 12, n: int = 20000, seed: int = 0,
                 use_disk: bool = True) -> LoadedCurve:
    """The loaded-latency curves and sustainable fractions of ``cfg`` (cached)."""
    return _loaded_curve(cfg, points, n, seed, use_disk)


@functools.cache
def _loaded_curve(cfg: DramConfig, points: int, n: int, seed: int,
                  use_disk: bool) -> LoadedCurve:
    tag = f"dram-curve-{cfg.key()}-{_source_hash()}-{points}-{n}-{seed}.npz"
    path = cache_dir() / tag
    if use_disk and path.exists():
        try:
            with np.load(path) as z:
                return _pack(cfg, z["sustainable"], z["utilisation"], z["latency_ns"])
        except (OSError, KeyError, ValueError):
            pass  # a damaged cache file is recomputed
    print(f"numasim: deriving the dram curve of {cfg.name} (once; cached in {cache_dir()})",
          file=sys.stderr)
    one = _one_channel(cfg)
    shape = (len(PATTERNS), len(READ_FRACTIONS))
    sus = np.zeros(shape)
    util = np.zeros(shape + (points,))
    lat = np.zeros(shape + (points,))
    steps = np.linspace(0.02, 0.97, points)  # fractions of the sustainable load
    for p, pattern in enumerate(PATTERNS):
        for m, rf in enumerate(READ_FRACTIONS):
            sus[p, m] = _run(one, OVERLOAD, rf, pattern, 2 * n, seed)[0]
            for k, f in enumerate(steps):
                util[p, m, k], lat[p, m, k] = _run(one, f * sus[p, m], rf, pattern, n, seed)
    if use_disk:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp.npz")
            np.savez(tmp, sustainable=sus, utilisation=util, latency_ns=lat)
            os.replace(tmp, path)
        except OSError:
            pass  # a read-only home: the in-process cache still holds it
    return _pack(cfg, sus, util, lat)


def _pack(cfg: DramConfig, sus, util, lat) -> LoadedCurve:
    return LoadedCurve(cfg.name, cfg.key(), cfg.peak_bytes_per_s, cfg.refresh_fraction,
                       PATTERNS, np.array(READ_FRACTIONS), np.asarray(sus),
                       np.asarray(util), np.asarray(lat))


def main(argv: list[str] | None = None) -> int:
    """``python -m numasim.memctrl.dram_curve PRESET [NAME=VALUE ...]``: print the derived
    sustainable fractions and loaded-latency curves of a preset."""
    from numasim.errors import NumasimError

    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help"):
        print(main.__doc__.strip() + "\npresets: " + ", ".join(PRESETS))
        return 0 if args else 2
    try:
        over = {}
        for a in args[1:]:
            k, sep, v = a.partition("=")
            if not sep:
                raise NumasimError(f"'{a}' is not NAME=VALUE", hint="e.g. channels=2")
            try:
                over[k] = float(v)
            except ValueError:
                raise NumasimError(f"'{v}' is not a number", field=k) from None
        cfg = dram_config(args[0], over)
    except NumasimError as e:
        print(f"numasim: {e}", file=sys.stderr)
        return 2
    c = loaded_curve(cfg)
    print(f"{cfg.name}: peak {cfg.peak_bytes_per_s / 1e9:.1f} GB/s, refresh "
          f"{100 * cfg.refresh_fraction:.1f} % of the time")
    for p, pattern in enumerate(c.patterns):
        for m, rf in enumerate(c.read_fraction):
            print(f"{pattern:10s} reads {rf:4.2f}: sustainable {100 * c.sustainable[p, m]:5.1f} "
                  f"% of peak; latency (ns) at utilisation:")
            print("   " + "  ".join(f"{u:4.2f}:{x:.0f}" for u, x in
                                   zip(c.utilisation[p, m], c.latency_ns[p, m], strict=True)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
