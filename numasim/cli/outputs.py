"""Checking where output goes *before* the work that produces it.

``numasim run -o`` writes after the simulation and ``numasim sweep`` draws its plots after
every point: a typo in a path, a read-only folder or a file where a folder should be must be
found first, not after an hour of simulation.  Each check tries what the write will do
(creates and removes a probe file in the folder), so it sees what ``access(2)`` would not: a
read-only mount, a full quota, root on a filesystem that refuses root.  What still fails later
(a disk that fills up while writing) is reported by the command line as an error naming the
file, never as a traceback.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from numasim.errors import NumasimError


def _probe(folder: Path, field: str, what: str) -> None:
    """Create and remove a file in ``folder``; raise NumasimError naming it if that fails."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=".numasim-probe-", dir=folder)
    except OSError as e:
        raise NumasimError(f"cannot write {what} here: {e.strerror}", file=str(folder),
                           field=field, hint="choose a folder you can write to") from None
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(tmp)


def _nearest_existing(path: Path) -> Path:
    p = path.absolute()
    while not p.exists() and not p.is_symlink() and p != p.parent:
        p = p.parent
    return p


def check_output_file(path: str | os.PathLike, field: str, *, make_parents: bool = False
                      ) -> Path:
    """``path`` can be written as a file: it is not a folder, its folder exists (or, with
    ``make_parents``, can be made) and takes new files.  Returns it as a Path."""
    p = Path(path)
    if str(path).endswith(os.sep) or p.is_dir():
        raise NumasimError("is a folder, not a file", file=str(path), field=field,
                           hint="give a file name, e.g. out/result.json")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        base = _nearest_existing(parent)
        if not base.is_dir():
            raise NumasimError(f"'{base}' is a file, not a folder", file=str(path),
                               field=field)
        if not make_parents:
            raise NumasimError(f"no such folder '{parent}'", file=str(path), field=field,
                               hint="create it first, or check the spelling")
        _probe(base, field, "the output file")
        return p
    if p.exists() and not os.access(p, os.W_OK):
        raise NumasimError("the file exists and is not writable", file=str(path), field=field)
    _probe(parent, field, "the output file")
    return p


def check_output_dir(path: str | os.PathLike, field: str) -> Path:
    """``path`` can be used as an output folder: it is one (or can be created) and takes
    new files.  Creates nothing."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise NumasimError("is a file, not a folder", file=str(path), field=field,
                           hint="give a folder name")
    base = p if p.is_dir() else _nearest_existing(p)
    if not base.is_dir():
        raise NumasimError(f"'{base}' is a file, not a folder", file=str(path), field=field)
    _probe(base, field, "output")
    return p


def os_error_message(e: OSError) -> str:
    """One line for an OSError that escaped (a disk full while writing, a folder removed
    under a running sweep): the file and what the system said."""
    name = e.filename if e.filename is not None else ""
    what = e.strerror or str(e)
    return f"{name}: {what}" if name else what


def write_text_file(path: str | os.PathLike, text: str, field: str) -> None:
    """Write ``text`` to ``path``; a failure (a disk full, a folder gone) is a
    NumasimError naming the file."""
    try:
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
    except OSError as e:
        raise NumasimError(f"cannot write: {e.strerror or e}", file=str(path),
                           field=field) from None


@contextlib.contextmanager
def writing(path: str | os.PathLike, field: str):
    """Around code that writes ``path`` (matplotlib's savefig...): an OSError becomes a
    NumasimError naming the file."""
    try:
        yield
    except OSError as e:
        raise NumasimError(f"cannot write: {e.strerror or e}", file=str(e.filename or path),
                           field=field) from None
