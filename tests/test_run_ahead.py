"""The bound phase on several host threads (numasim.machine.ahead): the same bytes as the CPUs'
turns in order, whatever the number of threads -- where it runs quanta at once, where a fault
puts a quantum back, where NUMA balancing's ticks fall inside quanta."""

from __future__ import annotations

import re
import threading

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import numasim
from numasim.errors import ConfigError
from numasim.machine.ahead import ENV, host_threads

TRIAD = dict(kernel="stream", op="triad", threads=8, size="4MiB")


def _run(host: int, **kw):
    kw = {**TRIAD, **kw}
    machine = kw.pop("machine", "skx-2s-snc2")
    numactl = kw.pop("numactl", "--interleave=0,1")
    return numasim.run(machine, kw.pop("kernel"), numactl=numactl, host_threads=host, **kw)


def _counts(r) -> tuple[int, int]:
    """(quanta run at once, attempts put back) from the summary's host note."""
    m = re.search(r"(\d+) of \d+ quanta run at once, (\d+) tried", r.host_note)
    assert m, r.host_note
    return int(m.group(1)), int(m.group(2))


def test_steady_triad_runs_at_once_and_gives_the_same_bytes():
    one, two = _run(1), _run(2)
    assert one.host_note == "bound phase on 1 host thread"
    done, _ = _counts(two)
    assert done > 10  # the triad's quanta ran at once ...
    assert two.to_json(host=False) == one.to_json(host=False)  # ... and changed no byte


def test_faults_put_the_quantum_back_and_give_the_same_bytes():
    """``--init none``: stores fault fresh pages through the whole run -- every attempt
    stops at a fault and the CPUs' rows go back as they were."""
    one = _run(1, kernel="stream", op="copy", init="none", size="2MiB")
    two = _run(2, kernel="stream", op="copy", init="none", size="2MiB")
    _, put_back = _counts(two)
    assert put_back > 0
    assert two.to_json(host=False) == one.to_json(host=False)


def test_numa_balancing_ticks_and_three_threads_same_bytes():
    kw = dict(kernel="stream", op="triad", threads=4, size="8MiB", repeat=4,
              numactl="--membind=0", numa_balancing=True, machine="clx-2s")
    one, three = _run(1, **kw), _run(3, **kw)
    assert three.to_json(host=False) == one.to_json(host=False)
    assert one.to_dict()["numa_balancing"]["intervals"]


def test_ticks_inside_quanta_run_after_them_and_give_the_same_bytes(monkeypatch):
    """Quanta of 10 M cycles (4.3 ms) hold every thread's scheduler tick (every 4 ms).  Under
    ``--membind`` the scanner never acts, so each tick only adds CPU time and counts
    requests: the CPUs go on past it and the ticks run once the quantum is kept.  Without
    that no quantum would run at once."""
    from numasim.machine.numab_clock import NumabClock

    kw = dict(kernel="stream", op="triad", threads=4, size="16MiB", repeat=20,
              numactl="--membind=0", numa_balancing=True, machine="clx-2s",
              quantum=10_000_000)
    one, two = _run(1, **kw), _run(2, **kw)
    done, _ = _counts(two)
    assert done >= 10
    assert two.to_json(host=False) == one.to_json(host=False)
    assert one.to_dict()["numa_balancing"]["intervals"]  # the ticks' series is there
    monkeypatch.setattr(NumabClock, "may_defer_tick", lambda self, c, k: False)
    stopped = _run(2, **kw)
    assert _counts(stopped)[0] <= 1
    assert stopped.to_json(host=False) == one.to_json(host=False)


def test_ticks_passed_beside_scans_and_migrations_give_the_same_bytes():
    """Serial init and a 4 ms scan period: scans, hinting faults and migrations between the
    quanta whose ticks ran after them."""
    kw = dict(kernel="stream", op="triad", threads=8, size="8MiB", repeat=30, init="serial",
              numactl=None, numa_balancing=True, machine="clx-2s",
              balancing_knobs={"scan_delay_ms": 2, "scan_period_min_ms": 4})
    one, two = _run(1, **kw), _run(2, **kw)
    assert _counts(two)[0] > 20
    assert one.to_dict()["numa_balancing"]["pages_migrated"] > 1000
    assert two.to_json(host=False) == one.to_json(host=False)


@pytest.mark.parametrize("kw", [dict(fast_forward="2,20"), dict(thp="always"),
                                dict(cpu={"start_skew_ns": 5000})],
                         ids=["fast-forward", "thp", "start-skew"])
def test_where_it_meets_fast_forward_thp_and_skewed_starts(kw):
    """Skipped stretches (fast-forward), huge-page faults (Python's, mid-quantum) and threads
    that start apart: quanta still run at once, and the bytes are the same."""
    base = dict(kernel="stream", op="triad", threads=8, size="8MiB", repeat=12,
                machine="clx-2s", numactl="--interleave=all", **kw)
    one, two = _run(1, **base), _run(2, **base)
    assert _counts(two)[0] > 0
    assert two.to_json(host=False) == one.to_json(host=False)


@settings(max_examples=16, deadline=None, derandomize=True)
# the case that found the tiering hot set reading the last phase's program at a phase start
# (an IndexError): serial init long enough to end past NUMA balancing's first sample bin
@example(machine="cxl-1s", kernel="stream", numactl="--interleave=all", balancing=1,
         thp=None, pin=False, ff=False, threads=2, size="2MiB")
@given(machine=st.sampled_from(["clx-2s", "cxl-1s", "skx-2s-snc2", "cxl-small"]),
       kernel=st.sampled_from(["stream", "gups", "zipf", "kv"]),
       numactl=st.sampled_from([None, "--interleave=all", "--preferred=1",
                                "--weighted-interleave=all", "--cpunodebind=0 --membind=1"]),
       balancing=st.sampled_from([None, 1, 2, 3]), thp=st.sampled_from([None, "always"]),
       pin=st.booleans(), ff=st.booleans(), threads=st.sampled_from([2, 4]),
       size=st.just("1MiB"))
def test_features_together_give_the_same_bytes_on_one_and_two_threads(
        machine, kernel, numactl, balancing, thp, pin, ff, threads, size):
    """Where the features meet (a policy, NUMA balancing or tiering scanning every
    millisecond, huge pages, threads free to move, fast-forward): two host threads give the
    bytes one gives, and nothing fails on the way (the example above raised an IndexError
    until the run pointed ``programs_ops`` at a phase's program before the phase started)."""
    kw = dict(kernel=kernel, threads=threads, size=size, machine=machine, numactl=numactl,
              thp=thp, pin=pin, fast_forward="2,20" if ff else None, seed=3)
    if kernel == "stream":
        kw.update(op="triad", repeat=6, init="serial")
    if balancing:
        kw.update(numa_balancing=balancing,
                  balancing_knobs={"scan_delay_ms": 1, "scan_period_min_ms": 1})
    one, two = _run(1, **kw), _run(2, **kw)
    assert two.to_json(host=False) == one.to_json(host=False)


def test_tlb_walks_run_at_once_and_give_the_same_bytes():
    """Per-CPU TLBs with page walks: their rows are copied and put back like the rest."""
    kw = dict(kernel="gups", threads=8, size="16MiB", count=40000, cpu={"tlb": True},
              machine="clx-2s")
    one, two = _run(1, **kw), _run(2, **kw)
    assert _counts(two)[0] > 5
    assert one.to_dict()["tlb"]["page_walks"] > 1000
    assert two.to_json(host=False) == one.to_json(host=False)


def test_an_llc_keeps_the_quanta_in_order():
    """The CPUs share the LLC's sets: no quantum runs at once, the same bytes."""
    kw = dict(kernel="gups", threads=8, size="16MiB", count=40000,
              cpu={"llc": {"size": "1MiB"}}, machine="clx-2s")
    one, two = _run(1, **kw), _run(2, **kw)
    assert _counts(two) == (0, 0)
    assert two.to_json(host=False) == one.to_json(host=False)


def test_threads_are_gone_after_a_run():
    """A sweep forks its workers after runs in its own process: no pool may outlive a run."""
    _run(2)
    assert not [t for t in threading.enumerate() if t.name.startswith("numasim-bound")]


def test_bad_thread_counts_name_the_field(monkeypatch):
    with pytest.raises(ConfigError) as e:
        _run(0)
    assert e.value.field == "host_threads"
    monkeypatch.setenv(ENV, "many")
    with pytest.raises(ConfigError) as e:
        host_threads(None)
    assert e.value.field == ENV
    monkeypatch.setenv(ENV, "3")
    assert host_threads(None) == 3 and host_threads(2) == 2


def test_put_back_restores_every_array_and_waits_longer_each_time():
    """RunAhead's contract: a quantum where any CPU stops leaves every array as it was;
    the next attempts wait 1, 2, 4 ... quanta; a new phase tries at once."""
    import numpy as np

    from numasim.machine.ahead import MAX_BACKOFF, RunAhead

    a, b = np.arange(12.0).reshape(3, 4), np.zeros(5, dtype=np.uint8)
    before = a.copy(), b.copy()

    def quantum(c: int) -> int:
        a[c] += 1.0  # each CPU writes its own row ...
        b[c] = 1  # ... and a shared byte, as the accessed bits
        return 0 if c != 2 else 19  # CPU 2 stops (kswapd's step)

    ra = RunAhead(2)
    ra.phase_start()
    try:
        assert not ra.run([0, 1, 2], [a, b], quantum)
        assert (a == before[0]).all() and (b == before[1]).all()
        waits, n = [], 0  # quanta run in order without trying, between attempts
        for _ in range(300):
            tried = ra.put_back
            ra.run([0, 1, 2], [a, b], quantum)
            if ra.put_back > tried:
                waits.append(n)
                n = 0
            else:
                n += 1
        assert waits[:4] == [1, 2, 4, 8] and max(waits) == MAX_BACKOFF
        assert (a == before[0]).all() and (b == before[1]).all()
        ra.phase_start()
        assert ra.skip == 0
        assert ra.run([0, 1], [a, b], quantum) and ra.done == 1
        assert (a[:2] == before[0][:2] + 1).all() and b[:2].all()
    finally:
        ra.phase_end()


def test_the_engine_puts_back_the_accessed_bits():
    """Reclaim reads the accessed bits a quantum sets: they are among the arrays put back
    (a quantum run at once and put back must not leave bits the turns in order would not)."""
    from numasim.machine.fast import FastEngine

    seen = {}
    orig = FastEngine._ahead_arrays

    def spy(self):
        arrays = orig(self)
        seen["young"] = any(x is self.sim.kswapd.young_arr() for x in arrays)
        seen["hist"] = any(x is self.sim.hist for x in arrays)
        return arrays

    FastEngine._ahead_arrays = spy
    try:
        _run(2)
    finally:
        FastEngine._ahead_arrays = orig
    assert seen == {"young": True, "hist": True}
