"""Machine drawings: every shipped machine draws to PNG and SVG with its nodes and numbers."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from numasim.errors import NumasimError
from numasim.topology.build import make_machine
from numasim.topology.draw import draw_machine
from numasim.topology.loaders import yaml_machine
from numasim.topology.model import MemKind, Node

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "machines"
FILES = sorted(CONFIGS.glob("*.yaml"))
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_shipped_machine_draws_png_and_svg(path, tmp_path):
    m = yaml_machine.load(path)
    png = draw_machine(m, tmp_path / "m.png", metric="distance")
    assert png == tmp_path / "m.png"
    data = png.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 20_000
    svg = draw_machine(m, tmp_path / "m.svg", metric="bandwidth")
    text = svg.read_text()
    assert text.lstrip().startswith("<?xml") and "</svg>" in text
    assert len(text) > 20_000


def test_every_metric_and_pdf(tmp_path):
    m = yaml_machine.load(CONFIGS / "cxl-1s.yaml")
    for metric in ("distance", "latency", "bandwidth"):
        out = draw_machine(m, tmp_path / f"{metric}.png", metric=metric)
        assert out.stat().st_size > 10_000
    pdf = draw_machine(m, tmp_path / "sub" / "m.pdf")  # creates the folder
    assert pdf.read_bytes().startswith(b"%PDF")


def test_svg_is_reproducible(tmp_path):
    m = yaml_machine.load(CONFIGS / "opteron-4s-2004.yaml")
    a = draw_machine(m, tmp_path / "a.svg", metric="latency").read_text()
    b = draw_machine(m, tmp_path / "b.svg", metric="latency").read_text()
    strip = re.compile(r'id="[^"]*"|xlink:href="[^"]*"|url\(#[^)]*\)')
    assert strip.sub("", a) == strip.sub("", b)


def test_metrics_give_different_pictures(tmp_path):
    m = yaml_machine.load(CONFIGS / "clx-2s.yaml")
    a = draw_machine(m, tmp_path / "d.png", metric="distance").read_bytes()
    b = draw_machine(m, tmp_path / "l.png", metric="latency").read_bytes()
    assert a != b


def test_many_nodes_use_the_matrix_not_labels(tmp_path):
    nodes = [Node(i, cpus=(2 * i, 2 * i + 1) if i % 3 else (), mem_bytes=(1 << 30) * (i % 4),
                  kind=MemKind.DRAM if i % 3 else MemKind.HBM) for i in range(24)]
    dist = [[10 if i == j else 20 + abs(i - j) for j in range(24)] for i in range(24)]
    m = make_machine("big", nodes, distance=dist)
    for metric in ("distance", "latency"):
        out = draw_machine(m, tmp_path / f"big-{metric}.png", metric=metric)
        assert out.read_bytes().startswith(PNG_MAGIC)


def test_single_node_machine(tmp_path):
    m = make_machine("one", [Node(0, cpus=(0,), mem_bytes=1 << 30)])
    assert draw_machine(m, tmp_path / "one.svg", metric="latency").stat().st_size > 5_000


def test_bad_metric_and_extension(tmp_path):
    m = make_machine("one", [Node(0, cpus=(0,), mem_bytes=1 << 30)])
    with pytest.raises(NumasimError) as e:
        draw_machine(m, tmp_path / "x.png", metric="hops")
    assert "valid: distance, latency, bandwidth" in str(e.value)
    with pytest.raises(NumasimError) as e:
        draw_machine(m, tmp_path / "x.jpeg")
    assert ".png" in str(e.value)
    assert not (tmp_path / "x.jpeg").exists()


def test_drawing_does_not_need_pyplot(tmp_path):
    import subprocess
    import sys

    code = ("import sys; from numasim.topology.loaders import yaml_machine;"
            "from numasim.topology.draw import draw_machine;"
            f"m = yaml_machine.load({str(CONFIGS / 'clx-2s.yaml')!r});"
            f"draw_machine(m, {str(tmp_path / 'x.png')!r});"
            "print('matplotlib.pyplot' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).resolve().parents[1])
    assert out.stdout.strip() == "False"


def _round_robin(n: int) -> str:
    """n nodes whose CPUs are numbered round-robin: long CPU lists, the tallest boxes."""
    nodes = "\n".join(f"  - {{id: {k}, cpus: '{','.join(str(k + n * i) for i in range(16))}',"
                      f" memory: 16GiB}}" for k in range(n))
    return f"name: rr{n}\nnodes:\n{nodes}\n"


def _edge_clearance(machine, metric: str) -> float:
    """The smallest distance (points) between an edge and the box of a node it does not
    join, the edge's half line width taken off; negative when an edge crosses a box."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.patches import FancyArrowPatch

    from numasim.topology.draw import machine_figure

    fig = machine_figure(machine, metric)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    ax = fig.axes[0]
    boxes = {int(t.get_text().split()[1]): t.get_bbox_patch().get_window_extent(renderer)
             for t in ax.texts if t.get_text().startswith("node ")}
    px = fig.dpi / 72
    worst = float("inf")
    for p in ax.patches:
        if not isinstance(p, FancyArrowPatch):
            continue
        polys = p.get_transform().transform_path(p.get_path()).to_polygons(closed_only=False)
        pts = np.concatenate([np.linspace(a, b, 25) for poly in polys
                              for a, b in zip(poly[:-1], poly[1:], strict=True)])
        ends = {k for k, b in boxes.items()
                if b.contains(*pts[0]) or b.contains(*pts[-1])}
        for k, b in boxes.items():
            if k in ends:
                continue
            dx = np.maximum(np.maximum(b.x0 - pts[:, 0], pts[:, 0] - b.x1), 0)
            dy = np.maximum(np.maximum(b.y0 - pts[:, 1], pts[:, 1] - b.y1), 0)
            inside = (dx == 0) & (dy == 0)
            gap = -1.0 if inside.any() else float(np.hypot(dx, dy).min()) / px
            worst = min(worst, gap - p.get_linewidth() / 2)
    return worst


@pytest.mark.parametrize("name", ["epyc-8n-nps4", "oracle-8node", "oracle-8node-2socket",
                                  "knl-snc4-flat", "gnr-6n-snc3", "rr5", "rr7", "rr8"])
def test_edges_keep_clear_of_other_nodes_boxes(name):
    """Full meshes of 5 to 8 nodes (the shipped ones, and nodes with three-line CPU lists):
    no edge or link band runs across the box of a node it does not join."""
    from numasim.topology.loaders import load_machine

    if name.startswith("rr"):
        machine = yaml_machine.loads(_round_robin(int(name[2:])), file=f"{name}.yaml")
    else:
        machine = load_machine(name)
    for metric in ("distance", "latency"):
        assert _edge_clearance(machine, metric) >= 1.0, (name, metric)
