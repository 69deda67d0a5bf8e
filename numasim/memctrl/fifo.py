"""``fifo``: one deterministic server per controller, a line per ``line / bandwidth``.

numasim's original model and the default: latency stays at the idle latency until the
controller is nearly saturated, then Little's law takes over.  Kept for teaching (the queue
you can compute by hand) and as the fast baseline; results are bit-identical to numasim
before controller models existed.
"""

from __future__ import annotations

from numasim.memctrl.base import ControllerModel


class FifoController(ControllerModel):
    impl = "fifo"
    description = "one FIFO server moving a line per line/bandwidth; no extra latency"
    params = ()
