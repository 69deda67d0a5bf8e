"""How numasim's figures look: a colour-blind-safe palette, readable sizes, files that are
the same bytes every time.

Figures are plain :class:`matplotlib.figure.Figure` objects (no pyplot, no global backend
state), so plotting works the same from the command line (Agg), in a notebook (inline) and
in tests.  Colours are Okabe & Ito's eight, which stay distinct under the common forms of
colour blindness; lines also differ by marker and bars by hatching, so a figure reads in
grey too.  Heatmaps use cividis (perceptually uniform, colour-blind safe).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# Okabe-Ito, most distinct first; yellow last (weak on white)
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000",
           "#F0E442")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
HATCHES = ("", "//", "..", "xx", "\\\\", "oo", "--", "++")
LOCAL_COLOUR = "#0072B2"
REMOTE_COLOUR = "#D55E00"
HEATMAP = "cividis"
FORMATS = ("png", "svg")
DPI = 150

RC: dict[str, Any] = {
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.titleweight": "bold",
    "axes.labelsize": 10,
    "legend.fontsize": 9,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "svg.hashsalt": "numasim",
    "svg.fonttype": "path",
    "figure.dpi": 100,
}


def colour(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def marker(i: int) -> str:
    return MARKERS[i % len(MARKERS)]


def hatch(i: int) -> str:
    return HATCHES[i % len(HATCHES)]


@contextlib.contextmanager
def style() -> Iterator[None]:
    """numasim's figure settings for the figures made inside the block."""
    import matplotlib

    with matplotlib.rc_context(RC):
        yield


def figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def save(fig, out_dir: str | Path, stem: str, formats: tuple[str, ...] = FORMATS
         ) -> list[Path]:
    """Write ``fig`` as ``out_dir/stem.<format>`` for each format; deterministic bytes (no
    dates in the files)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    with style():
        for fmt in formats:
            p = out / f"{stem}.{fmt}"
            meta: dict[str, Any]
            if fmt == "svg":
                meta = {"Date": None}
            elif fmt == "pdf":
                meta = {"CreationDate": None, "ModDate": None}
            else:
                meta = {}
            fig.savefig(p, format=fmt, dpi=DPI, metadata=meta)
            paths.append(p)
            freeze_layout(fig)
    return paths


def freeze_layout(fig) -> None:
    """Keep the layout the last draw computed: constrained layout costs as much as the
    drawing itself, and redoing it for every format of the same figure changes nothing."""
    if fig.get_layout_engine() is not None:
        fig.set_layout_engine("none")


def time_unit(max_ns: float) -> tuple[str, float]:
    """(unit, nanoseconds per unit) for a time axis reaching ``max_ns``: the largest unit in
    which the axis still reaches 2, so ticks read 0-2000 µs rather than 0-0.002 s.  One
    figure uses one unit for all its panels."""
    for unit, div in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if max_ns >= 2 * div:
            return unit, div
    return "ns", 1.0


def wrap(text: str, width: int = 28) -> str:
    """A long legend or tick label on a few lines."""
    import textwrap

    return "\n".join(textwrap.wrap(str(text), width)) or str(text)
