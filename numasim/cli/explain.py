"""``numasim explain [FILE | -e 'cmd; cmd'] --page OFF [--region ID] [--before LINE]``.

Why a page landed (or would land) on its node, as the kernel decides it: the policy in force
and its scope (VMA, shared, task, default), the interleave index and target, the start node,
the cpuset, every zone of the zonelist tried against its watermark and lowmem reserve, and
the zone used -- the scenario command ``explain OFF`` from the command line.

The scenario runs first (its own output is not shown; ``numasim script`` shows it), then each
``--page`` of the region (default: the current one) is explained.  A page that already exists
is explained as a fault now would place it, beside the node it is on; ``--before LINE`` stops
the scenario before line LINE, so the explanation is the one of the touch on that line.
"""

from __future__ import annotations

import argparse
import json
import sys

from numasim.errors import ScriptError


def add_arguments(p: argparse.ArgumentParser) -> None:
    from numasim.cli.script import add_scenario_arguments

    add_scenario_arguments(p, "scenario script that builds the state to look at")
    p.add_argument("--page", "-p", dest="pages", action="append", type=_page, required=True,
                   metavar="OFF", help="page index in the region (repeatable; a range such "
                   "as 0-3 too)")
    p.add_argument("--region", "-r", type=int, metavar="ID", help="region id (default: the "
                   "scenario's current region)")
    p.add_argument("--before", type=int, metavar="LINE", help="stop the scenario before "
                   "this line (e.g. the touch whose placement you want explained)")
    p.add_argument("--read", action="store_true", help="explain a read access (default: a "
                   "write, as `touch` does)")
    p.add_argument("--json", action="store_true", help="one JSON object per page")


def _page(text: str) -> list[int]:
    lo, _, hi = text.partition("-")
    try:
        a, b = int(lo), int(hi or lo)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a page index or range: {text!r}") from None
    if a < 0 or b < a or b - a >= 1 << 16:
        raise argparse.ArgumentTypeError(f"not a page range: {text!r} (OFF or OFF-OFF, "
                                         "at most 65536 pages)")
    return list(range(a, b + 1))


def _cut(lines: list, before: int, name: str) -> list:
    """The top-level lines before ``before``; refused inside a fork block."""
    depth = 0
    for i, line in enumerate(lines):
        if line.number >= before:
            if depth:
                raise ScriptError(f"line {before} is inside a fork ... endfork block",
                                  file=name, field="--before",
                                  hint="explain before the fork or after its endfork")
            return lines[:i]
        depth += {"fork": 1, "endfork": -1}.get(line.cmd, 0)
    return lines


def main(args: argparse.Namespace) -> int:
    from numasim.cli.script import boot_scenario
    from numasim.mm.kernel import PAGE_SHIFT
    from numasim.mm.procviews import explain_page

    runner, lines, name = boot_scenario(args)
    if args.before is not None:
        lines = _cut(lines, args.before, name)
    proc = runner.run_open(lines)
    if proc is None:
        raise ScriptError("the scenario's process ended before its pages could be explained",
                          file=name, hint="drop the `exit` (or the command that killed it), "
                          "or stop earlier with --before LINE")
    rid = proc.cur if args.region is None else args.region
    if not 0 <= rid < len(proc.regions) or not proc.regions[rid].live:
        live = [r.id for r in proc.regions if r.live]
        raise ScriptError(f"no region {rid} at this point of the scenario", file=name,
                          field="--region", hint="regions mapped: " +
                          (", ".join(map(str, live)) or "none (the scenario maps nothing)"))
    r = proc.regions[rid]
    pages = [p for group in args.pages for p in group]
    bad = [p for p in pages if p >= r.npages]
    if bad:
        raise ScriptError(f"page {bad[0]} is outside region {rid}", file=name,
                          field="--page", hint=f"the region has {r.npages} pages: 0-"
                          f"{r.npages - 1}")
    for off in pages:
        addr = (r.vpn + off) << PAGE_SHIFT
        ex = explain_page(runner.k, proc.t, addr, write=not args.read)
        if args.json:
            print(json.dumps({"region": rid, "page": off, "addr": addr,
                              "node": ex.existing_node, "fault": ex.fault,
                              "fault_node": ex.final_node, "oom": ex.oom,
                              "text": ex.text().splitlines()}))
            continue
        where = ("not present yet" if ex.existing_node is None
                 else f"on node {ex.existing_node}")
        sys.stdout.write(f"region {rid} ({r.kind}, {r.npages} pages), page {off}: {where}\n")
        for ln in ex.text().splitlines():
            sys.stdout.write(f"  {ln}\n")
    return 0
