"""``numasim run WORKLOAD.yaml --machine MACHINE``: run a workload file (or a built-in kernel).

Prints a readable summary, or with ``--json`` one JSON document (see
:mod:`numasim.machine.report` for its keys).  ``--no-host-time`` leaves out ``host_seconds``,
the only part of the document that differs between two runs of the same configuration.
"""

from __future__ import annotations

import argparse
import sys

from numasim.errors import NumasimError


def add_run_options(p: argparse.ArgumentParser) -> None:
    """Options every way of running a workload shares."""
    from numasim.cli import MACHINE_HELP

    p.add_argument("--machine", "-m", required=True, help=MACHINE_HELP)
    p.add_argument("--engine", choices=("fast", "exact"), default="fast",
                   help="fast: bound-weave in numba (default); exact: SimPy request by "
                        "request, the reference (slow)")
    p.add_argument("--linux", default="6.12", metavar="VERSION",
                   help="the Linux generation whose policies place the pages: 6.12 "
                        "(default), 6.1 or 2.6.7")
    p.add_argument("--seed", type=int, default=0, help="seed of every random choice (0)")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.add_argument("-o", "--output", help="also write the JSON document to this file")
    p.add_argument("--no-host-time", action="store_true",
                   help="leave host_seconds out of the JSON (byte-identical reruns)")
    p.add_argument("--weights", help="weighted-interleave weights, e.g. 0=9,1=1 (default: the "
                                     "machine's)")
    p.add_argument("--mlp", type=int, help="miss slots per CPU: L1 fill buffers (default 10)")
    p.add_argument("--l2-mlp", type=int, help="L2 miss slots (superqueue) a prefetched "
                                              "stream may use (default 16; --prefetch stream)")
    p.add_argument("--prefetch", choices=("off", "stream"),
                   help="the L2 stream prefetcher: sequential sweeps get --l2-mlp slots, "
                        "random and dependent accesses --mlp (default off)")
    p.add_argument("--no-write-allocate", action="store_true",
                   help="stores are non-temporal (no read for ownership)")
    p.add_argument("--llc", metavar="SIZE", help="per-node last-level cache of SIZE (e.g. "
                                                "32MiB); off by default")
    p.add_argument("--tlb", metavar="KEY=VALUE,...", nargs="?", const="on",
                   help="a per-CPU TLB with page walks (off by default): 'on' for Skylake-SP's "
                        "STLB (entries=1536, ways=12, walk=true), or keys to change, e.g. "
                        "entries=64,ways=4 or walk=false (count misses only)")
    p.add_argument("--quantum", type=int, help="fast engine: fixed quantum in cycles "
                                               "(default: adaptive)")
    p.add_argument("--fast-forward", nargs="?", const=True, default=None,
                   metavar="WINDOW,SKIP[,TOL]",
                   help="fast engine: sample long steady phases -- after WINDOW quanta agree "
                        "within TOL, skip SKIP times their length at their rates (default "
                        "2,20,0.02; off unless given)")
    p.add_argument("--host-threads", metavar="N", default=None,
                   help="fast engine: run the CPUs' quanta on N host threads where no CPU "
                        "faults (default: $NUMASIM_HOST_THREADS, else every CPU this process "
                        "may use; the result is the same bytes for any N)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--plot", metavar="FILE", help="also draw the run's figure (RunResult.plot: "
                   "pages, latency, bandwidth over time, utilisation; with NUMA balancing, "
                   "pages per node and locality over time) to FILE (.png, .svg or .pdf)")
    p.add_argument("--numa-balancing", metavar="MODE", nargs="?", const=1, default=None,
                   type=_balancing_mode,
                   help="kernel.numa_balancing=MODE (1 without MODE; 2 memory tiering: "
                        "promotion of hot slow-tier pages, 3 both): the scanner, hinting "
                        "faults and page migration run on the simulated clock (default: off, "
                        "static placement)")
    p.add_argument("--balancing-knob", metavar="NAME=VALUE", action="append", default=[],
                   help="a NUMA-balancing debugfs knob: scan_delay_ms, scan_period_min_ms, "
                        "scan_period_max_ms, scan_size_mb, hot_threshold_ms, the tiering sysctl "
                        "promote_rate_limit_MBps, or numasim's task_placement=0|1 (moving "
                        "unpinned threads toward their memory; default 1) (repeatable)")
    p.add_argument("--thp", metavar="MODE",
                   help="transparent_hugepage/enabled: always, madvise or never (default: "
                        "the machine's kernel setting, else never)")
    p.add_argument("--thp-defrag", metavar="MODE",
                   help="transparent_hugepage/defrag: always, defer, defer+madvise, madvise "
                        "or never (default: the machine's kernel setting, else Linux's "
                        "madvise)")
    p.add_argument("--khugepaged-knob", metavar="NAME=VALUE", action="append", default=[],
                   help="a khugepaged knob, named as its file under "
                        "/sys/kernel/mm/transparent_hugepage/khugepaged/: pages_to_scan, "
                        "scan_sleep_millisecs, alloc_sleep_millisecs, max_ptes_none, "
                        "max_ptes_swap, max_ptes_shared, defrag (repeatable)")


def cpu_overrides(args: argparse.Namespace) -> dict:
    cpu: dict = {}
    if args.mlp is not None:
        cpu["mlp"] = args.mlp
    if getattr(args, "l2_mlp", None) is not None:
        cpu["l2_mlp"] = args.l2_mlp
    if getattr(args, "prefetch", None) is not None:
        cpu["prefetch"] = args.prefetch
    if args.no_write_allocate:
        cpu["write_allocate"] = False
    if args.llc:
        from numasim import units

        try:
            cpu["llc"] = {"size": units.parse_size(args.llc)}
        except units.UnitError as e:
            raise NumasimError(str(e), field="--llc") from None
    if getattr(args, "tlb", None):
        cpu["tlb"] = parse_tlb_option(args.tlb)
    return cpu


def parse_tlb_option(text: str) -> dict:
    """``--tlb``: ``on`` or ``entries=N,ways=W,walk=true|false`` (checked by
    :func:`numasim.spec.tlb_params`)."""
    if text.strip().lower() in ("on", "true", "yes", "1"):
        return {}
    out: dict = {}
    for part in text.split(","):
        k, eq, v = part.partition("=")
        if not eq or not k.strip():
            raise NumasimError(f"--tlb {text!r}: {part!r} is not KEY=VALUE", field="--tlb",
                               hint="e.g. --tlb on, --tlb entries=64,ways=4, --tlb walk=false "
                                    "(keys: entries, ways, walk)")
        out[k.strip()] = v.strip()
    return out


def run_and_print(machine, workload, args: argparse.Namespace, *,
                  numactl: list[str] | None = None, parsed=None, **options) -> int:
    """Build the run's :class:`~numasim.spec.RunSpec` from the command line, run it, print
    it."""
    from numasim.api import _machine, _workload
    from numasim.cli.outputs import check_output_file, write_text_file
    from numasim.spec import build_spec
    from numasim.wiring import simulate

    if args.output:  # before the run: a typo in the path must not cost the whole run
        check_output_file(args.output, "-o")
    spec = build_spec(kernel_settings_of(_machine(machine), args),
                      _workload(workload, options), engine=args.engine,
                      linux=args.linux, seed=args.seed, numactl=numactl,
                      cpu=cpu_overrides(args), quantum=args.quantum,
                      weights=_weights_text(args.weights), parsed=parsed,
                      fast_forward=args.fast_forward, host_threads=args.host_threads)
    result = simulate(spec, progress=not args.no_progress and sys.stderr.isatty())
    text = result.to_json(host=not args.no_host_time)
    if getattr(args, "plot", None):
        result.plot(args.plot)
    if args.output:
        write_text_file(args.output, text, "-o")
    if args.json:
        sys.stdout.write(text)
    else:
        sys.stdout.write(result.summary())
    return 0


def _balancing_mode(text: str) -> int:
    from numasim.cli.script import _balancing_mode as mode

    return mode(text)


def kernel_settings_of(machine, args: argparse.Namespace):
    """The machine with --numa-balancing, --balancing-knob and --thp applied
    (:mod:`numasim.kernel_settings`)."""
    from numasim.kernel_settings import (
        check_thp,
        check_thp_defrag,
        parse_khugepaged_knob,
        parse_knob,
        with_kernel_settings,
    )

    knobs = dict(parse_knob(item) for item in getattr(args, "balancing_knob", None) or [])
    kh = dict(parse_khugepaged_knob(item)
              for item in getattr(args, "khugepaged_knob", None) or [])
    thp = getattr(args, "thp", None)
    defrag = getattr(args, "thp_defrag", None)
    return with_kernel_settings(machine, numa_balancing=getattr(
        args, "numa_balancing", None) or None, knobs=knobs,
        thp=None if thp is None else check_thp(thp), field="--balancing-knob",
        khugepaged=kh, thp_defrag=None if defrag is None else check_thp_defrag(defrag))


def _weights_text(text: str | None):
    """--weights as given; read and checked against the machine by the spec."""
    if text is None:
        return None
    if not text.strip():
        raise NumasimError("--weights= names no weights", field="--weights",
                           hint="write NODE=WEIGHT pairs such as 0=9,1=1, or one weight per "
                                "node such as 9:1; leave --weights out for the machine's")
    return text


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("workload", help="a workload YAML file, a shipped workload name (e.g. "
                                         "stream-triad), or a built-in kernel name (stream, "
                                         "gups, pointer_chase, stride, zipf, kv, prodcons)")
    parser.add_argument("--numactl", help="extra numactl options in front of the workload, "
                                          "e.g. \"--interleave=all\"")
    add_run_options(parser)


def main(args: argparse.Namespace) -> int:
    numactl = args.numactl.split() if args.numactl else None
    return run_and_print(args.machine, args.workload, args, numactl=numactl)
