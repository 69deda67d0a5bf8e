"""What the ``numasim`` command skips at start-up that a library import cannot.

numba's first compile or cache load in a process imports ``numba.np.arraymath``, whose module
body probes for a BLAS by importing ``scipy.linalg``.  Where scipy is installed (numasim does
not need it), that import alone cost 0.2-0.3 s of every warm ``numasim script`` or
``numasim numactl`` run (``python -X importtime``: 204 ms of ``scipy.linalg`` under
``numba.np.arraymath``; the whole command 1.9 s instead of 2.2 s on a 2-vCPU EPYC host).
numasim's jitted code calls no BLAS (no ``np.dot``, ``np.linalg``, ``@``;
``tests/test_startup.py`` checks the sources), and what numba does without one is only to
take a plain loop for ``np.convolve``/``np.correlate``.

So the command (and only the command: in a user's own Python process numasim leaves numba's
probe alone) makes that one probe fail fast.  Any other import of ``scipy.linalg`` in the
process proceeds as usual, and the hook removes itself once it has fired.
"""

from __future__ import annotations

import importlib.abc
import os
import sys

_PROBE_FILE = os.path.join("numba", "np", "arraymath.py")


class _SkipBlasProbe(importlib.abc.MetaPathFinder):
    """Refuses ``scipy.linalg`` to numba's ``_check_blas``, and to nobody else."""

    def find_spec(self, fullname: str, path: object, target: object = None) -> None:
        if fullname != "scipy.linalg":
            return None
        frame = sys._getframe(1)
        while frame is not None:
            code = frame.f_code
            if code.co_name == "_check_blas" and code.co_filename.endswith(_PROBE_FILE):
                remove_blas_probe_hook()
                raise ImportError("numasim's command skips numba's BLAS probe")
            frame = frame.f_back
        return None


def skip_numba_blas_probe() -> None:
    """Make numba's BLAS probe fail fast in this process, unless numba already ran it."""
    if "numba.np.arraymath" in sys.modules or "scipy.linalg" in sys.modules:
        return
    if not any(isinstance(f, _SkipBlasProbe) for f in sys.meta_path):
        sys.meta_path.insert(0, _SkipBlasProbe())


def remove_blas_probe_hook() -> None:
    """Take the hook out of ``sys.meta_path`` (the command's ``main`` does on return)."""
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _SkipBlasProbe)]
