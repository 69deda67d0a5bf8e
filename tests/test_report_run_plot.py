"""RunResult.plot(): one run in four panels, written to a file when asked."""

from __future__ import annotations

import pytest

import numasim


@pytest.fixture(scope="module")
def result():
    return numasim.run("clx-2s", "stream", threads=4, size="1MiB", seed=3,
                       numactl="--interleave=all")


def test_run_plot_has_four_labelled_panels(result, tmp_path):
    fig = result.plot(tmp_path / "run.png")
    assert (tmp_path / "run.png").read_bytes()[:4] == b"\x89PNG"
    axes = fig.axes
    assert len(axes) == 4
    titles = [ax.get_title() for ax in axes]
    assert titles == ["Pages per node, per region", "Memory-access latency (CDF)",
                      "Bandwidth of each memory node over time",
                      "Memory-controller and link utilisation"]
    assert all(ax.get_ylabel() for ax in axes)
    assert "clx-2s" in fig._suptitle.get_text()
    # pages per node: interleave puts half of each region on each node
    bars = [p.get_height() for p in axes[0].patches]
    assert len(bars) == 6 and bars[0] == bars[3]


def test_run_plot_svg_and_bad_suffix(result, tmp_path):
    result.plot(tmp_path / "run.svg")
    assert (tmp_path / "run.svg").read_text().startswith("<?xml")
    from numasim.errors import NumasimError

    with pytest.raises(NumasimError, match="picture format"):
        result.plot(tmp_path / "run.gif")
