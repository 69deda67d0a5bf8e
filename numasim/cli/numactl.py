"""``numasim numactl [numactl options] [--] KERNEL [kernel options] --machine MACHINE``.

Runs a built-in kernel (or a workload YAML) the way ``numactl`` runs a program: numactl's own
options, read exactly as numactl reads them (:mod:`numasim.mm.numactl`), set the task policy
and CPU binding of the process before its threads start; the kernel's options follow it::

    numasim numactl --interleave=all --cpunodebind=0 -- stream --op triad --threads 16 \\
        --size 1GiB --machine configs/machines/clx-2s.yaml
"""

from __future__ import annotations

import argparse
import sys

from numasim.cli.run import add_run_options, run_and_print
from numasim.errors import NumasimError

USAGE = ("numasim numactl [numactl options] [--] KERNEL [kernel options] --machine MACHINE "
         "[--engine fast|exact] [--json]")
EPILOG = """numactl options: --interleave=NODES, --weighted-interleave=NODES, --membind=NODES,
--preferred=NODE, --preferred-many=NODES, --localalloc, --cpunodebind=NODES,
--physcpubind=CPUS (numactl's syntax: all, 0-3,8, !1, +0).
kernels: stream (--op copy|scale|add|triad), gups, pointer_chase, stride, zipf (--theta),
kv (--value, --write-fraction), prodcons; zipf and kv take --shift with --repeat (a moving
hot set); each takes --threads and --size; or give a workload YAML file instead of a kernel.
--linux 6.12|6.1|2.6.7 chooses the Linux generation whose policies place the pages.
--numa-balancing [--balancing-knob NAME=VALUE] [--thp MODE] [--thp-defrag MODE]
[--khugepaged-knob NAME=VALUE]
(before or after the kernel): the simulated kernel's NUMA balancing, transparent huge pages
and khugepaged (default: off, never, Linux's khugepaged knobs)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    # every argument is numactl's or the kernel's: read them all ourselves
    parser.prefix_chars = "\x01"
    parser.usage = USAGE
    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("argv", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)


def kernel_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="numasim numactl ... KERNEL", add_help=False,
                                exit_on_error=False)
    p.add_argument("--op", "--kernel", dest="op", default="triad",
                   help="the STREAM operation: copy, scale, add, triad (default triad; "
                        "--kernel is its old name)")
    p.add_argument("--threads", "-t", type=int,
                   help="threads, one per CPU (default 1; prodcons 2)")
    p.add_argument("--size", "-s", help="bytes per array / table (e.g. 1GiB)")
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--init", default="parallel", help="first touch: parallel, serial, none")
    p.add_argument("--compute", type=int, help="compute cycles before each access")
    p.add_argument("--placement", default="spread", help="spread or compact")
    p.add_argument("--no-pin", dest="pin", action="store_false",
                   help="threads start where --placement puts them but may run on any CPU "
                        "the task may use: with --numa-balancing, task placement moves them "
                        "toward their memory (default: each thread pinned to its CPU)")
    p.add_argument("--stride", default="64B")
    p.add_argument("--theta", type=float, default=0.99)
    p.add_argument("--count", type=int)
    p.add_argument("--producers", type=int)
    p.add_argument("--write", action="store_true")
    p.add_argument("--shift", default="0",
                   help="zipf, kv: the hot set moves by this size (or fraction of the "
                        "buffer, below 1) at every --repeat")
    p.add_argument("--value", default="4KiB", help="kv: bytes of one value (default 4KiB)")
    p.add_argument("--write-fraction", dest="write_fraction", type=float, default=0.0,
                   help="zipf, kv: the share of items written (kv: sets among the gets)")
    add_run_options(p)
    return p


def _split_machine(argv: list[str]) -> tuple[str | None, list[str]]:
    """--machine is needed before numactl's node strings can be read; take it out first
    (``--fast-forward[=...]`` may stand among numactl's options too: it goes to the run
    options at the end)."""
    out: list[str] = []
    moved: list[str] = []
    machine = None
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in ("--machine", "-m") and i + 1 < len(argv):
            machine = argv[i + 1]
            i += 2
            continue
        if a.startswith("--machine="):
            machine = a.partition("=")[2]
            i += 1
            continue
        if a == "--fast-forward" or a.startswith("--fast-forward="):
            moved.append(a)
            i += 1
            continue
        out.append(a)
        i += 1
    return machine, out + moved


KERNEL_MM_FLAGS = ("--numa-balancing",)
KERNEL_MM_OPTIONS = ("--balancing-knob", "--thp", "--thp-defrag", "--khugepaged-knob")


def _split_kernel_mm(argv: list[str]) -> tuple[list[str], list[str]]:
    """--numa-balancing, --balancing-knob and --thp are the simulated kernel's switches, not
    numactl's: accepted anywhere before ``--`` as well (``numasim numactl --numa-balancing
    --membind=0 -- stream ...``) and handed to the run's options."""
    out: list[str] = []
    extra: list[str] = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--":
            return extra, out + argv[i:]
        if a in KERNEL_MM_FLAGS or a.partition("=")[0] in KERNEL_MM_FLAGS:
            extra.append(a)  # --numa-balancing or --numa-balancing=MODE
        elif a in KERNEL_MM_OPTIONS and i + 1 < len(argv):
            extra += [a, argv[i + 1]]
            i += 1
        elif a.partition("=")[0] in KERNEL_MM_OPTIONS:
            extra.append(a)
        else:
            out.append(a)
        i += 1
    return extra, out


def main(args: argparse.Namespace) -> int:
    argv = list(args.argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(f"usage: {USAGE}\n\n{EPILOG}")
        kernel_parser().print_help()
        return 0
    machine_spec, rest = _split_machine(argv)
    kernel_mm, rest = _split_kernel_mm(rest)
    if machine_spec is None:
        raise NumasimError("no machine given", field="--machine",
                           hint="add --machine MACHINE (a YAML file or a shipped name such as "
                                "clx-2s)")
    from numasim.spec import split_command
    from numasim.topology.loaders import load_machine

    machine = load_machine(machine_spec)
    task, numactl_argv, command = split_command(machine, rest)
    if not command:
        raise NumasimError("no kernel given after the numactl options", field="command",
                           hint="e.g. -- stream --op triad --threads 4")
    name, kargv = command[0], command[1:] + kernel_mm + ["--machine", machine_spec]
    try:
        kargs, unknown = kernel_parser().parse_known_args(kargv)
    except argparse.ArgumentError as e:
        raise NumasimError(str(e), field=e.argument_name or "kernel options",
                           hint="see `numasim numactl --help`") from None
    if unknown:
        raise NumasimError(f"unknown option {unknown[0]!r} for the kernel",
                           field=unknown[0], hint="see `numasim numactl --help`")
    from numasim.workloads.kernels import BUILTIN

    if name in BUILTIN:
        options = dict(op=kargs.op, threads=kargs.threads, repeat=kargs.repeat,
                       init=kargs.init, compute=kargs.compute, placement=kargs.placement,
                       pin=kargs.pin,
                       stride=kargs.stride, theta=kargs.theta, count=kargs.count,
                       producers=kargs.producers, write=kargs.write, shift=kargs.shift,
                       value=kargs.value, write_fraction=kargs.write_fraction)
        if kargs.size is not None:
            options["size"] = kargs.size
        return run_and_print(machine, name, kargs, numactl=numactl_argv, parsed=task,
                             **options)
    if name.startswith("-"):
        raise NumasimError(f"{name!r} is not a numactl option", field=name,
                           hint="numactl options: --interleave, --weighted-interleave, "
                                "--membind, --preferred, --preferred-many, --localalloc, "
                                "--cpunodebind, --physcpubind")
    return run_and_print(machine, name, kargs, numactl=numactl_argv, parsed=task)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(argparse.Namespace(argv=sys.argv[1:])))
