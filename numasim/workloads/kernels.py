"""The built-in kernels, as :class:`~numasim.workloads.model.Workload` builders.

Each builds regions, a first-touch ``init`` phase (``parallel`` by default, ``serial`` for the
classic trap, ``none`` to skip it) and the kernel's phase:

* ``stream``: arrays a, b, c of ``size`` each; ``op`` copy / scale / add / triad, ``repeat``
  times;
* ``gups``: a table of ``size``; ``count`` random read-modify-writes (default one per line);
* ``pointer_chase``: a buffer of ``size``; dependent loads along a random cycle through each
  thread's chunk;
* ``stride``: a buffer of ``size``; loads ``stride`` bytes apart;
* ``zipf``: a buffer of ``size``; ``count`` loads with Zipf(``theta``) popularity (hot and
  cold lines); with ``repeat`` and ``shift`` (bytes, or a fraction of the buffer below 1)
  the hot set moves by ``shift`` at every repetition (a phase change of a long-running
  program: the memory tiering question is how fast the kernel follows);
* ``kv``: a key-value store's read-mostly traffic: a table of ``size`` holding values of
  ``value`` bytes (default 4 KiB); ``count`` gets (default one per value), each reading a
  whole value, keys Zipf(``theta``)-popular and the same keys hot for every thread;
  ``write_fraction`` of them are sets (the value written); ``shift`` as for ``zipf``;
* ``prodcons``: a shared buffer of ``size``; the producers (first half of the threads) write
  it first, then keep writing their slots while the others read them.
"""

from __future__ import annotations

from typing import Any

from numasim import units
from numasim.errors import ConfigError, did_you_mean
from numasim.workloads.model import STREAM_OPS, Phase, Region, Workload

BUILTIN = ("stream", "gups", "pointer_chase", "stride", "zipf", "kv", "prodcons")
DEFAULT_SIZE = {"stream": 64 << 20, "gups": 64 << 20, "pointer_chase": 16 << 20,
                "stride": 64 << 20, "zipf": 64 << 20, "kv": 64 << 20, "prodcons": 16 << 20}
INITS = ("parallel", "serial", "none")

OPTIONS = ("op", "threads", "size", "init", "repeat", "compute", "placement", "cpus", "pin",
           "stride",
           "theta", "count", "producers", "write", "cpu", "shift", "value", "write_fraction")
KEYLESS = {"shift": 0, "value": "4KiB", "write_fraction": 0.0}
"""Options added after experiments had stored their resolved configuration: a point leaves
them out of it while they have these defaults, so its key (a hash) stays what it was."""


def _size(v: Any, field: str = "size") -> int:
    if isinstance(v, int) and not isinstance(v, bool):
        return v
    try:
        return units.parse_size(v)
    except units.UnitError as e:
        raise ConfigError(str(e), field=field) from None


def _shift(v: Any) -> float:
    """``shift``: a size (bytes) or a fraction of the buffer (a number below 1)."""
    if isinstance(v, float) and 0 <= v < 1:
        return v
    if isinstance(v, str):
        try:
            f = float(v)
        except ValueError:
            f = None
        if f is not None and 0 <= f < 1:
            return f
    b = _size(v, "--shift")
    if b < 0:
        raise ConfigError("shift must not be negative", field="--shift")
    return b


def build_kernel(name: str, *, op: str = "triad", threads: int | None = None, size: Any = None,
                 init: str = "parallel", repeat: int = 1, compute: int | None = None,
                 placement: str = "spread", cpus: list[int] | None = None,
                 pin: bool = True, stride: Any = 64, theta: float = 0.99, count: int | None = None,
                 producers: int | None = None, write: bool = False, **more: Any) -> Workload:
    """A built-in kernel as a workload (see the module table).  ``more``: ``cpu`` (the CPU
    model's options, a dict) and the zipf/kv options ``shift``, ``value``,
    ``write_fraction`` (:data:`KEYLESS` has their defaults).  ``threads`` not given: one,
    or for ``prodcons`` two (a producer and a consumer, the least it can run)."""
    if threads is None:
        threads = 2 if name == "prodcons" else 1
    unknown = sorted(set(more) - set(KEYLESS) - {"cpu"})
    if unknown:
        raise ConfigError(f"unknown option {unknown[0]!r}", field=unknown[0],
                          hint=did_you_mean(unknown[0], OPTIONS))
    opts = {**KEYLESS, "cpu": None, **more}
    shift, value, write_fraction = opts["shift"], opts["value"], opts["write_fraction"]
    cpu = opts["cpu"]
    if name not in BUILTIN:
        raise ConfigError(f"unknown kernel {name!r}", field="kernel",
                          hint=did_you_mean(name, BUILTIN))
    if op not in STREAM_OPS:
        raise ConfigError(f"unknown STREAM operation {op!r}", field="--op",
                          hint=did_you_mean(op, STREAM_OPS))
    if init not in INITS:
        raise ConfigError(f"unknown init {init!r}", field="--init", hint=did_you_mean(init, INITS))
    if threads < 1:
        raise ConfigError(f"threads must be at least 1, got {threads}", field="--threads")
    if repeat < 1:
        raise ConfigError(f"repeat must be at least 1, got {repeat}", field="--repeat")
    nbytes = _size(size if size is not None else DEFAULT_SIZE[name])
    if nbytes <= 0:
        raise ConfigError("size must be positive", field="--size")
    stride_b = _size(stride, "--stride")
    if stride_b <= 0:
        raise ConfigError("stride must be positive", field="--stride")
    shift_v = _shift(shift)
    value_b = _size(value, "--value")
    if value_b < 64:
        raise ConfigError(f"value must be at least one line (64B), got {value_b} bytes",
                          field="--value")
    if not 0.0 <= float(write_fraction) <= 1.0:
        raise ConfigError(f"write_fraction must be within 0..1, got {write_fraction}",
                          field="--write-fraction")
    if name == "stream":
        regions = [Region("a", nbytes), Region("b", nbytes), Region("c", nbytes)]
    elif name == "prodcons":
        regions = [Region("buffer", nbytes, "shared")]
    else:
        regions = [Region("data", nbytes)]
    phases: list[Phase] = []
    if name == "prodcons":
        if threads < 2:
            raise ConfigError("prodcons needs at least 2 threads", field="--threads")
        nprod = producers if producers is not None else max(1, threads // 2)
        if not 1 <= nprod < threads:
            raise ConfigError(f"producers must be 1..{threads - 1}, got {nprod}",
                              field="--producers")
        if init != "none":  # the producers write the buffer first: they own its pages
            phases.append(Phase("init", "init", ["buffer"], split=init,
                                threads=list(range(nprod))))
    elif init != "none":
        phases.append(Phase("init", "init", [r.name for r in regions], split=init))
    common = dict(repeat=repeat, compute=compute)
    if name == "stream":
        phases.append(Phase(op, "stream", ["a", "b", "c"], op=op, **common))
    elif name == "gups":
        phases.append(Phase("gups", "gups", ["data"], count=count, **common))
    elif name == "pointer_chase":
        phases.append(Phase("chase", "pointer_chase", ["data"], count=count, **common))
    elif name == "stride":
        phases.append(Phase("stride", "stride", ["data"], stride=stride_b, write=write,
                            **common))
    elif name in ("zipf", "kv"):
        phases.append(Phase(name, name, ["data"], theta=theta, count=count, write=write,
                            shift=shift_v, value=value_b,
                            write_fraction=float(write_fraction), **common))
    else:
        phases.append(Phase("prodcons", "prodcons", ["buffer"], producers=nprod, **common))
    label = f"{name}-{op}" if name == "stream" else name
    return Workload(name=label, threads=threads, placement=placement, cpus=cpus, pin=pin,
                    regions=regions, phases=phases, cpu=dict(cpu or {}),
                    description=f"built-in {label}, {threads} thread(s), "
                                f"{units.format_size(nbytes)}")
