"""Latency / bandwidth matrices from sources that give some initiator -> target pairs only.

ACPI HMAT (through sysfs ``accessN/initiators`` or hwloc ``<memattr>``) describes each memory
node as seen from its *best* initiators only: typically the local socket, never the remote
one.  numasim needs a full matrix, so the missing pairs are filled with the derivation of
:mod:`numasim.topology.build` (latency grows 4.5 ns per SLIT unit, bandwidth falls as
10 / SLIT), anchored on what the source did say about the same target:

* latency  ``lat[k][j] = lat[i][j] + 4.5 ns * (d[k][j] - d[i][j])``,
* bandwidth ``bw[k][j] = bw[i][j] * d[i][j] / d[k][j]``,

where ``i`` is the initiator the source gave for target ``j`` that is nearest to it (SLIT).
A filled value is never better than the best given value of its column.  A target for which
the source gave nothing at all gets ``make_machine``'s plain derivation from its memory kind.
The caller adds the returned note to the machine, so a user can see what was measured and
what was filled.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from numasim.topology.build import (
    LATENCY_NS_PER_SLIT_UNIT,
    LOCAL_BANDWIDTH_GBPS,
    LOCAL_LATENCY_NS,
)
from numasim.topology.model import LOCAL_DISTANCE, REMOTE_DISTANCE, Node

Matrix = tuple[tuple[float, ...], ...]


def default_distance(n: int) -> tuple[tuple[int, ...], ...]:
    """What ``make_machine`` assumes without a SLIT: 10 local, 20 remote."""
    return tuple(tuple(LOCAL_DISTANCE if i == j else REMOTE_DISTANCE for j in range(n))
                 for i in range(n))


def fill_matrix(known: Mapping[tuple[int, int], float], nodes: Sequence[Node],
                distance: Sequence[Sequence[int]] | None, *, quantity: str,
                source: str) -> tuple[Matrix | None, str | None]:
    """A full matrix from ``known[(i, j)]`` (positions in ``nodes``), and a note.

    ``quantity`` is ``"latency"`` (ns) or ``"bandwidth"`` (GB/s).  Returns ``(None, None)``
    when nothing is known (``make_machine`` then derives the whole matrix itself) and
    ``(matrix, None)`` when every pair is known.
    """
    if quantity not in ("latency", "bandwidth"):
        raise ValueError(f"quantity must be latency or bandwidth, not {quantity!r}")
    n = len(nodes)
    if not known:
        return None, None
    dist = distance if distance is not None else default_distance(n)
    lat = quantity == "latency"
    rows: list[list[float]] = [[0.0] * n for _ in range(n)]
    anchored = derived = 0
    for j, target in enumerate(nodes):
        column = {i: v for (i, jj), v in known.items() if jj == j}
        if column:
            best_i = min(column, key=lambda i: (dist[i][j], column[i] if lat else -column[i]))
            anchor, d0 = column[best_i], dist[best_i][j]
            best = min(column.values()) if lat else max(column.values())
        for k in range(n):
            if k in column:
                rows[k][j] = float(column[k])
                continue
            d = dist[k][j]
            if not column:
                derived += 1
                if lat:
                    rows[k][j] = LOCAL_LATENCY_NS[target.kind] + LATENCY_NS_PER_SLIT_UNIT * (d - 10)
                else:
                    rows[k][j] = LOCAL_BANDWIDTH_GBPS[target.kind] * 10.0 / max(d, 1)
                continue
            anchored += 1
            if lat:
                rows[k][j] = max(anchor + LATENCY_NS_PER_SLIT_UNIT * (d - d0), best)
            else:
                rows[k][j] = min(anchor * d0 / max(d, 1), best)
    if not anchored and not derived:
        return tuple(tuple(r) for r in rows), None
    unit = "ns" if lat else "GB/s"
    parts = [f"{quantity} ({unit}): {len(known)} of {n * n} entries from {source}"]
    if anchored:
        parts.append(f"{anchored} filled from the given value of the same target node and the "
                     "SLIT difference (make_machine's derivation)")
    if derived:
        parts.append(f"{derived} derived from the SLIT and the memory kind alone (no value "
                     "given for those target nodes)")
    return tuple(tuple(r) for r in rows), "; ".join(parts)
