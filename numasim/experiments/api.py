"""Sweeps from Python and notebooks: ``numasim.sweep(...)`` returns a pandas DataFrame.

    >>> import numasim
    >>> df = numasim.sweep("experiments/policy-comparison.yaml", jobs=2)
    >>> df[["case", "bandwidth_GBps", "local_fraction"]]

An experiment can also be a dict with the same keys as the YAML file, so a notebook can
build one in a cell.  Results go where the command line puts them (``results/<name>``) and
are reused the same way: running a cell again recomputes nothing.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def _experiment(experiment: Any, quick: bool, sets: list[str] | None):
    from numasim.experiments.expand import Experiment, expand
    from numasim.experiments.schema import read_source

    if isinstance(experiment, Experiment):
        return experiment
    if isinstance(experiment, dict):
        return expand(read_source(data=experiment, quick=quick, sets=sets))
    return expand(read_source(experiment, quick=quick, sets=sets))


def sweep(experiment: str | os.PathLike | dict[str, Any], *, jobs: int = 1,
          out: str | os.PathLike | None = None, dask: str | None = None, quick: bool = False,
          set: list[str] | None = None, plots: str | os.PathLike | bool = False,
          progress: bool = True, retry_failed: bool = False, point_fn=None,
          plot_formats: tuple[str, ...] = ("png", "svg", "pdf")):
    """Run an experiment (a YAML file, the name of a shipped one, or a dict) and return its
    results table.

    ``jobs``: worker processes (1 runs here); ``dask``: a Dask scheduler address (or
    ``"local"``); ``out``: results folder (default ``results/<name>``); ``quick``: apply the
    experiment's ``quick:`` overrides; ``set``: overrides as ``"PATH=VALUE"`` strings;
    ``plots``: a folder to draw the plots into (True: ``plots/<name>``), one file per figure
    in each of ``plot_formats`` ("pdf" there means one report.pdf of all figures).  Raises
    :class:`~numasim.errors.ConfigError` listing every problem of a bad experiment.

    The DataFrame has one row per point in sweep order (see
    :mod:`numasim.experiments.table` for the columns); ``df.attrs["results"]`` is the
    results folder.
    """
    from numasim.experiments.runner import run_sweep
    from numasim.experiments.store import default_dirs

    exp = _experiment(experiment, quick, set)
    out_dir, plots_dir = default_dirs(exp.name, quick, None if out is None else str(out),
                                      None if plots in (True, False) else str(plots))
    summary = run_sweep(exp, out_dir, jobs=jobs, dask=dask, point_fn=point_fn,
                        progress=progress, retry_failed=retry_failed)
    if summary.interrupted:
        raise KeyboardInterrupt
    if plots is not False and (summary.df["status"] == "ok").any():
        from numasim.report.plots import plot_results

        plot_results(out_dir, plots_dir, tuple(f for f in plot_formats if f != "pdf"),
                     pdf="pdf" in plot_formats)
    df = summary.df
    df.attrs["results"] = str(out_dir)
    return df


def load_results(results: str | os.PathLike):
    """The table of a results folder (or of its results.csv) as a DataFrame."""
    import pandas as pd

    path = Path(results)
    if path.is_dir():
        path = path / "results.csv"
    return pd.read_csv(path, keep_default_na=False, na_values=[""])


def experiment_points(experiment: str | os.PathLike | dict[str, Any], *, quick: bool = False,
                      set: list[str] | None = None) -> list[dict[str, Any]]:
    """The points an experiment expands to (key, labels, resolved config), without running."""
    exp = _experiment(experiment, quick, set)
    return [{"index": p.index, "key": p.key, "rep": p.rep, "labels": p.labels,
             "config": p.config} for p in exp.points]
