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
import re
import stat
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


STATUSES = ("ok", "error")
KEY_RE = re.compile(r"[0-9A-Za-z_-]{1,64}")  # a point key names a file in points/


def point_doc_ok(doc: Any, key: str) -> bool:
    """Whether a point file holds a whole, well-formed result of ``key`` (anything else --
    a corrupt status, a result that is not a mapping -- counts as no result: computed again)."""
    if not isinstance(doc, dict) or doc.get("key") != key:
        return False
    status = doc.get("status")
    if status not in STATUSES or not isinstance(doc.get("config", {}), dict):
        return False
    if status == "ok":
        return result_problem(doc) is None
    err = doc.get("error")
    return isinstance(err, dict) and isinstance(err.get("type"), str) and \
        isinstance(err.get("message"), str)


_NUM = (int, float)
_SCALARS = ("runtime_s", "cycles", "bandwidth_GBps", "local_fraction", "accesses",
            "memory_requests")


def _nums(x: Any) -> bool:
    return isinstance(x, list) and all(isinstance(v, _NUM) and not isinstance(v, bool)
                                       for v in x)


def result_problem(doc: dict[str, Any]) -> str | None:
    """What is wrong with a finished point's result, in the parts the table and the plots
    read (None if nothing): a damaged file is a missing result, never a traceback."""
    cfg = doc.get("config")
    m = cfg.get("machine") if isinstance(cfg, dict) else None
    if not isinstance(m, dict) or not isinstance(m.get("name"), str) or \
            not isinstance(m.get("yaml"), str):
        return "config.machine"
    res = doc.get("result")
    if not isinstance(res, dict):
        return "result"
    for k in _SCALARS:
        if res.get(k) is not None and (not isinstance(res[k], _NUM) or isinstance(res[k], bool)):
            return f"result.{k}"
    for k in ("latency_ns", "latency_histogram", "pages_per_node", "pages_per_node_total",
              "numastat", "timeline", "page_faults", "config"):
        if res.get(k) is not None and not isinstance(res[k], dict):
            return f"result.{k}"
    for k in ("phases", "resources", "threads"):
        if res.get(k) is not None and not (isinstance(res[k], list)
                                           and all(isinstance(x, dict) for x in res[k])):
            return f"result.{k}"
    h = res.get("latency_histogram") or {}
    if h and not (_nums(h.get("bin_start_ns")) and _nums(h.get("count"))
                  and len(h["bin_start_ns"]) == len(h["count"])):
        return "result.latency_histogram"
    tl = res.get("timeline") or {}
    bw = tl.get("bandwidth_GBps", {})
    if tl and not (isinstance(tl.get("interval_ns", 1.0), _NUM) and isinstance(bw, dict)
                   and all(_nums(v) for v in bw.values())):
        return "result.timeline"
    if not _nums(list((res.get("pages_per_node_total") or {}).values())):
        return "result.pages_per_node_total"
    if not all(isinstance(v, dict) and _nums(list(v.values()))
               for v in (res.get("pages_per_node") or {}).values()):
        return "result.pages_per_node"
    for r in res.get("resources") or []:
        u = r.get("utilisation")
        if not isinstance(r.get("name"), str) or (u is not None and not isinstance(u, _NUM)):
            return "result.resources"
    return None


def manifest_problem(doc: Any) -> str | None:
    """What is wrong with a sweep.json document (None if nothing): the fields readers use."""
    if not isinstance(doc, dict):
        return "it is not a JSON object"
    points = doc.get("points")
    if not isinstance(points, list):
        return "'points' is not a list"
    for i, p in enumerate(points):
        if not isinstance(p, dict):
            return f"points[{i}] is not an object"
        if not isinstance(p.get("key"), str) or not KEY_RE.fullmatch(p["key"]) or \
                not isinstance(p.get("labels"), dict):
            return f"points[{i}] has no valid 'key' (a hash) or no 'labels' object"
        if not isinstance(p.get("index"), int) or not isinstance(p.get("rep"), int):
            return f"points[{i}] has no integer 'index' or 'rep'"
    for name in ("experiment", "x"):
        if doc.get(name) is not None and not isinstance(doc[name], str):
            return f"'{name}' is not a string"
    if not isinstance(doc.get("axes", []), list):
        return "'axes' is not a list"
    return None


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
        path = self.root / LOCK
        # never through a link: O_NOFOLLOW refuses a symlink planted at OUT/.lock (whose
        # target a truncate would clobber), and a lock that is not a regular file is refused
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o644)
        except OSError as e:
            raise NumasimError(f"cannot open the sweep's lock file: {e.strerror}",
                               file=str(path), hint="it must be a regular file (not a "
                               "symbolic link); remove it and run again") from None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise NumasimError("the sweep's lock file is not a regular file",
                                   file=str(path), hint="remove it and run again")
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                raise NumasimError("another sweep is writing to this results folder",
                                   file=str(self.root), hint="wait for it to finish, or give "
                                   "this sweep its own folder with --out") from None
        except BaseException:
            os.close(fd)
            raise
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
        return doc if point_doc_ok(doc, key) else None

    def write_point(self, doc: dict[str, Any]) -> None:
        path = self.point_path(doc["key"])
        if path.is_dir() and not path.is_symlink():
            raise NumasimError("a point's result file is a directory", file=str(path),
                               hint="remove it (the point is then computed again)")
        atomic_write(path, dumps(doc))

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
            doc = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise NumasimError("not a sweep results folder (no sweep.json)", file=str(self.root),
                               hint="give the folder a sweep wrote, e.g. "
                                    "results/policy-comparison") from None
        except (ValueError, RecursionError) as e:  # UnicodeDecodeError is a ValueError
            raise NumasimError(f"sweep.json is not JSON: {e}", file=str(path)) from None
        except OSError as e:
            raise NumasimError(f"cannot read sweep.json: {e.strerror}", file=str(path)) from None
        problem = manifest_problem(doc)
        if problem:
            raise NumasimError(f"sweep.json is damaged: {problem}", file=str(path),
                               hint="run the sweep again to rewrite it")
        return doc

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
            # a fresh private name (mkstemp: O_EXCL, never through a planted link)
            fd, tmp = tempfile.mkstemp(prefix=f".{pq.name}.", suffix=".tmp", dir=self.root)
            try:
                with os.fdopen(fd, "wb") as f:
                    df.to_parquet(f, index=False)
                os.replace(tmp, pq)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
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
