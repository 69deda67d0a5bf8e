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
