"""``numasim sweep EXPERIMENT.yaml [-j N] [--out DIR] [--dask ADDRESS]``.

Runs every point of an experiment that has no result yet, writes one result file per point,
gathers ``results.csv`` and draws the plots.  Interrupt it at any time: running it again
finishes the job without recomputing anything that finished.
"""

from __future__ import annotations

import argparse
import os
import sys


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("experiment", help="experiment YAML file, or the name of a shipped one "
                   "(policy-comparison, ...: see experiments/*.yaml)")
    p.add_argument("-j", "--jobs", type=int, default=None, metavar="N",
                   help=f"worker processes on this computer (default: one per CPU, here "
                        f"{_cpus()}; 1 runs in this process)")
    p.add_argument("--out", metavar="DIR", help="results folder (default: "
                   "results/<experiment name>, with -quick appended under --quick)")
    p.add_argument("--dask", metavar="ADDRESS", help="run the points on a Dask distributed "
                   "cluster (e.g. tcp://10.0.0.5:8786), or 'local' for a LocalCluster of -j "
                   "workers")
    p.add_argument("--quick", action="store_true", help="apply the experiment's 'quick:' "
                   "overrides (a reduced size, as CI runs it)")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="PATH=VALUE",
                   help="override one value, e.g. --set workload.size=8MiB or --set "
                        "sweep.grid.threads=[1,2] (repeatable)")
    p.add_argument("--plots", metavar="DIR", help="where the plots go (default: "
                   "plots/<experiment name>, or DIR/plots with --out DIR)")
    p.add_argument("--no-plots", action="store_true", help="do not draw plots at the end")
    p.add_argument("--retry-failed", action="store_true", help="run points that failed "
                   "before again")
    p.add_argument("--rerun", action="store_true", help="run every point again, even those "
                   "with a result (e.g. after changing numasim itself)")
    p.add_argument("--list", action="store_true", help="only list the points (key, labels, "
                   "whether a result exists) and exit")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")




MAX_ROWS = 40




FIGURE_COLUMNS = (("stream_GBps", "GB/s STREAM"), ("gups_GUPps", "GUP/s"),
                  ("chase_ns_per_load", "ns/load"))
SCOPE_NOTE = ("  GB/s (bytes the program moves, as STREAM counts them), latency ns and local: "
              "the measured phases, initialisation left out; local, run: the whole run")


def format_table(df, axes: list[str]) -> str:
    """The results in a few columns: what was swept, bandwidth, latency, locality (of the
    measured phases, and of the whole run), and the workload's own figure; a last line says
    which scope each column has."""
    cols = [a for a in axes if a in df.columns]
    if "threads" not in cols and "threads" in df.columns:
        cols.append("threads")
    if "rep" in df.columns and df["rep"].nunique() > 1:
        cols.append("rep")
    metrics = [("bandwidth_GBps", "GB/s", "{:.4g}"), ("latency_mean_ns", "latency ns", "{:.1f}"),
               ("local_fraction_measured", "local", "{:.3f}"),
               ("local_fraction", "local, run", "{:.3f}")]
    metrics = [m for m in metrics if m[0] in df.columns or m[0] == "bandwidth_GBps"]
    own = [c for c in FIGURE_COLUMNS if c[0] in df.columns]
    if [c[0] for c in own] == ["stream_GBps"]:
        own = []  # STREAM's own figure is the GB/s column already
    header = [*cols, *(m[1] for m in metrics)] + (["own figure"] if own else [])
    rows = []
    for _, r in df.head(MAX_ROWS).iterrows():
        row = [str(r[c]) for c in cols]
        if r.get("status") != "ok":
            row += ["failed"] + [""] * (len(metrics) - 1 + bool(own))
            rows.append(row)
            continue
        for col, _, fmt in metrics:
            v = r.get(col)
            row.append("-" if v is None or v != v else fmt.format(v))
        if own:
            vals = [f"{r.get(c):.4g} {unit}" for c, unit in own
                    if r.get(c) is not None and r.get(c) == r.get(c)]
            row.append(vals[0] if vals else "-")
        rows.append(row)
    widths = [max(len(h), *(len(x[i]) for x in rows)) for i, h in enumerate(header)]
    numeric = [False] * len(cols) + [True] * (len(metrics) + bool(own))
    if "threads" in cols:
        numeric[cols.index("threads")] = True

    def line(cells: list[str]) -> str:
        return "  " + "  ".join(c.rjust(w) if n else c.ljust(w)
                                for c, w, n in zip(cells, widths, numeric, strict=True))

    out = [line(header)] + [line(r) for r in rows]
    if len(df) > MAX_ROWS:
        out.append(f"  ... {len(df) - MAX_ROWS} more rows in results.csv")
    out.append(SCOPE_NOTE + (" (own figure: measured phases)" if own else ""))
    return "\n".join(out)


def main(args: argparse.Namespace) -> int:
    from numasim.errors import NumasimError
    from numasim.experiments.expand import load_experiment
    from numasim.experiments.runner import format_summary, run_sweep
    from numasim.experiments.store import default_dirs

    exp = load_experiment(args.experiment, quick=args.quick, sets=args.sets)
    out_dir, plots_dir = default_dirs(exp.name, args.quick, args.out, args.plots)
    if args.list:
        from numasim.experiments.store import ResultStore

        store = ResultStore(out_dir)
        for p in exp.points:
            doc = store.read_point(p.key)
            state = "-" if doc is None else doc["status"]
            labels = ", ".join(f"{k}={v}" for k, v in p.labels.items())
            rep = f" rep {p.rep}" if exp.repetitions > 1 else ""
            print(f"{p.index:>4} {p.key} {state:<5} {labels}{rep}")
        print(f"{len(exp.points)} point(s); results in {out_dir}")
        return 0
    from numasim.cli.outputs import check_output_dir

    check_output_dir(out_dir, "--out")
    if not args.no_plots:
        check_output_dir(plots_dir, "--plots")
    if args.dask and args.dask != "local":
        from numasim.experiments.runner import probe_scheduler

        probe_scheduler(args.dask)  # before the lock and the bar: a typo fails at once
    jobs = args.jobs if args.jobs is not None else _cpus()
    if jobs < 1:
        raise NumasimError(f"-j must be at least 1, got {jobs}", field="-j")
    where = f"Dask at {args.dask}" if args.dask else (
        "this process" if jobs == 1 else f"{jobs} worker processes")
    print(f"{exp.name}: {len(exp.points)} point(s) on {where}; results in {out_dir}",
          file=sys.stderr)
    if not args.dask:  # said once here, not once per worker (Dask workers compile remotely)
        from numasim.jitcache import announce_cold_compile

        announce_cold_compile()
    summary = run_sweep(exp, out_dir, jobs=jobs, dask=args.dask,
                        progress=not args.no_progress, retry_failed=args.retry_failed,
                        rerun=args.rerun)
    if summary.df is not None and len(summary.df) and "status" in summary.df.columns:
        print(format_table(summary.df, exp.axes))
    print(format_summary(summary))
    df = summary.df
    if not args.no_plots and not summary.interrupted and df is not None \
            and "status" in df.columns and (df["status"] == "ok").any():
        from numasim.cli.outputs import writing
        from numasim.report.plots import describe_plots, plot_results

        with writing(plots_dir, "--plots"):
            files = plot_results(out_dir, plots_dir, progress=not args.no_progress)
        print(f"  plots:  {plots_dir}/ ({describe_plots(files)})")
    if summary.interrupted:
        return 130
    return 0 if summary.failed == 0 else 1
