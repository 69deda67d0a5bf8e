"""The ``numasim`` command: the one front door.

Every subcommand lives in this package (``topo`` and ``validate`` here; ``script``,
``numactl``, ``run``, ``sweep`` and ``plot`` in their own modules); the subsystems below it
(``topology``, ``mm``, ``workloads``, ``experiments``, ``report``) never import it.

Subcommands import their machinery lazily, so ``numasim topo show`` never pays for numba,
SimPy or matplotlib.  Every user mistake surfaces as a :class:`NumasimError`: one paragraph
on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from numasim.cli.startup import remove_blas_probe_hook, skip_numba_blas_probe
from numasim.errors import NumasimError

MACHINE_HELP = ("machine: a numasim YAML file, a shipped machine name (see `numasim topo list`), "
                "`numactl --hardware` text, hwloc XML, an oracle .layout, a sysfs node tree "
                "(directory or tarball), or 'local'")

# Subcommand modules register themselves here: name -> (module, help).  Each module has
# ``add_arguments(parser)`` and ``main(args) -> int``.
EXTERNAL_COMMANDS: dict[str, tuple[str, str]] = {
    "script": ("numasim.cli.script", "run a scenario script of system calls (the oracle's "
               "language) on the simulated kernel"),
    "numactl": ("numasim.cli.numactl", "run a built-in workload under numactl "
                "options, e.g. `numasim numactl --interleave=all -- stream --machine clx-2s`"),
    "run": ("numasim.cli.run", "run a workload YAML on a machine"),
    "sweep": ("numasim.cli.sweep", "run an experiment YAML: a sweep over policies, "
              "machines, thread counts..."),
    "plot": ("numasim.cli.plot", "plot the results of a sweep"),
    "explain": ("numasim.cli.explain", "why a page of a scenario landed (or would land) on "
                "its node: policy, interleave, zonelist, watermarks"),
    "numastat": ("numasim.cli.numastat", "the numastat tool's tables (plain, -n, -m) of the "
                 "simulated kernel, after a scenario"),
}


# --------------------------------------------------------------------------- topo
def _topo_show(args: argparse.Namespace) -> int:
    from numasim.topology.loaders import load_machine
    from numasim.topology.show import describe, numactl_hardware

    machine = load_machine(args.machine)
    sys.stdout.write(numactl_hardware(machine, cpu_compress=args.cpu_compress))
    if not args.numactl_only:
        sys.stdout.write("\n" + describe(machine, args.linux))
    return 0


def _topo_convert(args: argparse.Namespace) -> int:
    from numasim.cli.outputs import check_output_file, write_text_file, writing
    from numasim.topology.loaders import load_machine, yaml_machine

    if args.output not in (None, "-"):
        check_output_file(args.output, "-o", make_parents=True)
    machine = load_machine(args.machine)
    text = yaml_machine.dump(machine)
    if args.output in (None, "-"):
        sys.stdout.write(text)
    else:
        out = Path(args.output)
        with writing(out, "-o"):
            out.parent.mkdir(parents=True, exist_ok=True)
        write_text_file(out, text, "-o")
        print(f"wrote {out}")
    return 0


def _topo_import_mlc(args: argparse.Namespace) -> int:
    from numasim.cli.outputs import check_output_file, write_text_file, writing
    from numasim.topology.calibrate import merge_mlc
    from numasim.topology.loaders import load_machine, mlc, yaml_machine

    if args.output not in (None, "-"):
        check_output_file(args.output, "-o", make_parents=True)
    run = mlc.parse_file(args.file)
    machine = merge_mlc(load_machine(args.machine), run, curve=not args.no_curve)
    text = yaml_machine.dump(machine)
    if args.output in (None, "-"):
        sys.stdout.write(text)
        return 0
    out = Path(args.output)
    with writing(out, "-o"):
        out.parent.mkdir(parents=True, exist_ok=True)
    write_text_file(out, text, "-o")
    found = [w for w, ok in (("latency matrix", run.latency_ns is not None),
                             ("bandwidth matrix", run.bandwidth_MBps is not None),
                             ("loaded-latency curve", bool(run.loaded) and not args.no_curve),
                             ("read/write mix bandwidths",
                              bool(run.loaded and run.mix) and not args.no_curve))
             if ok]
    print(f"wrote {out} ({', '.join(found)} from {args.file})")
    return 0


def _topo_draw(args: argparse.Namespace) -> int:
    from numasim.cli.outputs import check_output_file, writing
    from numasim.topology.draw import draw_machine
    from numasim.topology.loaders import load_machine

    suffix = Path(args.output).suffix.lower()
    if suffix not in (".png", ".svg", ".pdf"):
        raise NumasimError("output must end in .png, .svg or .pdf", field="-o",
                           hint=f"got {args.output!r}")
    check_output_file(args.output, "-o")
    machine = load_machine(args.machine)
    with writing(args.output, "-o"):
        draw_machine(machine, args.output, metric=args.metric)
    print(f"wrote {args.output}")
    return 0


def _topo_list(args: argparse.Namespace) -> int:
    from numasim import shipped
    from numasim.topology.loaders import load_machine

    machines = shipped.names("machines")
    for name, path in machines.items():
        m = load_machine(path)
        print(f"{name:<24} {len(m.nodes):>3} nodes {len(m.cpus):>5} CPUs  {path}")
    print("\noracle layouts (the real kernel's test machines; `oracle-NAME` and `NAME` both "
          "work):")
    for name, path in shipped.names("layouts").items():
        m = load_machine(path)
        twin = f"oracle-{name}"
        same = f"  = {twin}" if twin in machines else ""
        print(f"{name:<24} {len(m.nodes):>3} nodes {len(m.cpus):>5} CPUs  {path}{same}")
    return 0


# ----------------------------------------------------------------------- validate
def _validate(args: argparse.Namespace) -> int:
    from numasim.validate import validate_path

    bad = 0
    for f in args.files:
        problems, kind = validate_path(f)
        if problems:
            bad += 1
            print(f"{f}: {len(problems)} problem(s) in this {kind} file", file=sys.stderr)
            for p in problems:
                print(f"  - {p.render()}", file=sys.stderr)
        else:
            print(f"{f}: ok ({kind})")
    return 2 if bad else 0


# ------------------------------------------------------------------------ parser
def build_parser() -> argparse.ArgumentParser:
    from numasim._version import __version__

    p = argparse.ArgumentParser(
        prog="numasim",
        description="A NUMA machine emulator that places pages exactly as Linux does.")
    p.add_argument("--version", action="version", version=f"numasim {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    topo = sub.add_parser("topo", help="show, convert or draw a machine description")
    tsub = topo.add_subparsers(dest="topo_command", metavar="ACTION")
    tsub.required = True
    s = tsub.add_parser("show", help="print the machine as `numactl --hardware` does, then its "
                        "fallback zonelists, policy zone, zones and matrices")
    s.add_argument("machine", help=MACHINE_HELP)
    s.add_argument("--cpu-compress", action="store_true", help="print CPU ranges (numactl "
                   "--cpu-compress)")
    s.add_argument("--numactl-only", action="store_true", help="only the numactl --hardware "
                   "part")
    s.add_argument("--linux", "--kernel", dest="linux", default="6.12",
                   choices=("6.12", "6.1", "2.6.7"),
                   help="the Linux generation whose boot to show: zonelists, watermarks, "
                        "memory tiers and demotion targets (default 6.12; 6.1 keeps every "
                        "boot node in the DRAM tier; --kernel is its old name)")
    s.set_defaults(func=_topo_show)
    c = tsub.add_parser("convert", help="write numasim YAML from any machine description")
    c.add_argument("machine", help=MACHINE_HELP)
    c.add_argument("-o", "--output", help="output YAML file (default: stdout)")
    c.set_defaults(func=_topo_convert)
    im = tsub.add_parser(
        "import-mlc", help="calibrate a machine from Intel MLC output",
        description="Read the text Intel Memory Latency Checker prints (--latency_matrix, "
        "--bandwidth_matrix, --loaded_latency, or a plain `mlc` run) and write the machine "
        "with MLC's latency and bandwidth matrices and a `curve` memory-controller model "
        "from the loaded-latency table.")
    im.add_argument("file", help="a text file holding MLC's output")
    im.add_argument("--machine", "-m", required=True,
                    help="the machine MLC ran on, to merge into (" + MACHINE_HELP + ")")
    im.add_argument("-o", "--output", help="output YAML (default: standard output)")
    im.add_argument("--no-curve", action="store_true",
                    help="take the matrices only; keep the machine's controller model")
    im.set_defaults(func=_topo_import_mlc)
    d = tsub.add_parser("draw", help="draw the machine (nodes, CPUs, memory, distances)")
    d.add_argument("machine", help=MACHINE_HELP)
    d.add_argument("-o", "--output", required=True, help="picture file: .png, .svg or .pdf")
    d.add_argument("--metric", choices=("distance", "latency", "bandwidth"), default="distance",
                   help="what to write on the edges between nodes (default: distance)")
    d.set_defaults(func=_topo_draw)
    ls = tsub.add_parser("list", help="list the shipped machines")
    ls.set_defaults(func=_topo_list)

    v = sub.add_parser("validate", help="check YAML files (machine, workload, experiment) and "
                       "report every problem at once")
    v.add_argument("files", nargs="+", help="files to check")
    v.set_defaults(func=_validate)

    for name, (module, help_text) in EXTERNAL_COMMANDS.items():
        sp = sub.add_parser(name, help=help_text, description=help_text)
        sp.set_defaults(func=_external(module), module=module)
        mod = __import__(module, fromlist=["add_arguments"])
        mod.add_arguments(sp)
    return p


def _external(module: str) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        mod = __import__(module, fromlist=["main"])
        return mod.main(args)

    return run


def main(argv: Sequence[str] | None = None) -> int:
    skip_numba_blas_probe()
    try:
        return _main(argv)
    finally:
        remove_blas_probe_hook()


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except NumasimError as e:
        print(f"numasim: error: {e.render()}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("numasim: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except OSError as e:  # the computer said no: a full disk, a read-only folder...
        from numasim.cli.outputs import os_error_message

        print(f"numasim: error: {os_error_message(e)}", file=sys.stderr)
        return 2
    except MemoryError:
        print("numasim: error: this computer ran out of memory (the simulated machine or "
              "the input is larger than it can hold)", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
