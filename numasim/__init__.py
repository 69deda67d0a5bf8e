"""numasim: a discrete-event, cycle-level NUMA machine emulator that places every page as
Linux's NUMA memory policies do.

The top level stays light: ``numasim.run`` and ``numasim.sweep`` import the engines and the
experiment runner only when called.
"""

from __future__ import annotations

from numasim._version import __version__
from numasim.jitcache import drop_stale_caches

drop_stale_caches()  # before numba loads any cached kernel (numasim.jitcache says why)

__all__ = ["__version__", "load_machine", "run", "sweep"]


def load_machine(spec):
    """Load a machine description (any supported format, a shipped name, or 'local')."""
    from numasim.topology.loaders import load_machine as _load

    return _load(spec)


def run(*args, **kwargs):
    """Run one workload on one machine; see :func:`numasim.api.run`."""
    from numasim.api import run as _run

    return _run(*args, **kwargs)


def sweep(*args, **kwargs):
    """Run an experiment sweep and return a pandas DataFrame; see
    :func:`numasim.experiments.api.sweep`."""
    from numasim.experiments.api import sweep as _sweep

    return _sweep(*args, **kwargs)
