"""``numasim plot RESULTS [-o plots/]``: draw the figures of a sweep's results folder."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("results", help="a results folder written by `numasim sweep` (e.g. "
                   "results/policy-comparison), or its results.csv")
    p.add_argument("-o", "--output", metavar="DIR", help="folder for the figures (default: "
                   "plots/<experiment name>)")
    p.add_argument("--format", default="png,svg", help="comma-separated formats (default "
                   "png,svg; also pdf)")
    p.add_argument("--no-pdf", action="store_true", help="do not write report.pdf")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def main(args: argparse.Namespace) -> int:
    import matplotlib

    matplotlib.use("Agg")
    from numasim.errors import NumasimError
    from numasim.experiments.store import ResultStore
    from numasim.report.plots import describe_plots, plot_results

    formats = tuple(f.strip().lower().lstrip(".") for f in args.format.split(",") if f.strip())
    bad = [f for f in formats if f not in ("png", "svg", "pdf")]
    if bad or not formats:
        raise NumasimError(f"unknown picture format {bad[0] if bad else args.format!r}",
                           field="--format", hint="valid: png, svg, pdf")
    root = Path(args.results)
    if root.is_file():
        root = root.parent
    out = args.output
    if out is None:
        name = ResultStore(root).read_manifest().get("experiment") if root.is_dir() else None
        quick = "-quick" if root.name.endswith("-quick") else ""
        out = Path("plots") / ((name + quick) if name else root.name)
    from numasim.cli.outputs import check_output_dir, writing

    check_output_dir(out, "-o")
    with writing(out, "-o"):
        files = plot_results(root, out, formats, pdf=not args.no_pdf,
                             progress=not args.no_progress)
    print(f"plots: {out}/ ({describe_plots(files)})")
    return 0
