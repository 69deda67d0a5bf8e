"""A picture of a machine: nodes as boxes, edges labelled with distance, latency or bandwidth.

Left panel: one box per node (id, memory kind and size, CPU list), laid out on a grid in id
order -- two rows for up to eight nodes, which puts the sockets of the usual two-socket and
SNC machines in rows and draws a four-socket square as a square.  Edges join every CPU node to
every memory node and are coloured by the chosen metric; interconnect links, when the machine
has them, are drawn underneath as thick grey bands.  Right panel: the whole matrix as a
heatmap with its numbers, so machines with many nodes stay readable (edge labels are written
only while there are few enough edges to read them).

Colours are from the Okabe-Ito and cividis palettes, both readable with colour-blindness;
CPU-less and memoryless nodes also differ by hatching, not only by colour.
"""

from __future__ import annotations

import math
import os
import textwrap
from pathlib import Path

from numasim.bitmap import format_list
from numasim.errors import NumasimError
from numasim.topology.model import Machine
from numasim.units import human_bytes

METRICS = ("distance", "latency", "bandwidth")
FORMATS = (".png", ".svg", ".pdf")
MAX_LABELLED_EDGES = 12
MAX_EDGE_NODES = 8

# Okabe-Ito colours (colour-blind safe), lightened for box backgrounds
CPU_MEM_COLOUR = "#cde8f8"  # sky blue
CPU_MEM_EDGE = "#0072B2"
MEM_ONLY_COLOUR = "#fbe3b0"  # orange
MEM_ONLY_EDGE = "#D55E00"
CPU_ONLY_COLOUR = "#eeeeee"
CPU_ONLY_EDGE = "#555555"
HATCH_COLOUR = {"//": "#efb760", "..": "#aaaaaa"}
LINK_COLOUR = "#999999"
CMAP = "cividis"
EDGE_RANGE = 0.8  # edges use the darker 80% of the colour map: pale yellow vanishes on white


def _matrix(machine: Machine, metric: str) -> tuple[list[list[float]], str, str]:
    """(matrix, title, unit) of a metric."""
    if metric == "distance":
        return [list(map(float, r)) for r in machine.distance], "distance (SLIT)", ""
    if metric == "latency":
        return [list(r) for r in machine.latency_ns], "idle latency", "ns"
    return [list(r) for r in machine.bandwidth_GBps], "read bandwidth", "GB/s"


def _fmt(v: float) -> str:
    """Short for a label: whole numbers as they are, else 4 significant digits."""
    if v == int(v) and abs(v) < 1e6:
        return str(int(v))
    return f"{v:.0f}" if abs(v) >= 1000 else f"{v:.4g}"


def _cpu_lines(cpus: tuple[int, ...], width: int, max_lines: int = 3) -> list[str]:
    if not cpus:
        return ["no CPUs"]
    text = format_list(cpus)
    lines = textwrap.wrap(text.replace(",", ", "), width=width, break_long_words=True)
    lines = [ln.replace(", ", ",") for ln in lines]
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        lines[-1] = lines[-1].rstrip(",") + ",…"
    head = f"{len(cpus)} CPU" + ("s" if len(cpus) != 1 else "")
    return [head + ": " + lines[0]] + lines[1:] if len(head) + len(lines[0]) <= width + 4 \
        else [head] + lines


def _node_lines(node, metric: str, local: float, unit: str, width_chars: int) -> list[str]:
    """The lines of a node's box: id, memory, CPUs, local latency or bandwidth."""
    mem = human_bytes(node.mem_bytes) if node.has_memory else "no memory"
    lines = [f"node {node.id}", f"{node.kind.value} {mem}" if node.has_memory else mem]
    lines += _cpu_lines(node.cpus, width_chars)
    if metric != "distance" and node.has_cpus and node.has_memory:
        lines.append(f"local {_fmt(local)} {unit}")
    return lines


def _layout(n: int) -> tuple[list[tuple[float, float]], int, int]:
    """Grid positions in id order: one row up to 3 nodes, two rows up to 8, then square."""
    if n <= 3:
        cols, rows = n, 1
    elif n <= 8:
        cols, rows = math.ceil(n / 2), 2
    else:
        cols = math.ceil(math.sqrt(n))
        rows = math.ceil(n / cols)
    pos = [(float(k % cols), float(rows - 1 - k // cols)) for k in range(n)]
    return pos, cols, rows


def _edge_geometry(p, q, cols_apart: int, rows_apart: int):
    """Connection style and label point of an edge; edges that would run through another
    node's box are bent."""
    (x0, y0), (x1, y1) = p, q
    bend = 0.0
    if rows_apart == 0 and cols_apart > 1:
        bend = 0.35 if cols_apart % 2 else 0.3
    elif cols_apart == 0 and rows_apart > 1:
        bend = 0.35
    mx, my = (x0 + x1) / 2, (y0 + y1) / 2
    if bend:
        # arc3: the control point is the midpoint moved by bend * length, perpendicular
        dx, dy = x1 - x0, y1 - y0
        cx, cy = mx + bend * dy, my - bend * dx
        lx, ly = 0.25 * x0 + 0.5 * cx + 0.25 * x1, 0.25 * y0 + 0.5 * cy + 0.25 * y1
        return f"arc3,rad={bend}", (lx, ly)
    if cols_apart and rows_apart:  # diagonals cross in the middle: label them off-centre
        t = 0.3
        return "arc3,rad=0", (x0 + t * (x1 - x0), y0 + t * (y1 - y0))
    return "arc3,rad=0", (mx, my)


def draw_machine(machine: Machine, path: str | os.PathLike, metric: str = "distance", *,
                 title: str | None = None, dpi: int = 150) -> Path:
    """Draw ``machine`` to ``path`` (.png, .svg or .pdf, chosen by the extension).

    ``metric`` is what labels and colours the edges and the heatmap: ``distance`` (the
    SLIT), ``latency`` (idle, ns) or ``bandwidth`` (GB/s).  Matrices read row = CPU node,
    column = memory node; entries no access can use (rows of CPU-less nodes, columns of
    memoryless ones) are left blank.  Returns the path written.
    """
    out = Path(path)
    if out.suffix.lower() not in FORMATS:
        raise NumasimError(f"cannot tell the picture format of {str(out)!r}", field="path",
                           hint="give a file name ending in " + ", ".join(FORMATS))
    fig = machine_figure(machine, metric, title=title, dpi=dpi)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_machine_figure(fig, out, dpi=dpi)
    return out


def save_machine_figure(fig, out: Path, dpi: int = 150) -> None:
    """Write a :func:`machine_figure` to ``out`` (format from the suffix), with no dates in
    the file, so the same machine gives the same bytes."""
    fmt = out.suffix.lower().lstrip(".")
    metadata = {"svg": {"Date": None}, "pdf": {"CreationDate": None}}.get(fmt)
    fig.savefig(out, dpi=dpi, format=fmt, metadata=metadata)


def machine_figure(machine: Machine, metric: str = "distance", *, title: str | None = None,
                   dpi: int = 150):
    """The picture :func:`draw_machine` writes, as a matplotlib Figure: built once, it can
    be saved in several formats and put on a PDF page without being drawn again."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import colormaps
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure
    from matplotlib.patches import FancyArrowPatch

    if metric not in METRICS:
        raise NumasimError(f"unknown metric {metric!r}", field="metric",
                           hint="valid: " + ", ".join(METRICS))

    nodes = machine.nodes
    n = len(nodes)
    ids = machine.node_ids
    matrix, mtitle, unit = _matrix(machine, metric)
    derived = metric in machine.derived
    pos, cols, rows = _layout(n)

    # which entries an access can use
    def usable(i: int, j: int) -> bool:
        if metric == "distance":
            return True
        return nodes[i].has_cpus and nodes[j].has_memory

    pairs = []
    if n <= MAX_EDGE_NODES:  # beyond that the edges are a hairball: the matrix says it all
        for i in range(n):
            for j in range(i + 1, n):
                if usable(i, j) or usable(j, i):
                    pairs.append((i, j))
    label_edges = len(pairs) <= MAX_LABELLED_EDGES
    values = [matrix[i][j] for i in range(n) for j in range(n) if usable(i, j)]
    lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
    norm = Normalize(vmin=lo, vmax=hi if hi > lo else lo + 1)
    cmap = colormaps[CMAP]
    if metric != "bandwidth":  # dark = far or slow, for every metric
        cmap = cmap.reversed()

    def edge_colour(v: float):
        """Edges skip the palest end of the map (near/fast), which vanishes on white."""
        x = float(norm(v))
        return cmap(x * EDGE_RANGE if metric == "bandwidth" else 1 - EDGE_RANGE * (1 - x))

    width_chars = 19 if n <= 8 else 15
    texts = [_node_lines(node, metric, matrix[k][k], unit, width_chars)
             for k, node in enumerate(nodes)]
    graph_w = max(5.0, 2.9 * cols if cols <= 2 else 2.45 * cols)
    heat_w = 5.2 if n <= 8 else 6.5
    # rows further apart for boxes taller than four lines, so that the edges running
    # diagonally between the rows pass the corners of the boxes they do not join
    tall = max((len(t) for t in texts), default=0) - 4
    height = max(4.8, 2.1 * rows + 2.4 + (1.4 * tall * (rows - 1) if pairs and tall > 0
                                          else 0.0))
    fig = Figure(figsize=(graph_w + heat_w, height), dpi=dpi, layout=None)
    gx = graph_w / (graph_w + heat_w)
    ax = fig.add_axes((0.01, 0.12, gx - 0.02, 0.72))
    ax.set_xlim(-0.62, cols - 0.38)
    ax.set_ylim(-0.6, rows - 0.4)
    ax.set_aspect("auto")
    ax.axis("off")

    font = 9 if n <= 4 else 8 if n <= 8 else 6

    # interconnect links, under everything
    for ln in machine.links:
        if ln.a in ids and ln.b in ids:
            ia, ib = machine.index_of(ln.a), machine.index_of(ln.b)
            ca, ra = ia % cols, ia // cols
            cb, rb = ib % cols, ib // cols
            style, _ = _edge_geometry(pos[ia], pos[ib], abs(ca - cb), abs(ra - rb))
            ax.add_patch(FancyArrowPatch(pos[ia], pos[ib], connectionstyle=style,
                                         arrowstyle="-", lw=9, color=LINK_COLOUR, alpha=0.45,
                                         zorder=1, shrinkA=0, shrinkB=0))

    # edges between nodes
    for i, j in pairs:
        ci, ri, cj, rj = i % cols, i // cols, j % cols, j // cols
        style, (lx, ly) = _edge_geometry(pos[i], pos[j], abs(ci - cj), abs(ri - rj))
        fwd, back = usable(i, j), usable(j, i)
        shown = [matrix[i][j]] if fwd else []
        shown += [matrix[j][i]] if back else []
        colour = edge_colour(sum(shown) / len(shown))
        ax.add_patch(FancyArrowPatch(pos[i], pos[j], connectionstyle=style, arrowstyle="-",
                                     lw=2.2 if label_edges else 1.4, color=colour,
                                     alpha=0.95 if label_edges else 0.7, zorder=2,
                                     shrinkA=0, shrinkB=0))
        if not label_edges:
            continue
        if fwd and back and matrix[i][j] != matrix[j][i]:
            text = f"{_fmt(matrix[i][j])} / {_fmt(matrix[j][i])}"
        else:
            text = _fmt(shown[0])
        ax.text(lx, ly, text, ha="center", va="center", fontsize=font, zorder=5,
                bbox=dict(boxstyle="round,pad=0.2", fc="white", ec=colour, lw=1))

    # node boxes
    for k, node in enumerate(nodes):
        x, y = pos[k]
        lines = texts[k]
        if node.has_cpus and node.has_memory:
            fc, ec, hatch = CPU_MEM_COLOUR, CPU_MEM_EDGE, None
        elif node.has_memory:
            fc, ec, hatch = MEM_ONLY_COLOUR, MEM_ONLY_EDGE, "//"
        elif node.has_cpus:
            fc, ec, hatch = CPU_ONLY_COLOUR, CPU_ONLY_EDGE, ".."
        else:
            fc, ec, hatch = "white", CPU_ONLY_EDGE, None
        t = ax.text(x, y, "\n".join(lines), ha="center", va="center", fontsize=font,
                    zorder=4, linespacing=1.3,
                    bbox=dict(boxstyle="round,pad=0.55", fc=fc, ec=ec, lw=1.6, hatch=hatch,
                              ls="-" if node.has_cpus or node.has_memory else "--"))
        box = t.get_bbox_patch()
        if hatch and hasattr(box, "set_hatchcolor"):  # matplotlib >= 3.10: a paler hatch
            box.set_hatchcolor(HATCH_COLOUR[hatch])

    if not pairs:
        edge_note = ""
    elif label_edges:
        edge_note = "edge: SLIT distance" if metric == "distance" else \
            f"edge: {mtitle} ({unit}); 'a / b' = low id→high id / back"
    else:
        edge_note = f"edge colour: {mtitle} (numbers in the matrix)"
    _legend(fig, machine, edge_note, cmap(0.5))

    _matrix_panel(fig, machine, metric, matrix, (gx + 0.05 * (1 - gx), (1 - gx) * 0.72),
                  cmap, norm, mtitle + (f" ({unit})" if unit else "")
                  + (" — derived" if derived else ""))

    # titles
    total = human_bytes(machine.total_mem_bytes)
    head = title or (f"{machine.name}: {n} node{'s' if n != 1 else ''}, "
                     f"{len(machine.cpus)} CPUs, {total}")
    fig.text(0.01, 0.975, head, fontsize=13, fontweight="bold", va="top")
    description = getattr(machine, "description", "")
    if description:
        wrapped = textwrap.fill(description, width=int((graph_w + heat_w) * 14))
        fig.text(0.01, 0.915, wrapped, fontsize=8.5, va="top", color="#333333")

    return fig


def _legend(fig, machine: Machine, edge_note: str, edge_colour) -> None:
    """Which kinds of node the boxes are, the link bands, what the edges say."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles = []
    kinds = {(nd.has_cpus, nd.has_memory) for nd in machine.nodes}
    if (True, True) in kinds:
        handles.append(Patch(fc=CPU_MEM_COLOUR, ec=CPU_MEM_EDGE, label="CPUs + memory"))
    if (False, True) in kinds:
        handles.append(Patch(fc=MEM_ONLY_COLOUR, ec=MEM_ONLY_EDGE, hatch="//",
                             label="memory only (CPU-less node)"))
    if (True, False) in kinds:
        handles.append(Patch(fc=CPU_ONLY_COLOUR, ec=CPU_ONLY_EDGE, hatch="..",
                             label="CPUs only (memoryless node)"))
    if (False, False) in kinds:
        handles.append(Patch(fc="white", ec=CPU_ONLY_EDGE, ls="--",
                             label="no CPUs, no memory"))
    if machine.links:
        handles.append(Line2D([], [], color=LINK_COLOUR, lw=6, alpha=0.45,
                              label="interconnect link"))
    if edge_note:
        handles.append(Line2D([], [], color=edge_colour, lw=2, label=edge_note))
    fig.legend(handles=handles, loc="lower left", bbox_to_anchor=(0.01, 0.0),
               fontsize=8, frameon=False, ncol=2 if len(handles) > 2 else len(handles))


def _matrix_panel(fig, machine: Machine, metric: str, matrix: list[list[float]],
                  place: tuple[float, float], cmap, norm, title: str) -> None:
    """The right panel: the metric as a heatmap with its numbers.  For latency and bandwidth
    only rows of CPU nodes and columns of memory nodes, the entries an access can use."""
    nodes, ids, n = machine.nodes, machine.node_ids, len(machine.nodes)
    if metric == "distance":
        rows_k = cols_k = list(range(n))
    else:
        rows_k = [k for k in range(n) if nodes[k].has_cpus]
        cols_k = [k for k in range(n) if nodes[k].has_memory]
    hax = fig.add_axes((place[0], 0.16, place[1], 0.62))
    shown_matrix = [[matrix[i][j] for j in cols_k] for i in rows_k]
    im = hax.imshow(shown_matrix, cmap=cmap, norm=norm, aspect="equal")
    hax.set_xticks(range(len(cols_k)), [str(ids[j]) for j in cols_k], fontsize=8)
    hax.set_yticks(range(len(rows_k)), [str(ids[i]) for i in rows_k], fontsize=8)
    hax.set_xlabel("memory node", fontsize=9)
    hax.set_ylabel("CPU node" if metric != "distance" else "node", fontsize=9)
    hax.tick_params(length=0)
    hax.grid(False)  # a grid over the cells hides their numbers (sweep figures turn it on)
    if max(len(rows_k), len(cols_k)) <= 12:
        cell_font = 8 if len(cols_k) <= 6 else 6.5
        for a, i in enumerate(rows_k):
            for b, j in enumerate(cols_k):
                v = matrix[i][j]
                r, g, bl, _ = cmap(norm(v))
                dark = 0.299 * r + 0.587 * g + 0.114 * bl < 0.5
                hax.text(b, a, _fmt(v), ha="center", va="center", fontsize=cell_font,
                         color="white" if dark else "black")
    hax.set_title(title, fontsize=10)
    shrink = 0.9 * min(1.0, len(rows_k) / max(len(cols_k), 1))  # follow the image height
    bar = fig.colorbar(im, ax=hax, fraction=0.05, pad=0.04, shrink=shrink)
    bar.ax.tick_params(labelsize=7)


__all__ = ["draw_machine", "machine_figure", "METRICS"]
