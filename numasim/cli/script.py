"""``numasim script FILE --machine MACHINE [--linux 6.12|6.1|2.6.7] [--json]``.

Runs a scenario in the oracle's language on the simulated kernel and prints what the oracle's
probe would print on Linux (or JSON objects, one per line).  ``--machine`` may be omitted when
the script names a layout (``#@ layout NAME``, beside the script or shipped in
``configs/layouts``).  FILE may also name a shipped coursework scenario (``01_default_local``,
from ``experiments/scenarios``).  ``-e 'cmd; cmd'`` runs an inline scenario, as the oracle's
``run_oracle.py -e`` does.  ``--check FILE`` compares the output with an oracle recording the
way ``run_oracle.py --check`` does (kernel console messages, which carry boot timestamps, left
out).  ``--numa-balancing`` and ``--balancing-knob NAME=VALUE`` boot the simulated kernel with
NUMA balancing on and its scan knobs set (a script can also do it itself, as on Linux).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from numasim.errors import ConfigError, ScriptError


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_scenario_arguments(p)
    p.add_argument("--json", action="store_true", help="one JSON object per result line")
    p.add_argument("--check", metavar="RECORDING", help="compare with an oracle recording "
                   "(expected_*.txt) as run_oracle.py --check does; exit 1 on a difference")
    p.add_argument("--numa-balancing", metavar="MODE", nargs="?", const=1, default=0,
                   type=_balancing_mode,
                   help="boot with kernel.numa_balancing=MODE: 1 normal (the default "
                   "without MODE), 2 memory tiering (promotion), 3 both, 4 scanner only "
                   "(without the option: off, as the oracle boots)")
    p.add_argument("--balancing-knob", metavar="NAME=VALUE", action="append", default=[],
                   help="a NUMA-balancing knob at boot: the debugfs scan_delay_ms, "
                   "scan_period_min_ms, scan_period_max_ms, scan_size_mb, hot_threshold_ms, "
                   "or the sysctl promote_rate_limit_MBps (repeatable)")
    p.add_argument("--thp", metavar="MODE", choices=("always", "madvise", "never"),
                   help="transparent_hugepage/enabled at boot: always, madvise or never "
                   "(default: the script's '#@ append transparent_hugepage=' line, else the "
                   "machine's kernel setting, else never, as the oracle boots)")
    p.add_argument("--thp-defrag", metavar="MODE",
                   help="transparent_hugepage/defrag at boot: always, defer, defer+madvise, "
                   "madvise or never (default: the machine's kernel setting, else Linux's "
                   "madvise; a script may also write the sysfs file)")
    p.add_argument("--khugepaged-knob", metavar="NAME=VALUE", action="append", default=[],
                   help="a khugepaged knob at boot, named as its file under "
                        "/sys/kernel/mm/transparent_hugepage/khugepaged/: pages_to_scan, "
                        "scan_sleep_millisecs, alloc_sleep_millisecs, max_ptes_none, "
                        "max_ptes_swap, max_ptes_shared, defrag (repeatable)")
    p.add_argument("--swap", metavar="SIZE",
                   help="a swap device of SIZE (64M, 1G) that reclaim may write to (default: "
                   "the script's '#@ swap SIZE' line, a RAM disk as the oracle's; else the "
                   "machine's kernel: swap; else none)")


def _balancing_mode(text: str) -> int:
    """``--numa-balancing MODE``: kernel.numa_balancing accepts 0..4."""
    if not text.strip().isdigit() or not 0 <= int(text) <= 4:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a kernel.numa_balancing mode: 0 off, 1 normal, 2 memory "
            "tiering, 3 both, 4 scanner only")
    return int(text)


def with_balancing(machine, args: argparse.Namespace):
    """The machine with ``--numa-balancing`` / ``--balancing-knob`` applied (they travel
    as the machine YAML's ``kernel:`` settings do, see Machine.numa_balancing)."""
    import dataclasses

    from numasim.mm.numa_balancing import KNOB_DEFAULTS

    settings = dict(machine.numa_balancing)
    mode = getattr(args, "numa_balancing", 0)
    if mode:
        settings["numa_balancing"] = int(mode)
    names = (*KNOB_DEFAULTS, "promote_rate_limit_MBps")
    zero_ok = ("scan_delay_ms", "hot_threshold_ms", "promote_rate_limit_MBps")
    for item in getattr(args, "balancing_knob", []):
        name, _, value = item.partition("=")
        if name not in names or not value.strip().isdigit() or (
                int(value) == 0 and name not in zero_ok) or int(value) >= 1 << 31:
            raise ConfigError(f"bad NUMA-balancing knob {item!r}", field="--balancing-knob",
                              hint="NAME=VALUE with NAME one of " + ", ".join(names)
                              + " and VALUE a whole number below 2^31 (at least 1, except "
                              + ", ".join(zero_ok) + ")")
        settings[name] = int(value)
    if getattr(args, "thp", None):
        machine = dataclasses.replace(machine, thp=args.thp)
    if getattr(args, "thp_defrag", None):
        from numasim.kernel_settings import check_thp_defrag

        machine = dataclasses.replace(machine, thp_defrag=check_thp_defrag(args.thp_defrag))
    if getattr(args, "khugepaged_knob", None):
        from numasim.kernel_settings import parse_khugepaged_knob, with_kernel_settings

        machine = with_kernel_settings(machine, khugepaged=dict(
            parse_khugepaged_knob(item) for item in args.khugepaged_knob))
    if not settings:
        return machine
    return dataclasses.replace(machine, numa_balancing=tuple(settings.items()))


def add_scenario_arguments(p: argparse.ArgumentParser, what: str = "scenario script",
                           short_machine: bool = True) -> None:
    """FILE, -e, --machine and --linux: how ``script``, ``explain`` and ``numastat`` name a
    scenario and the machine it runs on (``numastat`` keeps ``-m`` for numastat's own -m)."""
    p.add_argument("file", nargs="?", help=f"{what} ('-' = stdin), or the name of a "
                   "shipped coursework scenario (e.g. 01_default_local)")
    p.add_argument("-e", "--exec", dest="inline", action="append", default=[],
                   help="inline scenario, commands separated by ';' (instead of FILE)")
    p.add_argument("--machine", *(["-m"] if short_machine else []),
                   help="machine: a numasim YAML, an oracle .layout, a shipped machine or "
                   "layout name (default: the script's '#@ layout' line)")
    p.add_argument("--linux", "--kernel", dest="linux", default="6.12",
                   choices=("6.12", "6.1", "2.6.7"),
                   help="the Linux generation whose behaviour to reproduce (default 6.12; "
                        "--kernel is its old name)")


def read_scenario(args: argparse.Namespace, required: bool = True) -> tuple[str, str]:
    """(text, name) of the scenario FILE, stdin or -e commands ("" when not required and
    none given)."""
    from numasim.mm.script.lang import inline_script

    if args.inline:
        if args.file:
            raise ScriptError("give a script FILE or -e, not both", field="file",
                              hint="numasim script FILE, or numasim script -e 'cmd; cmd'")
        return "".join(inline_script(x) for x in args.inline), "<-e>"
    if not args.file:
        if not required:
            return "", "<none>"
        raise ScriptError("no scenario given", field="file",
                          hint=f"numasim {args.command} FILE --machine M, or -e 'cmd; cmd'")
    if args.file == "-":
        return decode_text(sys.stdin.buffer.read(), "<stdin>"), "<stdin>"
    from numasim import shipped

    path = Path(args.file)
    if not path.is_file():
        path = shipped.find("scenarios", args.file) or path
    if not path.is_file():
        raise ScriptError("no such scenario file", file=args.file,
                          hint="give the path of a scenario script, or the name of a shipped "
                               "one: " + ", ".join(shipped.names("scenarios")))
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ScriptError(f"cannot read the scenario: {e.strerror}", file=args.file) from None
    return decode_text(data, str(path)), str(path)


def decode_text(data: bytes, name: str) -> str:
    """A scenario's text: UTF-8, or a ScriptError naming the line of the first bad byte."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise ScriptError(f"not UTF-8 text (byte {data[e.start]:#04x} at offset {e.start})",
                          file=name, line=line, hint="scenario scripts are UTF-8 text") from None


def scenario_machine(args: argparse.Namespace, text: str, name: str):
    """The machine of ``--machine``, else the one the script's ``#@ layout`` line names."""
    from numasim.mm.script import load_machine_for, script_layout

    machine_spec = args.machine or script_layout(text)
    if machine_spec is None:
        raise ConfigError("no machine given and the script names no layout", file=name,
                          field="machine", hint="add --machine FILE, or a '#@ layout NAME' "
                          "line naming a layout in configs/layouts (e.g. 4node-asym)")
    near = Path(name).resolve().parent if not name.startswith("<") else None
    return load_machine_for(machine_spec, args.linux, near=None if args.machine else near)


def boot_scenario(args: argparse.Namespace, required: bool = True):
    """Parse the scenario and boot its machine: (runner, lines, script name); the caller
    runs the lines with ``runner.run_open`` to keep the process alive for a look at it."""
    from numasim.mm.kernel import Kernel
    from numasim.mm.script.lang import parse_script
    from numasim.mm.script.runner import Runner

    text, name = read_scenario(args, required)
    lines = parse_script(text, name)  # a bad line is reported before anything boots
    from numasim.mm.script.lang import boot_thp_mode, script_append

    thp = getattr(args, "thp", None) or boot_thp_mode(script_append(text))
    return Runner(Kernel(scenario_machine(args, text, name), kernel=args.linux, thp=thp)), \
        lines, name


def main(args: argparse.Namespace) -> int:
    from numasim.mm.script import run_script
    from numasim.mm.script.lang import parse_script
    from numasim.mm.script.output import render_json, render_text

    text, name = read_scenario(args)
    parse_script(text, name)  # report a bad line before booting anything
    machine = scenario_machine(args, text, name)
    machine = with_balancing(machine, args)
    swap = None
    if getattr(args, "swap", None):
        from numasim.mm.script.lang import swap_size_pages

        swap = swap_size_pages(args.swap, None, "--swap")
    records = run_script(text, machine, kernel=args.linux, file=name,
                         thp=getattr(args, "thp", None), swap_pages=swap)
    out = render_json(records) if args.json else render_text(records)
    sys.stdout.write(out)
    if args.check:
        from numasim.mm.script.check import check_lines, check_vmstat, lru_batch_of

        try:
            exp = [x for x in decode_text(Path(args.check).read_bytes(), args.check).splitlines()
                   if not x.startswith("## ")]
        except OSError as e:
            raise ScriptError("cannot read the recording", file=args.check,
                              hint=e.strerror or "give an expected_*.txt file") from None
        got = [r.text for r in records]
        batch = lru_batch_of(args.linux)
        diffs = check_lines(exp, got, lru_batch=batch) + check_vmstat(exp, got, lru_batch=batch)
        print(f"CHECK {name} vs {args.check}: "
              f"{'OK' if not diffs else str(len(diffs)) + ' differences'}", file=sys.stderr)
        for d in diffs[:20]:
            print(str(d), file=sys.stderr)
        return 1 if diffs else 0
    return 0
