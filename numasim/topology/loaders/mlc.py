"""Intel Memory Latency Checker output: the tables a user calibrates a machine from.

``numasim topo import-mlc`` reads a file of MLC text (one run of plain ``mlc``, or the output
of several commands pasted together) and finds, wherever they are:

* ``--latency_matrix`` ("Measuring idle latencies (in ns)": a ``Numa node`` header row of
  node ids, then one row per CPU node) -> the machine's ``latency`` matrix;
* ``--bandwidth_matrix`` ("Measuring Memory Bandwidths between nodes", MB/s) -> its
  ``bandwidth`` matrix (and each node's controller bandwidth, the diagonal);
* ``--loaded_latency`` ("Measuring Loaded Latencies": rows ``inject delay, latency (ns),
  bandwidth (MB/s)`` under a ``=====`` rule) -> a ``curve`` controller model
  (:func:`curve_points`);
* ``--peak_injection_bandwidth`` ("Measuring Peak Injection Memory Bandwidths") or
  ``--max_bandwidth`` ("Measuring Maximum Memory Bandwidths"): one bandwidth per read/write
  mix (``ALL Reads``, ``3:1 Reads-Writes``...) -> the ``curve`` model's ``mix`` table
  (:func:`mix_points`; peak injection preferred when both are present).

MLC's ``--loaded_latency`` tables are read-only traffic (its default); a run with another
mix (``-W2``...) prints the same table and nothing numasim can tell it by, so the curve is
always taken as the read-only one.

Lines may carry leading indentation (output pasted into documentation).  MB/s are MLC's
10^6 bytes/s.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from numasim.errors import NumasimError

_LAT = re.compile(r"Measuring idle latencies", re.I)
_BW = re.compile(r"Measuring Memory Bandwidths between nodes", re.I)
_LOADED = re.compile(r"Measuring Loaded Latencies", re.I)
_RULE = re.compile(r"^\s*={5,}\s*$")
_NUM = r"[-+]?\d+(?:\.\d+)?"
_LOADED_ROW = re.compile(rf"^\s*(\d+)\s+({_NUM})\s+({_NUM})\s*$")
_HEADER = re.compile(r"^\s*Numa node((?:\s+\d+)+)\s*$", re.I)
_MATRIX_ROW = re.compile(rf"^\s*(\d+)((?:\s+(?:{_NUM}|-))+)\s*$")
_PEAK = re.compile(r"Measuring (Peak Injection|Maximum) Memory Bandwidths", re.I)
_MIX_ROW = re.compile(rf"^\s*(ALL Reads|(\d+):(\d+) Reads-Writes)\s*:\s*({_NUM})\s*$", re.I)

LOADED_HINT = ("a --loaded_latency table is a 'Measuring Loaded Latencies' line, a '=====' "
               "rule and rows of three numbers: inject delay, latency in ns, bandwidth in MB/s "
               "(e.g. ' 00000  233.86   243421.9')")
MATRIX_HINT = ("a matrix is a 'Numa node  0  1 ...' header and one row per node: the node id, "
               "then one number per column (e.g. '       0    81.2   130.2')")


@dataclass
class MlcRun:
    """What one MLC text held (each part None when absent)."""

    file: str
    latency_ns: list[list[float]] | None = None
    latency_nodes: list[int] | None = None
    bandwidth_MBps: list[list[float]] | None = None
    bandwidth_nodes: list[int] | None = None
    loaded: list[tuple[int, float, float]] = field(default_factory=list)
    """(inject delay, latency ns, bandwidth MB/s) rows, in file order."""
    loaded_line: int = 0
    mix: list[tuple[float, float]] = field(default_factory=list)
    """(read fraction, MB/s) of MLC's read/write mixes, ALL Reads first."""
    mix_kind: str = ""
    """"peak injection" or "maximum": which MLC command the mix table came from."""


def _error(file: str, line: int, what: str, hint: str) -> NumasimError:
    return NumasimError(what, file=file, line=line, hint=hint)


def _matrix(lines: list[str], start: int, file: str, what: str
            ) -> tuple[list[int], list[list[float]]]:
    """The matrix after line ``start`` (its header within 4 lines)."""
    k = start + 1
    while k < len(lines) and k <= start + 4 and not _HEADER.match(lines[k]):
        k += 1
    if k >= len(lines) or not _HEADER.match(lines[k]):
        raise _error(file, start + 1, f"the {what} has no 'Numa node 0 1 ...' header within "
                     "4 lines", MATRIX_HINT)
    cols = [int(x) for x in _HEADER.match(lines[k]).group(1).split()]
    rows: list[list[float]] = []
    ids: list[int] = []
    k += 1
    while k < len(lines):
        m = _MATRIX_ROW.match(lines[k])
        if not m:
            break
        vals = m.group(2).split()
        if len(vals) != len(cols):
            names = ", ".join(map(str, cols))
            raise _error(file, k + 1, f"row of node {m.group(1)} of the {what} has "
                         f"{len(vals)} values for {len(cols)} columns ({names})", MATRIX_HINT)
        if "-" in vals:
            raise _error(file, k + 1, f"the {what} has an empty entry ('-') in the row of "
                         f"node {m.group(1)}", MATRIX_HINT)
        ids.append(int(m.group(1)))
        rows.append([float(v) for v in vals])
        k += 1
    if ids != cols:
        raise _error(file, k + 1, f"the {what} has rows for nodes {ids} and columns for nodes "
                     f"{cols}; a matrix needs one row per column", MATRIX_HINT)
    return ids, rows


def _loaded(lines: list[str], start: int, file: str) -> tuple[list[tuple[int, float, float]],
                                                              int]:
    k = start + 1
    while k < len(lines) and k <= start + 8 and not _RULE.match(lines[k]):
        k += 1
    if k >= len(lines) or not _RULE.match(lines[k]):
        raise _error(file, start + 1, "the loaded-latency table has no '=====' rule under "
                     "its 'Inject Latency Bandwidth' header within 8 lines", LOADED_HINT)
    rows = []
    first = k + 2
    k += 1
    while k < len(lines) and lines[k].strip():
        m = _LOADED_ROW.match(lines[k])
        if not m:
            raise _error(file, k + 1, f"line {lines[k].strip()!r} of the loaded-latency "
                         "table is not three numbers", LOADED_HINT)
        d, lat, bw = int(m.group(1)), float(m.group(2)), float(m.group(3))
        if lat <= 0 or bw <= 0:
            raise _error(file, k + 1, f"latency {lat} ns and bandwidth {bw} MB/s must be "
                         "positive", LOADED_HINT)
        rows.append((d, lat, bw))
        k += 1
    if len(rows) < 2:
        raise _error(file, first, f"the loaded-latency table has {len(rows)} row(s); a curve "
                     "needs at least 2", LOADED_HINT)
    return rows, first


def _mix(lines: list[str], start: int) -> list[tuple[float, float]]:
    """The ``ALL Reads`` / ``R:W Reads-Writes`` rows within 12 lines after ``start`` (the
    ``Stream-triad like`` row is left out: its mix depends on the CPU's store handling)."""
    out: list[tuple[float, float]] = []
    for ln in lines[start + 1:start + 13]:
        m = _MIX_ROW.match(ln)
        if not m:
            continue
        rf = 1.0 if m.group(2) is None else int(m.group(2)) / (int(m.group(2)) +
                                                                int(m.group(3)))
        out.append((rf, float(m.group(4))))
    return out


def mix_points(mix: list[tuple[float, float]]) -> tuple[tuple[float, float], ...]:
    """A ``curve`` model's ``mix`` table from MLC's mix bandwidths: (read fraction, bandwidth
    / ALL Reads' bandwidth), read fractions descending, 4 digits."""
    top = dict(mix).get(1.0) or max(bw for _, bw in mix)
    pts = sorted({round(rf, 4): round(bw / top, 4) for rf, bw in mix}.items(), reverse=True)
    return tuple((rf, min(1.0, f)) for rf, f in pts)


def parse_text(text: str, file: str = "<mlc>") -> MlcRun:
    """Every MLC table in ``text``; :class:`NumasimError` (file and line) for a table that
    starts and is not what MLC writes, or for a text with no table at all."""
    lines = text.splitlines()
    run = MlcRun(file=file)
    for i, ln in enumerate(lines):
        if _LAT.search(ln):
            run.latency_nodes, run.latency_ns = _matrix(lines, i, file,
                                                        "idle latency matrix")
        elif _BW.search(ln):
            run.bandwidth_nodes, run.bandwidth_MBps = _matrix(lines, i, file,
                                                              "bandwidth matrix")
        elif _LOADED.search(ln):
            run.loaded, run.loaded_line = _loaded(lines, i, file)
        elif (m := _PEAK.search(ln)) and (run.mix_kind != "peak injection"):
            rows = _mix(lines, i)
            if rows and any(rf == 1.0 for rf, _ in rows) and all(bw > 0 for _, bw in rows):
                run.mix, run.mix_kind = rows, m.group(1).lower()
    if run.latency_ns is None and run.bandwidth_MBps is None and not run.loaded:
        raise NumasimError("no MLC table found", file=file, hint=(
            "numasim reads the text Intel MLC prints: 'mlc --latency_matrix' ('Measuring idle "
            "latencies'), 'mlc --bandwidth_matrix' ('Measuring Memory Bandwidths between "
            "nodes'), 'mlc --loaded_latency' ('Measuring Loaded Latencies'), or a plain "
            "'mlc' run holding all three"))
    return run


def parse_file(path: str | Path) -> MlcRun:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8", errors="replace")
    except OSError as e:
        raise NumasimError(f"cannot read the MLC file: {e.strerror}", file=str(path),
                           hint="give the path of a text file holding MLC's output") from None
    return parse_text(text, str(path))


def curve_points(loaded: list[tuple[int, float, float]], file: str = "<mlc>", line: int = 0,
                 ) -> tuple[tuple[float, float], ...]:
    """A ``curve`` model's points from a loaded-latency table.

    Utilisation = bandwidth / the table's highest bandwidth (MLC's delay-0 rows saturate
    memory, so the peak is 100 % of the controllers); extra latency = latency - the latency
    at the lightest load (the idle latency under MLC's own traffic).  Sorted by utilisation,
    made non-decreasing (a running maximum: MLC's rows near the peak are noisy, and a curve
    whose latency falls as load rises has no single operating point), rounded to 4 digits
    of utilisation and 0.01 ns; equal utilisations keep the highest latency."""
    peak = max(bw for _, _, bw in loaded)
    light = min(loaded, key=lambda r: r[2])
    idle = light[1]
    pts = sorted((round(bw / peak, 4), max(0.0, lat - idle)) for _, lat, bw in loaded)
    out: list[tuple[float, float]] = []
    top = 0.0
    for u, w in pts:
        top = max(top, round(w, 2))
        if out and u == out[-1][0]:
            out[-1] = (u, top)
        else:
            out.append((u, top))
    if len(out) < 2 or out[-1][0] - out[0][0] < 0.2:
        raise NumasimError("the loaded-latency table covers too little of the bandwidth range "
                           f"(utilisation {out[0][0]:.2f} to {out[-1][0]:.2f} of its peak) to "
                           "give a curve", file=file, line=line or None,
                           hint="run 'mlc --loaded_latency' with its default delays (0 to "
                                "20000), which sweep from idle to saturation")
    return tuple(out)
