"""Sweep figures: every figure is written as PNG and SVG (and a PDF report), each has a
title, axis labels with units and a legend, colours come from the colour-blind-safe palette,
and the files are the same bytes when drawn twice.  matplotlib stays out of the CLI modules'
imports."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from numasim.experiments.expand import load_experiment
from numasim.experiments.runner import run_sweep

TESTS = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS))

from experiments_fake import FAKE_EXPERIMENT, fake_point  # noqa: E402

XSWEEP = """\
experiment: fake-threads
machine: oracle-4node-flat
workload: {kernel: stream, size: 1MiB}
repetitions: 2
sweep:
  cases:
    - label: first touch
    - {label: interleave, policy: --interleave=all}
    - {label: bind 1, policy: --membind=1}
  grid:
    threads: [1, 2, 3]
"""


CASES = """\
experiment: fake-cases
machine: oracle-2node
workload: {kernel: stream, size: 1MiB, threads: 2}
repetitions: 2
sweep:
  cases:
    - label: first touch
    - {label: interleave, policy: --interleave=all}
    - {label: bind 1, policy: --membind=1}
    - {label: preferred 0, policy: --preferred=0}
"""


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    d = tmp_path_factory.mktemp("plots")
    out = {}
    for name, text in (("cases", CASES), ("threads", XSWEEP), ("sizes", FAKE_EXPERIMENT)):
        p = d / f"{name}.yaml"
        p.write_text(text)
        exp = load_experiment(p)
        s = run_sweep(exp, d / name, jobs=1, point_fn=fake_point, progress=False)
        assert s.ok
        out[name] = d / name
    return out


def _check_figure(fig, name):
    from numasim.report.style import PALETTE

    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert axes, name
    titled = bool(fig._suptitle and fig._suptitle.get_text()) or \
        any(ax.get_title() for ax in axes)
    assert titled, f"{name}: no title"
    labelled = [ax for ax in axes if ax.get_xlabel() or ax.get_ylabel()]
    assert labelled, f"{name}: no axis labels"
    units = " ".join(ax.get_xlabel() + " " + ax.get_ylabel() for ax in labelled)
    assert any(u in units for u in ("(GB/s", "(%)", "(ns", "(µs)", "(ms)", "threads",
                                    "node", "controller", "size", "(%")), (name, units)
    has_legend = bool(fig.legends) or any(ax.get_legend() for ax in axes) or \
        any(ax.images for ax in axes) or \
        any(all(t.get_text() for t in ax.get_yticklabels()) and ax.patches for ax in axes)
    # (heatmaps carry a colour bar; bar charts name each bar on their category axis)
    assert has_legend, f"{name}: no legend"
    colours = set()
    for ax in axes:
        for line in ax.get_lines():
            c = line.get_color()
            if isinstance(c, str) and c.startswith("#"):
                colours.add(c.upper())
        for patch in ax.patches:
            import matplotlib.colors as mc

            colours.add(mc.to_hex(patch.get_facecolor()).upper())
    palette = {c.upper() for c in PALETTE} | {"#FFFFFF", "#000000"}
    assert colours <= palette, f"{name}: colours outside the palette: {colours - palette}"


@pytest.mark.parametrize("which", ["cases", "threads", "sizes"])
def test_every_figure_is_readable(results, which):
    from numasim.report.data import load_sweep
    from numasim.report.plots import figures

    data = load_sweep(results[which])
    figs = dict(figures(data))
    assert set(figs) == {"throughput", "latency", "locality", "latency_cdf", "pages_per_node",
                         "bandwidth_timeline", "utilisation"}
    for name, fig in figs.items():
        _check_figure(fig, name)
    if which == "threads":
        ax = figs["throughput"].axes[0]
        assert ax.get_xlabel() == "threads"
        assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "2", "3"]
        assert len(ax.get_lines()) == 3  # one line per policy
        legend = [t.get_text() for t in figs["throughput"].legends[0].get_texts()]
        assert legend == ["first touch", "interleave", "bind 1"]
    elif which == "cases":
        ax = figs["throughput"].axes[0]
        labels = [t.get_text().replace("\n", " ") for t in ax.get_yticklabels()]
        assert labels == ["first touch", "interleave", "bind 1", "preferred 0"]
        # bars are the mean of the two repetitions, with their min-max as error bars
        df = data.df
        want = df[df["series"] == "first touch"]["bandwidth_GBps"].mean()
        widths = sorted(p.get_width() for p in ax.patches)
        assert any(abs(w - want) < 1e-9 for w in widths)
    else:
        ax = figs["throughput"].axes[0]
        assert ax.get_xlabel().startswith("size")
        assert [t.get_text() for t in ax.get_xticklabels()][:2] == ["1MiB", "2MiB"]


def test_plot_cli_writes_png_svg_pdf(results, tmp_path):
    out = tmp_path / "a"
    r = subprocess.run([sys.executable, "-m", "numasim", "plot",
                        str(results["threads"] / "results.csv"), "-o", str(out)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert f"plots: {out}/" in r.stdout
    names = {p.name for p in out.iterdir()}
    for stem in ("machine", "throughput", "latency", "locality", "latency_cdf",
                 "pages_per_node", "bandwidth_timeline", "utilisation"):
        assert {f"{stem}.png", f"{stem}.svg"} <= names, stem
    assert "report.pdf" in names
    for n in names:
        assert (out / n).read_bytes()[:4] in (b"\x89PNG", b"<?xm", b"%PDF"), n
    svg = (out / "throughput.svg").read_text()
    assert "<dc:date>" not in svg


def test_figures_are_the_same_bytes_twice(results, tmp_path):
    from numasim.report import style as S
    from numasim.report.data import load_sweep
    from numasim.report.plots import fig_locality, fig_throughput

    data = load_sweep(results["cases"])
    for fn in (fig_throughput, fig_locality):
        a = S.save(fn(data), tmp_path / "1", "f")
        b = S.save(fn(data), tmp_path / "2", "f")
        for x, y in zip(a, b, strict=True):
            assert x.read_bytes() == y.read_bytes(), x.name


def test_plot_cli_errors_are_one_paragraph(tmp_path):
    r = subprocess.run([sys.executable, "-m", "numasim", "plot", str(tmp_path / "nothing")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "no such results folder" in r.stderr
    (tmp_path / "empty").mkdir()
    r = subprocess.run([sys.executable, "-m", "numasim", "plot", str(tmp_path / "empty")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "not a sweep results folder" in r.stderr


def test_all_failed_sweep_has_nothing_to_plot(tmp_path, monkeypatch):
    from numasim.errors import NumasimError
    from numasim.report.plots import plot_results

    p = tmp_path / "e.yaml"
    p.write_text(FAKE_EXPERIMENT.replace("[1MiB, 2MiB, 3MiB, 4MiB, 5MiB, 6MiB]", "[3MiB]"))
    monkeypatch.setenv("NUMASIM_FAKE_FAIL_SIZE", str(3 << 20))
    run_sweep(load_experiment(p), tmp_path / "r", jobs=1, point_fn=fake_point, progress=False)
    with pytest.raises(NumasimError, match="every point of this sweep failed"):
        plot_results(tmp_path / "r", tmp_path / "plots")


def test_cli_modules_do_not_import_matplotlib():
    code = ("import sys, numasim, numasim.cli, numasim.cli.sweep, numasim.cli.plot, "
            "numasim.experiments.runner, numasim.experiments.schema, numasim.experiments.api; "
            "numasim.cli.build_parser(); "
            "bad = [m for m in ('matplotlib', 'dask', 'distributed') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr


def test_each_figure_is_laid_out_once(results, tmp_path, monkeypatch):
    """Constrained layout costs as much as drawing: PNG, SVG and the PDF page of a figure
    share one layout instead of computing it three times."""
    from matplotlib.layout_engine import ConstrainedLayoutEngine

    from numasim.report.plots import plot_results

    calls = []
    real = ConstrainedLayoutEngine.execute
    monkeypatch.setattr(ConstrainedLayoutEngine, "execute",
                        lambda self, fig: (calls.append(fig), real(self, fig))[1])
    files = plot_results(results["cases"], tmp_path / "p", ("png", "svg"), pdf=True)
    assert any(f.suffix == ".pdf" for f in files)
    laid_out = set(map(id, calls))
    assert len(calls) == len(laid_out), "a figure was laid out more than once"
    assert 5 <= len(laid_out) <= 7


def test_plot_shows_progress_and_the_font_cache_build(results, tmp_path):
    """A bar over the figures on stderr; on a computer where matplotlib has never run (a
    fresh MPLCONFIGDIR), the font-cache scan is a step of that bar, not a silent pause."""
    import os

    env = dict(os.environ, MPLCONFIGDIR=str(tmp_path / "mpl"))
    out = tmp_path / "a"
    r = subprocess.run([sys.executable, "-m", "numasim", "plot", str(results["cases"]),
                        "-o", str(out), "--no-pdf"],
                       capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr
    assert "font cache" in r.stderr and "figures" in r.stderr
    # the font cache, the machine, 10 figures (kernel_mm and the two tiering figures counted
    # even where they draw nothing)
    assert "12/12 figures" in r.stderr
    r = subprocess.run([sys.executable, "-m", "numasim", "plot", str(results["cases"]),
                        "-o", str(out), "--no-pdf"],
                       capture_output=True, text=True, timeout=300, env=env)
    assert "font cache" not in r.stderr and "11/11 figures" in r.stderr
    r = subprocess.run([sys.executable, "-m", "numasim", "plot", str(results["cases"]),
                        "-o", str(out), "--no-progress"],
                       capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0 and r.stderr == ""


def test_time_unit_is_chosen_from_the_range():
    from numasim.report.style import time_unit

    assert time_unit(900) == ("ns", 1.0)
    assert time_unit(1500) == ("ns", 1.0)
    assert time_unit(8e3) == ("µs", 1e3)
    assert time_unit(1.9e6) == ("µs", 1e3)
    assert time_unit(8e6) == ("ms", 1e6)
    assert time_unit(3e9) == ("s", 1e9)


def test_timeline_panels_share_one_time_unit(results):
    """A short run (µs) and a long one (ms) in the same figure: one unit for both."""
    from numasim.report.data import load_sweep
    from numasim.report.plots import fig_timeline

    data = load_sweep(results["cases"])
    keys = [data.one_run(s)[0] for s in data.series]
    data.result(keys[0])["timeline"]["interval_ns"] = 1e6  # 8 intervals: 8 ms
    data.result(keys[1])["timeline"]["interval_ns"] = 1e3  # 8 µs
    fig = fig_timeline(data)
    labels = {ax.get_xlabel() for ax in fig.axes if ax.get_visible() and ax.get_xlabel()}
    assert labels == {"simulated time (ms)"}


def test_utilisation_per_phase_beside_the_whole_run(results):
    from numasim.report.data import load_sweep
    from numasim.report.plots import fig_utilisation

    data = load_sweep(results["cases"])
    for key in {data.one_run(s)[0] for s in data.series}:
        init, run = data.result(key)["phases"]
        init["resources"] = {"mc 0": {"GBps": 1.0, "utilisation": 0.9}}
        run["resources"] = {"mc 1": {"GBps": 1.0, "utilisation": 0.25}}
    fig = fig_utilisation(data)
    ax = fig.axes[0]
    labels = [t.get_text().replace("\n", " ") for t in ax.get_yticklabels()]
    assert labels[:3] == ["first touch · whole run", "first touch · init (not measured)",
                          "first touch · run"]
    mat = ax.images[0].get_array()
    names = [t.get_text() for t in ax.get_xticklabels()]
    c0, c1 = names.index("controller 0"), names.index("controller 1")
    assert (mat[1, c0], mat[1, c1]) == (90.0, 0.0)  # the init row: that phase alone
    assert (mat[2, c0], mat[2, c1]) == (0.0, 25.0)
    assert "per phase" in fig._suptitle.get_text()
