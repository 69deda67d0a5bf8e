"""A tiny deterministic stand-in for the timing engine, for the sweep machinery's tests.

Not a test module: ``test_experiments_*.py`` import it, and worker processes (local or
killed-and-resumed subprocesses) find it by name.  Its behaviour is steered by environment
variables so that a subprocess can be told what to do:

* ``NUMASIM_FAKE_LOG``: append ``<key>`` to this file for every point computed;
* ``NUMASIM_FAKE_SLEEP``: seconds to sleep in each point;
* ``NUMASIM_FAKE_FAIL_SIZE``: raise ValueError for points with this workload size (bytes);
* ``NUMASIM_FAKE_CRASH_SIZE``: kill the worker process (``os._exit``) at this size;
* ``NUMASIM_FAKE_EXIT_AFTER``: ``os._exit`` the process once the log holds this many lines
  (with ``-j 1`` that is the sweep process itself, killed in the middle of a sweep).
"""

from __future__ import annotations

import hashlib
import os
import time
from typing import Any


def _key(config: dict[str, Any]) -> str:
    from numasim.experiments.hashing import point_key

    return point_key({k: v for k, v in config.items() if not k.startswith("_")})


def _u(config: dict[str, Any], salt: str) -> float:
    """A number in [0, 1) that depends only on the config."""
    from numasim.experiments.hashing import canonical_json

    h = hashlib.sha256((salt + canonical_json(config)).encode()).digest()
    return int.from_bytes(h[:6], "big") / float(1 << 48)


def fake_result(config: dict[str, Any]) -> dict[str, Any]:
    cfg = {k: v for k, v in config.items() if not k.startswith("_")}
    w = cfg["workload"]
    threads = int(w.get("threads", 1))
    local = round(0.25 + 0.75 * _u(cfg, "local"), 6)
    bw = round(5 + 50 * _u(cfg, "bw") * threads, 4)
    lat = round(80 + 100 * (1 - local), 4)
    pages = int(w.get("size", 1 << 20)) // 4096
    p0 = int(pages * local)
    return {
        "machine": cfg["machine"]["name"], "workload": f"fake-{w.get('kernel', 'x')}",
        "engine": cfg["engine"], "linux": cfg["linux"], "seed": cfg["seed"],
        "runtime_s": round(1e-3 * (1 + _u(cfg, "rt")), 9), "cycles": 1000.0,
        "bandwidth_GBps": bw, "accesses": 1000 * threads, "memory_requests": 900 * threads,
        "hits": 100 * threads,
        "latency_ns": {"mean": lat, "p50": lat, "p95": lat + 20, "p99": lat + 40,
                       "max": lat + 60, "queueing_mean": 1.5},
        "latency_histogram": {"bin_start_ns": [80.0, lat, lat + 40],
                              "count": [int(500 * local) + 1, 300, 50]},
        "local_fraction": local,
        "pages_per_node": {"a": {"0": p0, "1": pages - p0}},
        "pages_per_node_total": {"0": p0, "1": pages - p0},
        "numastat": {},
        "phases": [{"name": "init", "measured": False, "seconds": 1e-4, "accesses": 10,
                    "memory_requests": 10, "latency_ns_mean": 300.0},
                   {"name": "run", "measured": True, "seconds": 1e-3,
                    "accesses": 1000 * threads, "memory_requests": 900 * threads,
                    "latency_ns_mean": lat}],
        "resources": [
            {"name": "mc 0", "kind": "controller", "utilisation": round(local * 0.8, 6)},
            {"name": "mc 1", "kind": "controller", "utilisation": round((1 - local) * 0.8, 6)},
            {"name": "link 0->1", "kind": "link", "utilisation": round((1 - local) * 0.5, 6)},
        ],
        "page_faults": {"count": pages},
        "timeline": {"interval_ns": 1000.0,
                     "bandwidth_GBps": {"0": [bw * local] * 8, "1": [bw * (1 - local)] * 8}},
        "config": {"threads": threads},
    }


def fake_point(config: dict[str, Any]) -> dict[str, Any]:
    env = os.environ
    size = int(config["workload"].get("size", 0))
    log = env.get("NUMASIM_FAKE_LOG")
    exit_after = env.get("NUMASIM_FAKE_EXIT_AFTER")
    if log and exit_after:
        try:
            with open(log) as f:
                n = sum(1 for _ in f)
        except FileNotFoundError:
            n = 0
        if n >= int(exit_after):
            os._exit(9)
    if env.get("NUMASIM_FAKE_CRASH_SIZE") and size == int(env["NUMASIM_FAKE_CRASH_SIZE"]):
        os._exit(3)
    if env.get("NUMASIM_FAKE_SLEEP"):
        time.sleep(float(env["NUMASIM_FAKE_SLEEP"]))
    if log:
        with open(log, "a") as f:
            f.write(_key(config) + "\n")
    if env.get("NUMASIM_FAKE_FAIL_SIZE") and size == int(env["NUMASIM_FAKE_FAIL_SIZE"]):
        raise ValueError(f"fake failure at size {size}")
    return fake_result(config)


FAKE_EXPERIMENT = """\
# a small experiment for the sweep machinery's tests
experiment: fake-sweep
description: two policies x six sizes on a 2-node machine
machine: oracle-2node
workload:
  kernel: stream
  threads: 2
seed: 7
sweep:
  cases:
    - label: first touch
    - label: interleave
      policy: --interleave=all
  grid:
    size: [1MiB, 2MiB, 3MiB, 4MiB, 5MiB, 6MiB]
"""
