"""The ``numasim`` command skips numba's BLAS probe (numasim/cli/startup.py), and only it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numasim

PKG = Path(numasim.__file__).parent

# a stand-in scipy whose linalg says so when imported: the real one need not be installed
FAKE_LINALG = 'import os\nos.environ["FAKE_SCIPY_LINALG"] = "imported"\n'

PROBE = textwrap.dedent("""
    import os, sys
    from numasim.cli import main
    rc = main(["script", "01_default_local"])
    import numba.np.arraymath as am
    print("after-command", rc, os.environ.get("FAKE_SCIPY_LINALG", "no"), am._HAVE_BLAS,
          len([f for f in sys.meta_path if type(f).__name__ == "_SkipBlasProbe"]))
    import scipy.linalg
    print("after-import", os.environ.get("FAKE_SCIPY_LINALG", "no"))
""")


def _fake_scipy(root: Path) -> Path:
    (root / "scipy" / "linalg").mkdir(parents=True)
    (root / "scipy" / "__init__.py").write_text('__version__ = "1.17.1"\n')
    (root / "scipy" / "linalg" / "__init__.py").write_text(FAKE_LINALG)
    (root / "scipy" / "linalg" / "cython_blas.py").write_text("")
    return root


def _env(tmp_path: Path) -> dict[str, str]:
    """The environment of a child Python that finds the stand-in scipy first."""
    return dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(_fake_scipy(tmp_path)), os.environ.get("PYTHONPATH", "")]))


def test_the_command_skips_numbas_blas_probe_and_nothing_else(tmp_path):
    env = _env(tmp_path)
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("after-")]
    # the script ran numba code, numba's probe did not import scipy.linalg, the hook is gone
    assert lines[0] == "after-command 0 no False 0"
    # and a later import of scipy.linalg by anyone else is not refused
    assert lines[1] == "after-import imported"


def test_the_probe_runs_as_usual_without_the_command(tmp_path):
    env = _env(tmp_path)
    code = ("import os, numba.np.arraymath as am; "
            "print(os.environ.get('FAKE_SCIPY_LINALG', 'no'), am._HAVE_BLAS)")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["imported", "True"]


BLAS = re.compile(r"np\.(dot|vdot|linalg|matmul|inner|outer|convolve|correlate|kron|tensordot)\b"
                  r"|\w\s@\s\w")


def test_numasims_code_calls_no_blas():
    """What makes skipping the probe safe: nothing in numasim needs numba's BLAS."""
    hits = [f"{p.relative_to(PKG)}:{i}" for p in sorted(PKG.rglob("*.py"))
            if p.name != "startup.py"  # which names them in its docstring
            for i, line in enumerate(p.read_text().splitlines(), 1)
            if BLAS.search(line.split("#")[0])]
    assert hits == []
