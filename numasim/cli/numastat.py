"""``numasim numastat [FILE | -e 'cmd; cmd'] --machine M [-n] [-m] [-c] [--node LIST]``.

What numactl's ``numastat`` tool prints on the simulated machine, in its own formats: with no
option the per-node table of /sys/devices/system/node/nodeN/numastat counters (``numa_hit``
... ``other_node``), ``-n`` the same in MB with a Total column, ``-m`` the per-node meminfo
table (the rows numasim models).  As numastat, any option switches from the legacy table to
the new format (``-c`` alone gives the MB table, compressed).  The counters are those of the
boot plus the scenario, if one is given; its processes are still alive, so ``-m`` shows the
memory they hold.  ``-c`` compresses the columns as numastat does; ``--node`` (numasim's)
shows only some nodes; ``--delta`` only what the scenario added.
"""

from __future__ import annotations

import argparse
import sys

from numasim.errors import ScriptError


def add_arguments(p: argparse.ArgumentParser) -> None:
    from numasim.cli.script import add_scenario_arguments

    add_scenario_arguments(p, "scenario script to run first (optional)", short_machine=False)
    p.add_argument("-n", dest="mb", action="store_true", help="numa_hit ... other_node in "
                   "MB, with a Total column (numastat -n)")
    p.add_argument("-m", dest="meminfo", action="store_true", help="per-node meminfo in MB "
                   "(numastat -m)")
    p.add_argument("-c", dest="compress", action="store_true", help="compress the columns "
                   "(numastat -c)")
    p.add_argument("--node", metavar="LIST", help="only these nodes, a Linux list like 0,2-3")
    p.add_argument("--delta", action="store_true", help="only what the scenario added: the "
                   "counters minus those at boot")


def main(args: argparse.Namespace) -> int:
    import numpy as np

    from numasim.bitmap import parse_list
    from numasim.cli.script import boot_scenario
    from numasim.errors import NumasimError
    from numasim.mm.procviews import numastat_table

    if args.mb and args.meminfo:
        raise NumasimError("-n and -m are two different tables", field="-n/-m",
                           hint="give one of them (or neither, for the raw counters)")
    if args.file is None and not args.inline and not args.machine:
        raise ScriptError("no machine given", field="--machine",
                          hint="numasim numastat --machine clx-2s [SCENARIO]")
    nodes = None
    if args.node:
        try:
            nodes = parse_list(args.node)
        except (ValueError, NumasimError):
            raise NumasimError(f"not a node list: {args.node!r}", field="--node",
                               hint="a Linux list such as 0,2-3") from None
    runner, lines, _ = boot_scenario(args, required=False)
    k = runner.k
    at_boot = np.array(k.ks.numastat, copy=True)
    runner.run_open(lines)
    if nodes is not None:
        unknown = sorted(set(nodes) - set(k.machine.node_ids))
        if unknown:
            raise NumasimError(f"no node {unknown[0]} on {k.machine.name}", field="--node",
                               hint="nodes: " + ",".join(map(str, k.machine.node_ids)))
    counters = None
    if args.delta:
        counters = np.asarray(k.ks.numastat) - at_boot
    # as numastat(8): the legacy table only with no option at all; any option selects the
    # new format, whose default is the counters in MB
    mode = "meminfo" if args.meminfo else "mb" if (args.mb or args.compress or nodes) \
        else "legacy"
    sys.stdout.write(numastat_table(k, mode=mode, nodes=nodes, counters=counters,
                                    compress=args.compress))
    return 0
