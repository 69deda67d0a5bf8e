"""One run, specified: :class:`RunSpec`, built and checked once, consumed by the simulation.

Every way of starting a run builds a :class:`RunSpec` with :func:`build_spec` -- ``numasim
numactl`` and ``numasim run`` (:mod:`numasim.cli`), :func:`numasim.run`, and a sweep's point
(:func:`numasim.experiments.point.run_point`) -- and :func:`numasim.wiring.simulate` runs it.
This module is the one place where

* a run's numactl options are parsed (the task's options, every region's ``policy`` and
  every ``mbind`` phase's policy), with :func:`numasim.mm.numactl.parse_numactl`;
* weighted-interleave weights are read (``0=9,1=1``, ``4:1``, a list or a mapping) and
  checked against the machine;
* the run's knobs are checked: engine, Linux generation, seed, quantum, fast-forward
  (:func:`numasim.machine.fastforward.check_fast_forward`), CPU model.

A bad value is a :class:`~numasim.errors.NumasimError` naming the option and what would be
valid (the command line prints it as one paragraph and exits 2), never a hang or a traceback.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from numasim.errors import ConfigError, NumasimError
from numasim.machine.params import CpuParams, EngineParams, LlcParams, TlbParams
from numasim.mm.numactl import NumactlOptions, parse_numactl
from numasim.topology.model import Machine
from numasim.units import UnitError, parse_size
from numasim.workloads.model import Workload

ENGINES = ("fast", "exact")
SEED_MAX = (1 << 64) - 1
WEIGHT_MAX = 255  # /sys/kernel/mm/mempolicy/weighted_interleave/nodeN takes 1..255
NODE_OPTIONS = ("--interleave", "--weighted-interleave", "--membind", "--preferred",
                "--preferred-many", "--cpunodebind")


def linux_generations() -> tuple[str, ...]:
    """The Linux generations numasim models (``--linux``)."""
    from numasim.mm.constants import KERNELS

    return tuple(KERNELS)


@dataclass(frozen=True)
class RunSpec:
    """Everything one run is, checked: what the simulation reads and nothing else.

    ``numactl`` is the task's options as written (the workload's own, then the extra ones)
    and ``task`` the same options parsed; ``region_policies[i]`` is region ``i``'s parsed
    ``mbind`` policy (None: none) and ``phase_policies[i]`` that of ``mbind`` phase ``i``.
    ``weights`` are weighted-interleave weights per node id (None: the machine's).
    """

    machine: Machine
    workload: Workload
    numactl: tuple[str, ...]
    task: NumactlOptions
    region_policies: tuple[NumactlOptions | None, ...]
    phase_policies: Mapping[int, NumactlOptions]
    cpu: CpuParams = field(default_factory=CpuParams)
    engine: str = "fast"
    engine_params: EngineParams = field(default_factory=EngineParams)
    linux: str = "6.12"
    seed: int = 0
    weights: Mapping[int, int] | None = None


# ------------------------------------------------------------------------ scalars
def check_engine(engine: Any) -> str:
    if engine not in ENGINES:
        raise ConfigError(f"unknown engine {engine!r}", field="engine",
                          hint="valid: fast (bound-weave, the default), exact (SimPy, the "
                               "reference)")
    return str(engine)


def check_linux(linux: Any) -> str:
    """The Linux generation; YAML reads an unquoted 6.12 as a number, which is fine."""
    if isinstance(linux, float | int) and not isinstance(linux, bool):
        linux = repr(linux)
    gens = linux_generations()
    if linux not in gens:
        raise ConfigError(f"unknown Linux generation {linux!r}", field="linux",
                          hint="numasim models " + ", ".join(gens) + " (e.g. --linux 6.1)")
    return str(linux)


def check_seed(seed: Any) -> int:
    """A seed is a whole number 0 .. 2**64-1 (numpy's PCG64 takes it as is)."""
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ConfigError(f"seed must be a whole number, got {seed!r}", field="seed",
                          hint="e.g. --seed 1")
    if not 0 <= seed <= SEED_MAX:
        raise ConfigError(f"seed {seed} is outside 0..2**64-1", field="seed",
                          hint="every random choice of a run is drawn from this seed; give a "
                               "whole number from 0 up, e.g. --seed 1")
    return seed


def check_quantum(quantum: Any) -> int | None:
    """The fast engine's fixed quantum in cycles, or None (adaptive)."""
    if quantum is None:
        return None
    if isinstance(quantum, bool) or not isinstance(quantum, int):
        raise ConfigError(f"quantum must be a whole number of cycles, got {quantum!r}",
                          field="quantum", hint="e.g. --quantum 20000, or leave it out for "
                                                "the adaptive quantum")
    if quantum < 1:
        raise ConfigError(f"quantum {quantum} is not a positive number of cycles",
                          field="quantum",
                          hint="the fast engine advances time one quantum at a time, so a "
                               "quantum is at least 1 cycle, e.g. --quantum 20000; leave it "
                               "out for the adaptive quantum")
    return quantum


def fast_forward_for(engine: Any, value: Any) -> Any:
    """The fast-forward setting, checked (None: off); it samples the fast engine's quanta,
    so the exact engine refuses it."""
    from numasim.machine.fastforward import check_fast_forward

    ff = check_fast_forward(value)
    if ff is not None and engine != "fast":
        raise ConfigError(f"fast-forward needs the fast engine, not {engine!r}",
                          field="fast_forward",
                          hint="the exact engine simulates every request; drop "
                               "--fast-forward or use --engine fast")
    return ff


# ------------------------------------------------------------------------ weights
def read_weights(value: Any) -> list[int] | dict[int, int] | None:
    """Weighted-interleave weights as written: ``"0=9,1=1"`` (node=weight), ``"4:1"`` (one
    per node, in node order), a list (node order) or a mapping ``{node: weight}``; None or
    ``""`` keeps the machine's.  Each weight is 1..255, as sysfs takes it.  Raises
    ``ValueError`` saying what would be valid (the caller names the field)."""
    if value is None or value == "":
        return None
    if isinstance(value, str) and "=" in value:
        pairs: dict[int, int] = {}
        for part in value.split(","):
            node, _, w = part.partition("=")
            if not node.strip().isdigit() or not w.strip().isdigit():
                raise ValueError(f"cannot read weight {part!r} of {value!r}: write NODE=WEIGHT "
                                 "pairs such as '0=4,1=1'")
            pairs[int(node)] = int(w)
        return read_weights(pairs)
    if isinstance(value, str):
        try:
            return read_weights([int(p) for p in value.split(":")])
        except ValueError as e:
            if "weight" in str(e):
                raise
            raise ValueError(f"weights {value!r}: write one whole number per node, such as "
                             "'4:1', or NODE=WEIGHT pairs such as '0=4,1=1'") from None
    if isinstance(value, list | tuple):
        for w in value:
            _check_weight(w, None)
        return [int(w) for w in value]
    if isinstance(value, Mapping):
        out: dict[int, int] = {}
        for k, w in value.items():
            k = int(k) if isinstance(k, str) and k.isdigit() else k
            if isinstance(k, bool) or not isinstance(k, int):
                raise ValueError(f"weights: node {k!r} is not a node number")
            _check_weight(w, k)
            out[k] = int(w)
        return dict(sorted(out.items()))
    raise ValueError(f"weights must be a string such as '4:1' or '0=4,1=1', a list or a "
                     f"mapping {{node: weight}}, got {value!r}")


def _check_weight(w: Any, node: int | None) -> None:
    if isinstance(w, bool) or not isinstance(w, int) or not 1 <= w <= WEIGHT_MAX:
        of = f" of node {node}" if node is not None else ""
        raise ValueError(f"weight {w!r}{of} must be a whole number in 1..{WEIGHT_MAX}")


def weights_for(machine: Machine, value: Any, *, field: str = "weights") -> dict[int, int] | None:
    """:func:`read_weights`, then against ``machine``: one weight per node for the list
    form, existing node ids for the mapping form.  Returns ``{node id: weight}``."""
    try:
        ws = read_weights(value)
    except ValueError as e:
        raise ConfigError(str(e), field=field) from None
    if ws is None:
        return None
    ids = list(machine.node_ids)
    if isinstance(ws, list):
        if len(ws) != len(ids):
            raise ConfigError(f"{len(ws)} weights for the {len(ids)} nodes of {machine.name}",
                              field=field, hint="write one weight per node, in node order ("
                                                + ", ".join(map(str, ids)) + ")")
        return dict(zip(ids, ws, strict=True))
    bad = [n for n in ws if n not in ids]
    if bad:
        raise ConfigError(f"node {bad[0]} does not exist on {machine.name}", field=field,
                          hint="nodes: " + ", ".join(map(str, ids)))
    return ws


# ------------------------------------------------------------------------ numactl
def _refuse_empty(opts: NumactlOptions, where: str, file: str | None) -> None:
    """numactl takes ``--interleave=`` (an empty node list) and quietly runs with the default
    policy; a run that names an option means it, so numasim refuses an empty list instead
    (``numasim script`` keeps numactl's own behaviour)."""
    for st in opts.steps:
        empty = not st.nodes and (st.kind in ("cpunodebind", "physcpubind") or
                                  st.option in NODE_OPTIONS)
        if empty:
            what = "CPUs" if st.kind == "physcpubind" else "nodes"
            raise ConfigError(f"{st.option}= names no {what}", file=file, field=where,
                              hint=f"an empty list asks for nothing: numactl quietly runs "
                                   f"--interleave= with the default policy and refuses "
                                   f"--membind=; name the {what}, e.g. {st.option}=all or "
                                   f"{st.option}=0,1")


def task_options(machine: Machine, argv: list[str] | tuple[str, ...], *,
                 file: str | None = None, field: str = "numactl") -> NumactlOptions:
    """The task's numactl options (given to the workload's process before its threads
    start): options only, no command, no ``--show``/``--hardware``/``--version``."""
    opts = parse_numactl(list(argv), machine)
    if opts.command:
        raise ConfigError(f"unexpected argument {opts.command[0]!r} in the numactl options",
                          file=file, field=field,
                          hint="give only options, e.g. --interleave=all --cpunodebind=0")
    return _check_task(opts, file=file, field=field)


def _check_task(opts: NumactlOptions, *, file: str | None, field: str) -> NumactlOptions:
    if opts.show or opts.hardware or opts.version:
        raise ConfigError("--show, --hardware and --version do not run a workload",
                          file=file, field=field,
                          hint="use `numasim topo show MACHINE` for the hardware")
    _refuse_empty(opts, field, file)
    return opts


def task_cpus(machine: Machine, opts: NumactlOptions) -> list[int]:
    """The CPUs a task with these options may run on (before the kernel sees them)."""
    cpus = set(machine.cpus)
    if opts.cpunodebind is not None:
        cpus = {c for c in cpus if machine.cpu_to_node[c] in opts.cpunodebind}
    if opts.physcpubind is not None:
        cpus &= set(opts.physcpubind)
    return sorted(cpus)


def split_command(machine: Machine, argv: list[str]) -> tuple[NumactlOptions, list[str],
                                                               list[str]]:
    """A ``numactl [options] [--] COMMAND ...`` line: (the options parsed and checked as
    :func:`task_options` checks them, the option words, the command words)."""
    opts = parse_numactl(list(argv), machine)
    command = list(opts.command)
    opts = _check_task(replace(opts, command=[]), file=None, field="numactl")
    option_words = argv[: len(argv) - len(command)]
    if command and command[0] == "--":
        command = command[1:]
    if option_words and option_words[-1] == "--":
        option_words = option_words[:-1]
    return opts, list(option_words), command


def memory_policy(machine: Machine, text: str | None, *, file: str | None, field: str,
                  what: str = "policy") -> NumactlOptions:
    """A region's or an mbind phase's policy: exactly one numactl memory-policy option."""
    if not text:
        raise ConfigError("an mbind phase needs a 'policy' (one numactl memory policy "
                          "option)", file=file, field=field, hint="e.g. --membind=1")
    try:
        opts = parse_numactl(text.split(), machine)
    except NumasimError as e:  # numactl's own words, placed where the policy is written
        first = e.problems[0]
        raise ConfigError(f"{text}: {first.message}", file=file, field=field,
                          hint=first.hint) from None
    if opts.policy is None or opts.cpunodebind is not None or \
            opts.physcpubind is not None or opts.command:
        raise ConfigError(f"{what} {text!r} must be exactly one numactl memory policy option",
                          file=file, field=field,
                          hint="e.g. --interleave=all, --membind=1, --preferred=0,"
                               " --localalloc, --weighted-interleave=0,1")
    _refuse_empty(opts, field, file)
    return opts


# ------------------------------------------------------------------------ CPU model
def cpu_params(workload_cpu: Mapping[str, Any], overrides: Mapping[str, Any] | None
               ) -> CpuParams:
    """The CPU model: defaults, then the workload's ``cpu:``, then ``overrides`` (``mlp``,
    ``l2_mlp``, ``prefetch``,
    ``write_allocate``, ``fault_ns``, ``hit_ns``, ``zero_gap_cycles``, ``start_skew_ns``,
    ``llc``: True, a mapping ``{size, ways, hit_ns}`` or :class:`LlcParams`; ``tlb``: True, a
    mapping ``{entries, ways, walk}`` or :class:`TlbParams`, off by default)."""
    merged = dict(workload_cpu)
    merged.update(overrides or {})
    llc = merged.pop("llc", None)
    tlb = merged.pop("tlb", None)
    params = CpuParams().with_overrides(**merged)
    if tlb is not None and tlb is not False:
        params = replace(params, tlb=tlb_params(tlb))
    if llc:
        if isinstance(llc, LlcParams):
            lp = llc
        elif llc is True:
            lp = LlcParams()
        else:
            names = set(LlcParams.__dataclass_fields__)
            bad = sorted(set(dict(llc)) - names)
            if bad:
                raise ConfigError(f"unknown LLC parameter {bad[0]!r}", field="cpu.llc",
                                  hint="valid: " + ", ".join(sorted(names)))
            lp = _llc_params(dict(llc))
        params = replace(params, llc=lp)
    params.check()
    return params


def tlb_params(v: Any) -> TlbParams:
    """A TLB from True, a TlbParams, or a mapping ``{entries, ways, walk}`` (whole numbers; walk
    a yes/no); bad keys or values raise one ConfigError naming ``cpu.tlb``."""
    if isinstance(v, TlbParams):
        return v
    if v is True or (isinstance(v, Mapping) and not v):
        return TlbParams()
    hint = ("cpu.tlb is true or a mapping with entries (e.g. 1536), ways (e.g. 12) and walk "
            "(true/false); defaults: Skylake-SP STLB, 1536 entries, 12-way, walks on")
    if not isinstance(v, Mapping):
        raise ConfigError(f"bad TLB {v!r}", field="cpu.tlb", hint=hint)
    names = set(TlbParams.__dataclass_fields__)
    bad = sorted(set(v) - names, key=str)
    if bad:
        raise ConfigError(f"unknown TLB parameter {bad[0]!r}", field="cpu.tlb",
                          hint="valid: " + ", ".join(sorted(names)))
    given: dict[str, Any] = {}
    for k in ("entries", "ways"):
        if k in v:
            x = v[k]
            if isinstance(x, bool) or not isinstance(x, (int, str)) or \
                    not str(x).strip().isdigit():
                raise ConfigError(f"cpu.tlb.{k} must be a whole number, got {x!r}",
                                  field=f"cpu.tlb.{k}", hint=hint)
            given[k] = int(x)
    if "walk" in v:
        w = v["walk"]
        words = {"true": True, "on": True, "yes": True, "1": True,
                 "false": False, "off": False, "no": False, "0": False}
        if not isinstance(w, bool) and str(w).lower() not in words:
            raise ConfigError(f"cpu.tlb.walk must be true or false, got {w!r}",
                              field="cpu.tlb.walk", hint=hint)
        given["walk"] = w if isinstance(w, bool) else words[str(w).lower()]
    out = TlbParams(**given)
    replace(CpuParams(), tlb=out).check()
    return out


def _llc_params(given: dict[str, Any]) -> LlcParams:
    """An LLC from a mapping as Python callers write it: ``size`` in bytes or as text
    (``"1MiB"``, as in the workload YAML), ``ways`` a whole number, ``hit_ns`` in ns."""
    try:
        if "size" in given and not isinstance(given["size"], int):
            given["size"] = parse_size(given["size"])
        if "ways" in given:
            given["ways"] = int(given["ways"])
        if "hit_ns" in given:
            given["hit_ns"] = float(given["hit_ns"])
    except (UnitError, TypeError, ValueError) as e:
        raise ConfigError(f"bad LLC parameter: {e}", field="cpu.llc",
                          hint="e.g. {'size': '1MiB', 'ways': 16, 'hit_ns': 20}") from None
    return LlcParams(**given)


def _host_threads(value: Any) -> int | None:
    if value is None:
        return None
    from numasim.machine.ahead import check_host_threads

    return check_host_threads(value)


# ------------------------------------------------------------------------ the spec
def build_spec(machine: Machine, workload: Workload, *, engine: str = "fast",
               linux: str = "6.12", seed: int = 0,
               numactl: list[str] | tuple[str, ...] | str | None = None,
               cpu: Mapping[str, Any] | None = None, quantum: int | None = None,
               concentration: bool = True, weights: Any = None,
               parsed: NumactlOptions | None = None, fast_forward: Any = None,
               host_threads: Any = None) -> RunSpec:
    """Check every part of a run and parse its options once.

    ``numactl``: extra task options placed after the workload's own (a string is split on
    blanks); ``cpu``: CPU-model overrides over the workload's ``cpu:``; ``quantum``: the fast
    engine's fixed quantum (cycles); ``weights``: weighted-interleave weights in any form
    :func:`read_weights` reads; ``parsed``: ``numactl`` as :func:`split_command` already
    read it (used when the workload has no options of its own); ``fast_forward``: the fast
    engine's sampling (None/False off, True, ``"WINDOW,SKIP[,TOLERANCE]"`` or a mapping:
    :func:`~numasim.machine.fastforward.check_fast_forward`); ``host_threads``: the host
    threads the fast engine's bound phase runs on (None: ``NUMASIM_HOST_THREADS``, else every
    CPU this process may use; never changes a result: :mod:`numasim.machine.ahead`).
    """
    extra = numactl.split() if isinstance(numactl, str) else list(numactl or [])
    argv = tuple(workload.numactl) + tuple(extra)
    if parsed is not None and not workload.numactl:
        task = parsed  # the command line's options, already read by split_command
    else:
        task = task_options(machine, argv, file=workload.file)
    regions = tuple(
        memory_policy(machine, r.policy, file=workload.file, field=f"regions[{i}].policy",
                      what="region policy") if r.policy else None
        for i, r in enumerate(workload.regions))
    phases = {i: memory_policy(machine, ph.policy, file=workload.file,
                               field=f"phases[{i}].policy")
              for i, ph in enumerate(workload.phases) if ph.kernel == "mbind"}
    return RunSpec(machine=machine, workload=workload, numactl=argv, task=task,
                   region_policies=regions, phase_policies=phases,
                   cpu=cpu_params(workload.cpu, cpu), engine=check_engine(engine),
                   engine_params=EngineParams(quantum=check_quantum(quantum),
                                              concentration=bool(concentration),
                                              fast_forward=fast_forward_for(engine,
                                                                            fast_forward),
                                              host_threads=_host_threads(host_threads)),
                   linux=check_linux(linux), seed=check_seed(seed),
                   weights=weights_for(machine, weights))
