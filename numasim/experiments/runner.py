"""Running a sweep: in this process, in local worker processes, or on a Dask cluster.

Whatever runs the points, this process alone writes the results: each finished point is
written (atomically) as soon as it arrives, so an interrupted sweep loses only the points
that were running.  Starting the same sweep again reads which keys already have a result and
runs only the others.  A point that raises records its error and the sweep goes on; a point
whose worker process dies (a crash, the OOM killer) is run again alone, and recorded as
failed only if it kills its worker a second time, so that a crash never takes the blame for
its neighbours.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from numasim.errors import NumasimError
from numasim.experiments.expand import Experiment
from numasim.experiments.store import ResultStore

PointFn = Callable[[dict[str, Any]], dict[str, Any]]


def default_point_fn() -> PointFn:
    from numasim.experiments.point import run_point

    return run_point


def compute(point_fn: PointFn, key: str, config: dict[str, Any],
            labels: dict[str, Any]) -> dict[str, Any]:
    """Run one point and wrap what happened in its result document (never raises on a
    point's own failure; KeyboardInterrupt and SystemExit still stop it)."""
    t0 = time.perf_counter()
    result = None
    error = None
    try:
        result = point_fn(config)
        json.dumps(result, allow_nan=False)  # a result that cannot be stored is a failure
        status = "ok"
    except NumasimError as e:
        status = "error"
        error = {"type": type(e).__name__, "message": e.render(), "traceback": None}
    except Exception as e:
        status = "error"
        error = {"type": type(e).__name__, "message": str(e),
                 "traceback": traceback.format_exc()}
        result = None
    return {"key": key, "status": status, "labels": labels, "config": config,
            "result": result, "error": error,
            "host_seconds": round(time.perf_counter() - t0, 3)}


def crashed(key: str, config: dict[str, Any], labels: dict[str, Any], why: str
            ) -> dict[str, Any]:
    return {"key": key, "status": "error", "labels": labels, "config": config, "result": None,
            "error": {"type": "WorkerDied", "message": why, "traceback": None},
            "host_seconds": None}


@dataclass
class SweepSummary:
    """What a sweep did."""

    experiment: Experiment
    out: Path
    points: int = 0
    unique: int = 0
    reused: int = 0
    computed: int = 0
    failed: int = 0
    seconds: float = 0.0
    interrupted: bool = False
    table: Path | None = None
    parquet: Path | None = None
    df: Any = None
    failures: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.interrupted and self.failed == 0


class _Progress:
    """tqdm bar of points done, failed, and time left (or nothing)."""

    def __init__(self, enabled: bool, total: int, initial: int, failed: int, desc: str) -> None:
        self.failed = failed
        self.bar = None
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=initial, desc=desc, unit="point",
                            file=sys.stderr, dynamic_ncols=True, mininterval=0.5,
                            smoothing=0.1,
                            bar_format="{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} "
                                       "points [{elapsed}<{remaining}{postfix}]")
            self.bar.set_postfix_str(f"failed {failed}", refresh=False)

    def update(self, failed: bool) -> None:
        if failed:
            self.failed += 1
        if self.bar is not None:
            self.bar.set_postfix_str(f"failed {self.failed}", refresh=False)
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


Todo = tuple[str, dict[str, Any], dict[str, Any]]


def _serial(todo: list[Todo], point_fn: PointFn, sink: Callable[[dict], None]) -> None:
    for key, config, labels in todo:
        sink(compute(point_fn, key, config, labels))


PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent(parent: int) -> None:
    """Make this worker process die when the sweep process does, however it dies (SIGTERM
    from a scheduler, ``kill -9``, a crash): otherwise a worker blocks for ever on the pipe
    it inherited.  Linux: ``prctl(PR_SET_PDEATHSIG, SIGKILL)``, then a check that the parent
    did not die before that took hold.  Elsewhere: nothing (the pool's own checks remain)."""
    import signal

    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    if os.getppid() != parent:
        os._exit(1)


def _worker_init(close_fds: tuple[int, ...], parent: int | None = None) -> None:
    """In a forked worker: die with the sweep process, let go of the results folder's lock
    (only the sweep holds it)."""
    import signal

    if parent is not None:
        die_with_parent(parent)
    for fd in close_fds:
        with contextlib.suppress(OSError):
            os.close(fd)
    # Ctrl-C is for the sweep process, which stops the workers itself
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _local(todo: list[Todo], point_fn: PointFn, sink: Callable[[dict], None], jobs: int,
           close_fds: tuple[int, ...] = ()) -> None:
    import multiprocessing as mp
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    # fork: workers start at once and a script without a __main__ guard is not run again in
    # each of them (as spawn would); spawn where there is no fork
    method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    ctx = mp.get_context(method)
    queue: deque[Todo] = deque(todo)
    suspects: deque[Todo] = deque()  # in flight when a worker died: run them one at a time

    def new_pool() -> ProcessPoolExecutor:
        return ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, initializer=_worker_init,
                                   initargs=(close_fds, os.getpid()))

    pool = new_pool()
    inflight: dict[Any, tuple[Todo, bool]] = {}

    def restart() -> None:
        """The pool is broken: what was in it runs again, alone; a fresh pool takes over."""
        nonlocal pool
        for fut, (item, was_suspect) in list(inflight.items()):
            inflight.pop(fut)
            if was_suspect:
                sink(crashed(*item, "the worker process running this point died (crashed "
                             "or was killed), also when it ran alone"))
            else:
                suspects.append(item)
        pool.shutdown(wait=False, cancel_futures=True)
        pool = new_pool()

    def submit(item: Todo, suspect: bool) -> bool:
        try:
            inflight[pool.submit(compute, point_fn, *item)] = (item, suspect)
            return True
        except BrokenProcessPool:
            (suspects if suspect else queue).appendleft(item)
            restart()
            return False

    try:
        while queue or suspects or inflight:
            alone = any(was_suspect for _, was_suspect in inflight.values())
            if suspects and not inflight:
                submit(suspects.popleft(), True)
            elif not suspects and not alone:
                while queue and len(inflight) < jobs:
                    if not submit(queue.popleft(), False):
                        break
            if not inflight:
                continue
            done, _ = wait(list(inflight), return_when=FIRST_COMPLETED)
            broken = False
            for fut in done:
                item, was_suspect = inflight[fut]
                try:
                    doc = fut.result()
                except BrokenProcessPool:
                    broken = True
                    continue
                inflight.pop(fut)
                sink(doc)
            if broken:
                restart()
    except KeyboardInterrupt:
        # stop now (Ctrl-C or SIGTERM): the points in flight are lost (they run again next
        # time), the rest kept
        for proc in list((getattr(pool, "_processes", None) or {}).values()):
            with contextlib.suppress(Exception):
                proc.kill()
        raise
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


DASK_SCHEMES = ("tcp", "tls", "ws", "wss", "ucx", "inproc")
DASK_PORT = 8786
PROBE_SECONDS = 5.0
MAX_HANDSHAKE = 1 << 24  # a scheduler's first frame (its handshake) is a few hundred bytes


def probe_scheduler(address: str) -> None:
    """Check that ``address`` is a Dask scheduler before handing it to Dask: the form
    (``tcp://HOST:PORT``), and for tcp that something answers within a few seconds as a
    scheduler does (it speaks first: an 8-byte length, then a small handshake).  An HTTP
    server there would have Dask read "HTTP/1.1" as a frame length and ask for exabytes."""
    import socket
    import struct

    def bad(msg: str) -> NumasimError:
        return NumasimError(msg, field="--dask", hint="give tcp://HOST:PORT of a Dask "
                            "scheduler (`dask scheduler` prints it), or --dask local")

    scheme, sep, rest = address.partition("://")
    if not sep:
        scheme, rest = "tcp", address
    if scheme not in DASK_SCHEMES:
        raise bad(f"{address!r} is not a Dask address (unknown scheme {scheme!r})")
    if scheme != "tcp":
        return  # tls and the others start with the client's own handshake: Dask checks
    host, colon, port_text = rest.rpartition(":")
    if not colon:
        host, port_text = rest, str(DASK_PORT)
    host = host.strip("[]")
    if not host or any(c.isspace() or c in "/?#@" for c in host) or not port_text.isdigit() \
            or not 0 < int(port_text) < 65536:
        raise bad(f"{address!r} is not a Dask address")
    head = b""
    try:
        with socket.create_connection((host, int(port_text)), timeout=PROBE_SECONDS) as sock:
            sock.settimeout(PROBE_SECONDS)
            with contextlib.suppress(TimeoutError, ConnectionError):
                while len(head) < 8:
                    chunk = sock.recv(8 - len(head))
                    if not chunk:
                        break
                    head += chunk
    except (OSError, UnicodeError) as e:
        what = "no answer" if isinstance(e, TimeoutError) else (
            getattr(e, "strerror", None) or str(e))
        raise NumasimError(f"cannot reach the Dask scheduler at {address}: {what}",
                           field="--dask", hint="start one with `dask scheduler` and workers "
                           "with `dask worker ADDRESS`, or give --dask local") from None
    if len(head) < 8 or struct.unpack("<Q", head)[0] > MAX_HANDSHAKE:
        raise bad(f"{address} does not answer as a Dask scheduler"
                  + (f" (it sent {head[:8]!r})" if head else
                     f" (it sent nothing in {PROBE_SECONDS:g} s)"))


def _dask(todo: list[Todo], point_fn: PointFn, sink: Callable[[dict], None], address: str,
          jobs: int) -> None:
    try:
        from dask.distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise NumasimError("--dask needs dask.distributed", field="--dask",
                           hint="pip install 'dask[distributed]' (or numasim[dask])") from None
    cluster = None
    if address == "local":
        cluster = LocalCluster(n_workers=max(1, jobs), threads_per_worker=1, processes=True,
                               dashboard_address=None)
        client = Client(cluster)
    else:
        probe_scheduler(address)
        try:
            import dask

            # how long to try: dask's own setting (30 s unless configured)
            timeout = dask.config.get("distributed.comm.timeouts.connect", "30s")
            client = Client(address, timeout=timeout)
        except (OSError, TimeoutError, ValueError) as e:
            raise NumasimError(f"cannot reach the Dask scheduler at {address}: {e}",
                               field="--dask", hint="start one with `dask scheduler` and "
                               "workers with `dask worker ADDRESS`, or give --dask local"
                               ) from None
    try:
        futures = {}
        for item in todo:
            fut = client.submit(compute, point_fn, *item, key=f"numasim-point-{item[0]}",
                                pure=False)
            futures[fut] = item
        for fut in as_completed(list(futures)):
            item = futures[fut]
            try:
                doc = fut.result()
            except Exception as e:  # KilledWorker and the like: the point's worker died
                doc = crashed(*item, f"the Dask worker running this point failed: "
                              f"{type(e).__name__}: {e}")
            sink(doc)
            fut.release()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


@contextlib.contextmanager
def _sigterm_interrupts():
    """While points run, SIGTERM (what schedulers and ``kill`` send) stops the sweep as
    Ctrl-C does: the workers are killed, finished points kept, the table written."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def run_sweep(exp: Experiment, out: str | os.PathLike, *, jobs: int = 1,
              dask: str | None = None, point_fn: PointFn | None = None,
              progress: bool = True, retry_failed: bool = False, rerun: bool = False
              ) -> SweepSummary:
    """Run every point of ``exp`` that has no result in ``out`` yet; gather the table.

    ``jobs``: local worker processes (1: this process); ``dask``: a scheduler address (or
    ``local`` for a LocalCluster of ``jobs`` workers) instead; ``point_fn``: what runs a
    point (default :func:`numasim.experiments.point.run_point`; must be importable by name
    for worker processes); ``retry_failed``: run points that failed before again;
    ``rerun``: run every point again (new results replace the old ones).
    """
    fn = point_fn or default_point_fn()
    store = ResultStore(out)
    store.lock()
    t0 = time.perf_counter()
    summary = SweepSummary(exp, Path(out), points=len(exp.points))
    try:
        store.write_manifest(exp.manifest(), exp.text)
        unique: dict[str, Any] = {}
        for p in exp.points:
            unique.setdefault(p.key, p)
        summary.unique = len(unique)
        done = {} if rerun else store.finished(list(unique), retry_failed=retry_failed)
        summary.reused = len(done)
        failed_before = sum(1 for s in done.values() if s != "ok")
        todo: list[Todo] = [(k, p.config, p.labels) for k, p in unique.items() if k not in done]
        blocked = [store.point_path(k) for k, _, _ in todo if store.point_path(k).is_dir()]
        if blocked:  # found now, not after computing the point
            raise NumasimError("a point's result file is a directory", file=str(blocked[0]),
                               hint="remove it (the point is then computed again)")
        bar = _Progress(progress, len(unique), len(done), failed_before, exp.name)

        def sink(doc: dict[str, Any]) -> None:
            store.write_point(doc)
            summary.computed += 1
            bar.update(doc["status"] != "ok")

        try:
            with _sigterm_interrupts():
                if not todo:
                    pass
                elif dask:
                    _dask(todo, fn, sink, dask, jobs)
                elif jobs <= 1 or len(todo) == 1:
                    _serial(todo, fn, sink)
                else:
                    _local(todo, fn, sink, min(jobs, len(todo)), store.held_fds())
        except KeyboardInterrupt:
            summary.interrupted = True
        finally:
            bar.close()
        manifest = exp.manifest()
        summary.table, summary.parquet, summary.df = store.write_table(manifest)
        for k in unique:
            doc = store.read_point(k)
            if doc is not None and doc["status"] != "ok":
                summary.failed += 1
                summary.failures.append(doc)
    finally:
        store.unlock()
    summary.seconds = time.perf_counter() - t0
    return summary


def format_summary(s: SweepSummary) -> str:
    """What the command line prints when a sweep ends."""
    exp = s.experiment
    lines = []
    head = "interrupted" if s.interrupted else "done"
    lines.append(f"{exp.name}: {head} in {_dur(s.seconds)}: {s.points} point(s), "
                 f"{s.computed} computed now, {s.reused} already done, {s.failed} failed")
    for doc in s.failures[:5]:
        err = doc.get("error") or {}
        lab = ", ".join(f"{k}={v}" for k, v in (doc.get("labels") or {}).items())
        lines.append(f"  failed [{lab or doc['key']}]: {err.get('type')}: "
                     f"{str(err.get('message', '')).splitlines()[0] if err.get('message') else ''}")
    if len(s.failures) > 5:
        lines.append(f"  ... and {len(s.failures) - 5} more (see the 'error' column)")
    if s.failures:
        lines.append("  failed points keep their error; run again with --retry-failed to "
                     "try them again")
    if s.table is not None:
        lines.append(f"  table:  {s.table}" + (f" (and {s.parquet.name})" if s.parquet else ""))
        lines.append(f"  points: {s.out / 'points'}/ (each run's full result and resolved "
                     "config)")
    if s.interrupted:
        lines.append("  run the same command again to finish: finished points are kept")
    return "\n".join(lines)


def _dur(sec: float) -> str:
    if sec < 60:
        return f"{sec:.1f} s"
    m, s = divmod(int(round(sec)), 60)
    return f"{m} min {s:02d} s"
