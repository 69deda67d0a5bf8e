"""What a scenario run prints: records in the probe's text form and as JSON objects.

Every result is a :class:`Record`: the script line it answers, the line ``numaprobe`` prints
for it (so a numasim run and an oracle recording can be diffed line by line), and the JSON
object ``numasim script --json`` prints (the shape the issue gives: ``op``, ``ret`` or
``errno``, ``region``, ``page``, ``node``...).  Command echoes (``> cmd``) are text-only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass


@dataclass
class Record:
    line: int
    text: str
    obj: dict | None = None
    meta: dict | None = None
    """Facts for comparisons with recordings, not printed (e.g. for a numastat_delta line,
    the nodes the probe's own kernel allocations could have gone to in that window)."""

    def json(self) -> str | None:
        if self.obj is None:
            return None
        return json.dumps({**self.obj, "line": self.line})


def render_text(records: list[Record]) -> str:
    return "".join(r.text + "\n" for r in records)


def render_json(records: list[Record]) -> str:
    out = []
    for r in records:
        j = r.json()
        if j is not None:
            out.append(j + "\n")
    return "".join(out)


# line kinds whose values depend on timing / memory state, not on policy logic (the oracle's
# run_oracle.py NOISY list)
NOISY = ("numastat", "zone ", "fill ", "fill_step ", "headroom ", "numa_maps ", "meminfo ", "| ",
         "vmstat")


def run_order(summary_line: str) -> list[str]:
    """``runs=1-254:2,255-509:3`` -> ['2', '3']: nodes in order of first appearance."""
    import re

    m = re.search(r"runs=(\S+)", summary_line)
    order: list[str] = []
    for part in (m.group(1).split(",") if m else []):
        node = part.rsplit(":", 1)[1]
        if node not in order:
            order.append(node)
    return order
