"""A sweep's results folder: one file per point, written atomically, and the gathered table.

Layout of ``results/<experiment>/``::

    experiment.yaml        the experiment as it was run (a copy of the file)
    sweep.json             the expansion: points in order, their keys, labels, axes
    points/<key>.json      one run: status, resolved config, result (or error), host time
    results.csv            one row per point, in sweep order (results.parquet with pyarrow)

A point file is written to a temporary name in the same folder, flushed to disk, then renamed
over its final name: a reader (or a sweep that resumes after ``kill -9``) sees either no file
or the whole file, never half of one.  Only the process that runs the sweep writes (workers
return their results to it), and a lock file keeps two sweeps out of one folder.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from numasim.errors import NumasimError

POINTS = "points"
TABLE = "results.csv"
PARQUET = "results.parquet"
MANIFEST = "sweep.json"
SOURCE = "experiment.yaml"
LOCK = ".lock"


def atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that it is either all there or not there at all."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    try:  # the rename itself survives a power cut only once the directory is synced
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


def dumps(doc: Any) -> str:
    return json.dumps(doc, indent=1, sort_keys=False, allow_nan=False) + "\n"


class ResultStore:
    """The results folder of one sweep."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        self.points_dir = self.root / POINTS
        self._lock_fd: int | None = None

    # ---------------------------------------------------------------- lock
    def lock(self) -> None:
        """Keep other sweeps out of this folder (released when this process ends)."""
        import fcntl

        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise NumasimError("another sweep is writing to this results folder",
                               file=str(self.root), hint="wait for it to finish, or give "
                               "this sweep its own folder with --out") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._lock_fd = fd

    def held_fds(self) -> tuple[int, ...]:
        return () if self._lock_fd is None else (self._lock_fd,)

    def unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    # -------------------------------------------------------------- points
    def point_path(self, key: str) -> Path:
        return self.points_dir / f"{key}.json"

    def read_point(self, key: str) -> dict[str, Any] | None:
        """The stored document of a point, or None if it has none (or an unreadable one)."""
        try:
            doc = json.loads(self.point_path(key).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(doc, dict) or doc.get("key") != key or "status" not in doc:
            return None
        return doc

    def write_point(self, doc: dict[str, Any]) -> None:
        atomic_write(self.point_path(doc["key"]), dumps(doc))

    def finished(self, keys: list[str], *, retry_failed: bool = False) -> dict[str, str]:
        """key -> status of the points already stored (failed ones too unless retried)."""
        out = {}
        for k in dict.fromkeys(keys):
            doc = self.read_point(k)
            if doc is None:
                continue
            if doc["status"] != "ok" and retry_failed:
                continue
            out[k] = doc["status"]
        return out

    # ------------------------------------------------------- manifest, table
    def write_manifest(self, manifest: dict[str, Any], source_text: str) -> None:
        atomic_write(self.root / MANIFEST, dumps(manifest))
        atomic_write(self.root / SOURCE, source_text)

    def read_manifest(self) -> dict[str, Any]:
        path = self.root / MANIFEST
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise NumasimError("not a sweep results folder (no sweep.json)", file=str(self.root),
                               hint="give the folder a sweep wrote, e.g. "
                                    "results/policy-comparison") from None
        except ValueError as e:
            raise NumasimError(f"sweep.json is not JSON: {e}", file=str(path)) from None

    def write_table(self, manifest: dict[str, Any]) -> tuple[Path, Path | None, Any]:
        """Gather results.csv (and results.parquet if pyarrow is there); returns the paths
        and the DataFrame."""
        from numasim.experiments.table import build_table

        df = build_table(manifest, self)
        csv_path = self.root / TABLE
        atomic_write(csv_path, df.to_csv(index=False, lineterminator="\n"))
        pq = None
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            pass
        else:
            pq = self.root / PARQUET
            tmp = pq.with_name(f".{pq.name}.tmp")
            df.to_parquet(tmp, index=False)
            os.replace(tmp, pq)
        return csv_path, pq, df

def default_dirs(name: str, quick: bool, out: str | None, plots: str | None
                 ) -> tuple[Path, Path]:
    """Where a sweep's results and plots go when the user names neither (or one)."""
    suffix = "-quick" if quick else ""
    out_dir = Path(out) if out else Path("results") / f"{name}{suffix}"
    if plots:
        plots_dir = Path(plots)
    elif out:
        plots_dir = out_dir / "plots"
    else:
        plots_dir = Path("plots") / f"{name}{suffix}"
    return out_dir, plots_dir
