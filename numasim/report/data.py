"""A sweep's results read back for plotting: the table, the series in sweep order, the x axis,
and each point's full run document (histograms, timelines, pages per region)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from numasim.errors import NumasimError


@dataclass
class SweepData:
    root: Path
    manifest: dict[str, Any]
    df: Any  # pandas DataFrame of the points that ran well
    docs: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.manifest.get("experiment", self.root.name)

    @property
    def x(self) -> str | None:
        x = self.manifest.get("x")
        return x if x in self.df.columns else None

    @property
    def series(self) -> list[str]:
        """Series labels in the order the sweep lists them."""
        return list(dict.fromkeys(self.df["series"]))

    @property
    def machines(self) -> list[str]:
        return list(dict.fromkeys(self.df["machine"]))

    @property
    def workloads(self) -> list[str]:
        return list(dict.fromkeys(self.df["workload"]))

    @property
    def x_numeric(self) -> bool:
        import pandas as pd

        return self.x is not None and pd.api.types.is_numeric_dtype(self.df[self.x])

    def x_values(self) -> list[Any]:
        """The x axis's values: sorted if they are numbers, else in sweep order."""
        if self.x is None:
            return []
        vals = list(dict.fromkeys(self.df[self.x]))
        return sorted(vals) if self.x_numeric else vals

    def result(self, key: str) -> dict[str, Any]:
        return self.docs[key]["result"]

    def config(self, key: str) -> dict[str, Any]:
        return self.docs[key]["config"]

    def one_run(self, series: str) -> tuple[str, Any] | None:
        """(key, x value) of the run that stands for a series in per-run plots: the largest x
        value, first repetition."""
        d = self.df[self.df["series"] == series]
        if d.empty:
            return None
        if self.x is not None:
            present = set(d[self.x])
            xmax = [v for v in self.x_values() if v in present][-1]
            d = d[d[self.x] == xmax]
        else:
            xmax = None
        d = d.sort_values(["rep", "point"])
        return str(d.iloc[0]["key"]), xmax


def load_sweep(results: str | os.PathLike) -> SweepData:
    """Read a results folder (or its results.csv) written by ``numasim sweep``."""
    from numasim.experiments.store import ResultStore
    from numasim.experiments.table import build_table

    path = Path(results)
    if path.is_file():
        path = path.parent
    if not path.exists():
        raise NumasimError("no such results folder", file=str(results),
                           hint="give the folder `numasim sweep` wrote, e.g. "
                                "results/policy-comparison")
    store = ResultStore(path)
    manifest = store.read_manifest()
    df = build_table(manifest, store)
    if df.empty or "status" not in df.columns:
        raise NumasimError("no finished points to plot yet", file=str(path),
                           hint="run the sweep first (`numasim sweep EXPERIMENT.yaml`)")
    ok = df[df["status"] == "ok"].reset_index(drop=True)
    if ok.empty:
        raise NumasimError("every point of this sweep failed; nothing to plot", file=str(path),
                           hint="see the 'error' column of results.csv")
    docs = {}
    for key in dict.fromkeys(ok["key"]):
        doc = store.read_point(str(key))
        if doc is not None:
            docs[str(key)] = doc
    return SweepData(path, manifest, ok, docs)
