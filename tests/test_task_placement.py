"""Task placement under NUMA balancing (numasim.mm.task_placement, numab_clock's re-homing).

* The kernel rule (``task_numa_migrate``), on the simulated kernel alone: a task not on its
  preferred node moves to an idle CPU it may use there while the move stays within the
  imbalance the load balancer allows; otherwise it swaps with a running task that gains
  from the exchange (``task_numa_compare``: the sum of the two fault weights must improve by
  more than SMALLIMP); a pinned task, or a partner that may not run on our CPU, stays put.
* In time, both engines: an unpinned thread on node 0 whose memory is bound to node 1 with
  ``MPOL_F_NUMA_BALANCING`` (pages that cannot move: BIND|MOF never migrates off the mask)
  moves to node 1 at the first hinting fault after the scanner's first full pass
  (``task_numa_placement`` runs once per pass); the local fraction then is 1 and no page
  moved.  With the default policy Linux moves the pages first (the first passes' faults
  migrate them toward the thread: the early rule of ``should_numa_migrate_memory``), so the
  preferred node becomes the thread's own and it stays.
* A pinned thread never moves; ``task_placement=0`` gives the same numbers.
"""

from __future__ import annotations

import pytest

from numasim.api import run
from numasim.errors import ConfigError
from numasim.kernel_settings import check_knob
from numasim.mm.kernel import Kernel
from numasim.mm.numa_balancing import numab
from numasim.topology.loaders import load_machine
from numasim.workloads.model import Phase, Region, Workload

SHORT = {"scan_delay_ms": 10, "scan_period_min_ms": 4, "scan_size_mb": 1}
COMPARED = ("cycles", "runtime_s", "bandwidth_GBps", "accesses", "latency_ns",
            "latency_histogram", "local_fraction", "pages_per_node", "numastat", "threads",
            "phases", "resources", "page_faults")


@pytest.fixture(scope="module")
def clx():
    return load_machine("clx-2s")  # 2 nodes x 48 CPUs (node 1: 24-47, 72-95): imb_numa_nr 6


# ------------------------------------------------------------------ the kernel rule
def _kernel(clx, cpus: list[int], allowed: list[set[int]] | None = None):
    """A process with one thread per CPU in ``cpus``, every one running, balancing on."""
    k = Kernel(clx, "6.12")
    nb = numab(k)
    nb.set_mode(1)
    main = k.new_process(cpus[0])
    tasks = [main] + [k.new_thread(main, c) for c in cpus[1:]]
    allowed = allowed or [set(clx.cpus)] * len(tasks)
    nb.placement.attach({t: frozenset(a) for t, a in zip(tasks, allowed, strict=True)})
    return k, nb, tasks


def _faults(nb, t: int, node_faults: dict[int, int], preferred: int) -> None:
    """Give task t decayed fault counts (MEM, private) and a preferred node."""
    tn = nb._task(t)
    tn.has_faults = True
    for n, f in node_faults.items():
        tn.mem[n, 1] = f
    tn.total_numa_faults = sum(node_faults.values())
    tn.numa_preferred_nid = preferred


def test_a_task_moves_to_an_idle_cpu_of_its_preferred_node(clx):
    k, nb, (a, b) = _kernel(clx, [0, 24])
    _faults(nb, a, {1: 1000}, 1)
    assert nb.placement.task_numa_migrate(a)
    assert k.task_node(a) == 1 and int(k.ks.tasks[a, 1]) == 25  # 24 is b's
    assert nb.placement.counters == {"numa_task_migrated": 1, "numa_task_swapped": 0,
                                     "sched_stick_numa": 0}
    assert nb.placement.nr_migrations == {a: 1}


def test_too_much_imbalance_means_a_swap_with_a_task_that_prefers_our_node(clx):
    # 8 running tasks per node: moving one more to node 1 (9 > imb_numa_nr 6) is refused
    cpus = list(range(8)) + list(range(24, 32))
    k, nb, tasks = _kernel(clx, cpus)
    a, b = tasks[0], tasks[8]
    _faults(nb, a, {0: 100, 1: 900}, 1)
    _faults(nb, b, {0: 800, 1: 200}, 0)
    assert nb.placement.task_numa_migrate(a)
    assert int(k.ks.tasks[a, 1]) == 24 and int(k.ks.tasks[b, 1]) == 0
    assert nb.placement.counters["numa_task_swapped"] == 1
    assert [m.kind for m in nb.placement.events] == ["swap", "swap"]


def test_no_swap_when_it_does_not_improve_by_smallimp(clx):
    cpus = list(range(8)) + list(range(24, 32))
    k, nb, tasks = _kernel(clx, cpus)
    a = tasks[0]
    _faults(nb, a, {0: 490, 1: 510}, 1)  # taskimp 20 < SMALLIMP; partners have no faults
    assert not nb.placement.task_numa_migrate(a)
    assert k.task_node(a) == 0
    assert nb.placement.counters["sched_stick_numa"] == 1


def test_pinned_tasks_and_partners_stay(clx):
    cpus = list(range(8)) + list(range(24, 32))
    allowed = [{c} for c in cpus]
    allowed[0] = set(clx.cpus)  # a may move, every partner is pinned
    k, nb, tasks = _kernel(clx, cpus, allowed)
    a, b = tasks[0], tasks[8]
    _faults(nb, a, {1: 1000}, 1)
    _faults(nb, b, {0: 1000}, 0)
    assert not nb.placement.task_numa_migrate(a)  # b may not run on a's CPU
    _faults(nb, b, {1: 1000}, 1)
    assert not nb.placement.task_numa_migrate(b)  # pinned itself
    assert [k.task_node(t) for t in (a, b)] == [0, 1]


def test_the_switch_is_checked(clx):
    assert check_knob("task_placement", 0, "f") == 0
    with pytest.raises(ConfigError, match="task_placement must be 0"):
        check_knob("task_placement", 2, "--balancing-knob")
    k, nb, (a, b) = _kernel(clx, [0, 24])
    nb.set_knob("task_placement", 0)
    _faults(nb, a, {1: 1000}, 1)
    assert not nb.placement.task_numa_migrate(a) and k.task_node(a) == 0


# ------------------------------------------------------------------ in time
def bound(size: int, repeat: int, pin: bool = False, compute: int | None = None) -> Workload:
    """Thread 1 (node 1) first-touches memory bound to node 1 with MPOL_F_NUMA_BALANCING;
    thread 0 (node 0, unpinned unless ``pin``) then reads it."""
    return Workload(name="bound", threads=2, cpus=[0, 24], pin=pin,
                    numactl=["--balancing", "--membind=1"], regions=[Region("a", size)],
                    phases=[Phase("init", "init", threads=[1]),
                            Phase("read", "stride", stride=64, repeat=repeat, threads=[0],
                                  compute=compute)])


def _numbers(d: dict) -> dict:
    out = {k: v for k, v in d.items() if k not in ("kernel_mm", "numa_balancing")}
    out["phases"] = [{k: v for k, v in p.items()
                      if k not in ("numa_hint_faults", "pages_migrated")} for p in d["phases"]]
    return out


def test_the_thread_moves_to_its_memory_after_the_first_pass(clx):
    d = run(clx, bound(2 << 20, 120), numa_balancing=True,
            balancing_knobs=SHORT).to_dict(host=False)
    nb = d["numa_balancing"]
    tp = nb["task_placement"]
    assert d["kernel_mm"]["task_placement"] is True
    assert nb["pages_migrated"] == 0 and d["pages_per_node"]["a"] == {"0": 0, "1": 512}
    assert tp["numa_task_migrated"] == 1 and tp["numa_task_swapped"] == 0
    (mv,) = tp["moves"]
    assert (mv["thread"], mv["from_node"], mv["to_node"], mv["kind"]) == (0, 0, 1, "migrate")
    assert mv["to_cpu"] == 25  # the lowest idle CPU of node 1 (24 holds the init thread)
    t0 = tp["threads"][0]
    assert (t0["node_start"], t0["node_end"], t0["numa_preferred_nid"]) == (0, 1, 1)
    assert d["threads"][0]["node"] == 0  # the row says where it started
    rows = nb["intervals"]
    faults = [x["t_ms"] for x in rows if x["hint_faults"]]
    start_ms = d["phases"][0]["seconds"] * 1e3
    # nothing before scan_delay of the reader's CPU time; placement needs one full pass
    # (2 MiB at 1 MiB a scan), so the move comes with the faults of a later scan
    assert faults[0] >= start_ms + SHORT["scan_delay_ms"]
    assert mv["t_ms"] > faults[0] - nb["interval_ms"]
    before = [x["local_fraction"] for x in rows
              if start_ms + 4 < x["t_ms"] < mv["t_ms"] and x["local_fraction"] is not None]
    after = [x["local_fraction"] for x in rows
             if x["t_ms"] > mv["t_ms"] + nb["interval_ms"] and x["local_fraction"] is not None]
    assert before and max(before) == 0.0
    assert after and min(after) > 0.99
    # the series says where the threads were: both on node 1 from the move on
    assert [x["threads_per_node"] for x in rows if x["t_ms"] < mv["t_ms"]][-1] == {0: 1, 1: 1}
    assert [x["threads_per_node"] for x in rows if x["t_ms"] > mv["t_ms"]][0] == {0: 0, 1: 2}
    assert "1 task moves + 0 swaps (thread:node 0:0->1)" in run(
        clx, bound(2 << 20, 120), numa_balancing=True, balancing_knobs=SHORT).summary()


def test_with_the_default_policy_linux_moves_the_pages_first(clx):
    wl = bound(2 << 20, 120)
    wl.numactl = []  # first touch by thread 1 puts the pages on node 1
    d = run(clx, wl, numa_balancing=True, balancing_knobs=SHORT).to_dict(host=False)
    tp = d["numa_balancing"]["task_placement"]
    assert d["pages_per_node"]["a"] == {"0": 512, "1": 0}
    assert tp["moves"] == [] and tp["threads"][0]["numa_preferred_nid"] == 0


def test_pinned_is_placement_off_to_the_bit(clx):
    knobs_off = dict(SHORT, task_placement=0)
    pinned = run(clx, bound(2 << 20, 60, pin=True), numa_balancing=True,
                 balancing_knobs=SHORT).to_dict(host=False)
    off = run(clx, bound(2 << 20, 60), numa_balancing=True,
              balancing_knobs=knobs_off).to_dict(host=False)
    assert pinned["numa_balancing"]["task_placement"]["moves"] == []
    assert off["numa_balancing"]["task_placement"]["on"] is False
    assert off["kernel_mm"]["task_placement"] is False
    assert _numbers(pinned) == _numbers(off)
    assert pinned["phases"][1]["local_fraction"] == 0.0  # stuck remote: the pages cannot move


def test_engines_agree_on_who_moved_and_when(clx):
    # compute cycles between accesses: simulated milliseconds for few accesses
    wl = bound(1 << 20, 3, compute=1000)
    knobs = dict(SHORT, scan_delay_ms=1)
    fast = run(clx, wl, engine="fast", numa_balancing=True,
               balancing_knobs=knobs).to_dict(host=False)
    exact = run(clx, wl, engine="exact", numa_balancing=True,
                balancing_knobs=knobs).to_dict(host=False)
    tf, te = (x["numa_balancing"]["task_placement"] for x in (fast, exact))
    assert len(tf["moves"]) == 1 and tf["threads"] == te["threads"]
    for mf, me in zip(tf["moves"], te["moves"], strict=True):
        assert {k: v for k, v in mf.items() if k != "t_ms"} == \
            {k: v for k, v in me.items() if k != "t_ms"}
        assert mf["t_ms"] == pytest.approx(me["t_ms"], abs=0.01)
    # one thread, nobody to queue behind: the engines agree to the bit, as without moves
    for key in COMPARED:
        assert fast[key] == exact[key], key


# ------------------------------------------------------------------ reachable
def test_the_command_line_reaches_it(capsys):
    from numasim.cli import main as cli_main

    knobs = ["--balancing-knob", "scan_delay_ms=10", "--balancing-knob", "scan_period_min_ms=4",
             "--balancing-knob", "scan_size_mb=1"]
    argv = ["numactl", "--numa-balancing", *knobs, "--balancing", "--membind=1", "--",
            "stride", "--threads", "1", "--size", "2MiB", "--repeat", "120",
            "--machine", "clx-2s", "--no-progress"]
    assert cli_main(argv[:-3] + ["--no-pin"] + argv[-3:]) == 0
    out = capsys.readouterr().out
    assert "1 task moves + 0 swaps (thread:node 0:0->1)" in out
    assert "(moved 1x, now cpu 24 node 1)" in out
    assert cli_main(argv) == 0  # pinned by default
    assert "threads pinned" in capsys.readouterr().out
    assert cli_main(argv[:-3] + ["--no-pin", "--balancing-knob", "task_placement=0"]
                    + argv[-3:]) == 0
    assert "task placement off" in capsys.readouterr().out
    assert cli_main(["numactl", "--balancing-knob", "task_placement=2", "--", "stream",
                     "--size", "64KiB", "--machine", "clx-2s"]) == 2
    err = capsys.readouterr().err
    assert "task_placement must be 0 (off) or 1 (on)" in err and "Traceback" not in err


def test_workload_and_experiment_yaml_reach_it():
    from numasim.experiments.params import check_numa_balancing, check_workload_option
    from numasim.workloads.schema import loads

    text = "name: w\nthreads: 2\npin: {}\nregions: [{{name: a, size: 1MiB}}]\n" \
           "phases: [{{kernel: init}}]\n"
    assert loads(text.format("false")).pin is False
    assert loads(text.format("true")).pin is True
    with pytest.raises(ConfigError) as e:
        loads(text.format("sometimes"))
    assert "pin" in str(e.value)
    assert check_workload_option("pin", False) is False
    with pytest.raises(ValueError, match="pin must be true or false"):
        check_workload_option("pin", "no")
    assert check_numa_balancing({"task_placement": 0})["task_placement"] == 0


def test_the_machine_yaml_reaches_it():
    from numasim.topology.loaders import yaml_machine

    text = ("name: m\nnodes:\n  - {id: 0, cpus: 0-3, memory: 1GiB}\n"
            "  - {id: 1, cpus: 4-7, memory: 1GiB}\n"
            "kernel: {numa_balancing: 1, numa_balancing_task_placement: %s}\n")
    m = yaml_machine.loads(text % 0)
    assert not numab(Kernel(m, "6.12")).placement.enabled
    assert numab(Kernel(yaml_machine.loads(text % 1), "6.12")).placement.enabled
    with pytest.raises(ConfigError, match="numa_balancing_task_placement"):
        yaml_machine.loads(text % 5)
