"""Task placement under NUMA balancing: moving an unpinned thread toward its memory.

Linux (``kernel/sched/fair.c``, the same in 6.1 and 6.12) does this from the hinting fault:
``task_numa_fault`` runs ``task_numa_placement`` (decayed per-node fault counts pick
``numa_preferred_nid``; :mod:`numasim.mm.numa_balancing`) and then ``numa_migrate_preferred``,
which re-arms the retry timer (``numa_migrate_retry = now + min(1 s, numa_scan_period/16)``)
and, when the task is not on its preferred node, calls ``task_numa_migrate``:

* ``task_numa_find_cpu`` on the preferred node: if that node has spare capacity and the move
  would not unbalance the two nodes beyond what the load balancer tolerates
  (``adjust_numa_imbalance``: an imbalance of up to ``NUMA_IMBALANCE_MIN`` = 2 tasks is
  allowed while the destination runs at most ``imb_numa_nr`` tasks), the task moves to an
  idle CPU it may use there (``migrate_task_to``);
* otherwise every CPU of that node it may use is tried as a swap (``task_numa_compare``):
  the task running there must be allowed on our CPU, and the swap must improve the sum of the
  two tasks' fault weights (``task_weight`` = 1000 x faults on a node / all faults) by at
  least ``SMALLIMP`` = 30, with the kernel's bias for a partner whose own preferred node is
  ours (+1/8) and against one already on its preferred node (-1/16); the best such partner
  is swapped with (``migrate_swap``);
* if the preferred node offers nothing, the other nodes are tried the same way; if nothing
  is found the task stays (``sched_stick_numa``).

A pinned thread (one allowed CPU) never finds a CPU, so it stays, as in Linux.

What numasim simplifies (each a documented choice):

* no numa groups (``numa_group``): every task is weighed by its own faults (``taskimp``),
  shared faults only count as faults;
* every thread of a run is one busy CPU (numasim does not time-share CPUs): a node's
  ``nr_running`` is the run's threads taking part in the current phase on its CPUs, its load
  is that count, a node is ``node_has_spare`` while it has fewer running threads than CPUs
  (``numa_classify``) and ``node_fully_busy`` otherwise; a CPU is idle when no thread of
  the run is placed on it (a thread sleeping between phases keeps its CPU);
* so a task never moves onto a busy CPU (Linux may, when the load allows it: the CPU would
  then be time-shared); with equal loads the swap's load test always passes;
* ``imb_numa_nr`` is Linux's value for one last-level cache per node: 1/8 of the node's
  CPUs, at least 1 (``build_sched_domains``; derived from the kernel source, not measured);
* ``score_nearby_nodes`` is left out (it only matters on topologies with more than two
  distinct distances, ``NUMA_BACKPLANE``/``NUMA_GLUELESS_MESH``);
* the idle CPU taken is the lowest-numbered one (Linux prefers an idle core: numasim has no
  SMT siblings);
* the periodic load balancer is not modelled (with at most one thread per CPU and the
  imbalance rule above it has nothing to undo).

Counters: Linux 6.1 and 6.12 count task moves only through trace events
(``sched_move_numa``, ``sched_swap_numa``, ``sched_stick_numa``) and ``se.nr_migrations`` in
``/proc/PID/sched``; kernels from 2025 (after 6.12) add ``numa_task_migrated`` and
``numa_task_swapped`` (``/proc/vmstat``, ``/proc/PID/sched``, memory.stat).  numasim reports
all of them under those names (:attr:`TaskPlacement.counters`).

The switch: task placement is on whenever NUMA balancing is (as in Linux, which has no knob
for it); numasim's ``task_placement`` setting (0/1, default 1) turns it off to isolate page
migration: ``--balancing-knob task_placement=0``, the machine YAML's
``kernel: {numa_balancing_task_placement: 0}``, ``balancing_knobs={"task_placement": 0}``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from numasim.mm import state as S

SMALLIMP = 30
NUMA_IMBALANCE_MIN = 2
MAX_EVENTS = 10000  # moves kept in the event log (the counters keep counting)
COUNTERS = ("numa_task_migrated", "numa_task_swapped", "sched_stick_numa")


@dataclass
class Move:
    """One task move: ``kind`` ``migrate`` (to an idle CPU) or ``swap`` (with ``other``)."""

    ms: float
    task: int
    src_cpu: int
    dst_cpu: int
    kind: str
    other: int = -1


@dataclass
class _Env:
    """``struct task_numa_env`` (without the group fields)."""

    t: int
    src_cpu: int
    src_nid: int
    dst_nid: int = -1
    best_task: int = -1
    best_imp: int = 0
    best_cpu: int = -1
    src_running: int = 0
    dst_running: int = 0
    dst_weight: int = 0
    dst_idle: int = -1


@dataclass
class TaskPlacement:
    """The scheduler's side of NUMA balancing for one kernel (see the module)."""

    nb: object
    enabled: bool = True
    cpus_allowed: dict[int, frozenset[int]] = field(default_factory=dict)
    running: Callable[[int], bool] | None = None  # None: every registered task runs
    on_move: Callable[[Move], None] | None = None
    cnt: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTERS, 0))
    nr_migrations: dict[int, int] = field(default_factory=dict)
    events: list[Move] = field(default_factory=list)

    # ------------------------------------------------------------ setup
    def attach(self, cpus_allowed: dict[int, frozenset[int]],
               running: Callable[[int], bool] | None = None,
               on_move: Callable[[Move], None] | None = None) -> None:
        """The tasks the scheduler may place (with their allowed CPUs), which of them are
        running now, and who is told when one moves (the timing engine)."""
        self.cpus_allowed = dict(cpus_allowed)
        self.running = running
        self.on_move = on_move

    @property
    def counters(self) -> dict[str, int]:
        return dict(self.cnt)

    def pinned(self, t: int) -> bool:
        """One allowed CPU, or a task numasim does not place (scripts' tasks)."""
        return len(self.cpus_allowed.get(t, ())) <= 1

    # ------------------------------------------------------------ weights
    def _ks(self):
        return self.nb.k.ks

    def task_weight(self, t: int, nid: int) -> int:
        """``task_weight``: this task's share of its faults on ``nid``, in 1/1000."""
        tn = self.nb.tasks.get(t)
        if tn is None or not tn.has_faults or tn.total_numa_faults <= 0:
            return 0
        faults = int(tn.mem[nid, 0]) + int(tn.mem[nid, 1])
        return 1000 * faults // int(tn.total_numa_faults)

    def _preferred(self, t: int) -> int:
        tn = self.nb.tasks.get(t)
        return -1 if tn is None else tn.numa_preferred_nid

    def _cpu(self, t: int) -> int:
        return int(self._ks().tasks[t, S.T_CPU])

    def _is_running(self, t: int) -> bool:
        return self.running is None or self.running(t)

    def _owners(self) -> dict[int, int]:
        """CPU -> the task of the run placed on it."""
        ks = self._ks()
        return {int(ks.tasks[t, S.T_CPU]): t for t in self.cpus_allowed
                if ks.tasks[t, S.T_ALIVE]}

    def imb_numa_nr(self, nid: int) -> int:
        return max(1, len(self._node_cpus(nid)) >> 3)

    def _node_cpus(self, nid: int) -> list[int]:
        return sorted(c for c, n in self.nb.k.machine.cpu_to_node.items() if n == nid)

    # ------------------------------------------------------------ task_numa_migrate
    def task_numa_migrate(self, t: int) -> bool:
        """Try to move task t to its preferred node; True when it moved."""
        if not self.enabled or self.pinned(t):
            return False
        nid = self._preferred(t)
        if nid < 0:
            return False
        src_cpu = self._cpu(t)
        env = _Env(t, src_cpu, self.nb.k.machine.cpu_to_node[src_cpu])
        owners = self._owners()
        base = self.task_weight(t, env.src_nid)
        self._find_cpu(env, owners, nid, self.task_weight(t, nid) - base)
        if env.best_cpu < 0:
            for other in self.nb.k.machine.node_ids:
                if other in (env.src_nid, nid) or not self._node_cpus(other):
                    continue
                # without a numa group groupimp is 0, so no node is skipped here
                self._find_cpu(env, owners, other, self.task_weight(t, other) - base)
        if env.best_cpu < 0:
            self.cnt["sched_stick_numa"] += 1
            return False
        if env.best_task < 0:
            self._move(t, env.best_cpu, "migrate")
            self.cnt["numa_task_migrated"] += 1
        else:
            self._move(env.best_task, src_cpu, "swap", t)
            self._move(t, env.best_cpu, "swap", env.best_task)
            self.cnt["numa_task_swapped"] += 1
        return True

    def _stats(self, env: _Env, owners: dict[int, int], dst_nid: int) -> None:
        """``update_numa_stats`` for both nodes: running tasks, CPUs, the first idle CPU
        the task may use on the destination."""
        allowed = self.cpus_allowed[env.t]
        run_on = {}
        for cpu, o in owners.items():
            if self._is_running(o):
                n = self.nb.k.machine.cpu_to_node[cpu]
                run_on[n] = run_on.get(n, 0) + 1
        env.dst_nid = dst_nid
        env.src_running = run_on.get(env.src_nid, 0)
        env.dst_running = run_on.get(dst_nid, 0)
        cpus = self._node_cpus(dst_nid)
        env.dst_weight = len(cpus)
        env.dst_idle = next((c for c in cpus if c not in owners and c in allowed), -1)

    def _find_cpu(self, env: _Env, owners: dict[int, int], dst_nid: int,
                  taskimp: int) -> None:
        """``task_numa_find_cpu``."""
        self._stats(env, owners, dst_nid)
        maymove = False
        if env.dst_running < env.dst_weight:  # node_has_spare
            src_running = env.src_running - 1
            dst_running = env.dst_running + 1
            imbalance = max(0, dst_running - src_running)
            if dst_running <= self.imb_numa_nr(dst_nid) and imbalance <= NUMA_IMBALANCE_MIN:
                imbalance = 0  # adjust_numa_imbalance
            if not imbalance:
                maymove = True
                if env.dst_idle >= 0:
                    env.best_cpu, env.best_task, env.best_imp = env.dst_idle, -1, 0
                    return
        # node_fully_busy: moving one equal load to the busier node never balances better,
        # and numasim never puts two threads on one CPU; only swaps are left
        allowed = self.cpus_allowed[env.t]
        for cpu in self._node_cpus(dst_nid):
            if cpu in allowed and self._compare(env, owners.get(cpu, -1), cpu, taskimp,
                                                maymove):
                break

    def _compare(self, env: _Env, cur: int, cpu: int, taskimp: int, maymove: bool) -> bool:
        """``task_numa_compare`` for a swap with ``cur`` (the task on ``cpu``); returns
        True to stop the search."""
        if cur < 0 or not self._is_running(cur):
            return False  # idle, or its thread sleeps: nothing to swap with
        if cur == env.t:
            return True
        if env.src_cpu not in self.cpus_allowed.get(cur, ()):
            return False
        cur_pref = self._preferred(cur)
        if env.best_task >= 0 and self._preferred(env.best_task) == env.src_nid and \
                cur_pref != env.src_nid:
            return False
        imp = taskimp + self.task_weight(cur, env.src_nid) - \
            self.task_weight(cur, env.dst_nid)
        if cur_pref == env.dst_nid:
            imp -= _cdiv(imp, 16)
        if cur_pref == env.src_nid:
            imp += _cdiv(imp, 8)
        prefer = env.best_task >= 0 and cur_pref == env.src_nid and \
            self._preferred(env.best_task) != env.src_nid
        if not prefer and (imp < SMALLIMP or imp <= env.best_imp + SMALLIMP // 2):
            return False
        # equal loads: task_h_load(p) - task_h_load(cur) == 0, the swap keeps the balance
        env.best_cpu, env.best_task, env.best_imp = cpu, cur, imp
        return not maymove and self._preferred(cur) == env.src_nid

    def _move(self, t: int, cpu: int, kind: str, other: int = -1) -> None:
        """``migrate_task_to`` / one half of ``migrate_swap``: the task runs on ``cpu``
        from now on; ``update_scan_period`` as it changes node."""
        k = self.nb.k
        src = self._cpu(t)
        src_nid, dst_nid = k.machine.cpu_to_node[src], k.machine.cpu_to_node[cpu]
        self.nb.update_scan_period(t, src_nid, dst_nid)
        k.set_cpu(t, cpu)
        tn = self.nb.tasks.get(t)
        if tn is not None:
            tn.last_node = dst_nid
        self.nr_migrations[t] = self.nr_migrations.get(t, 0) + 1
        mv = Move(float(self.nb.now), t, src, cpu, kind, other)
        if len(self.events) < MAX_EVENTS:
            self.events.append(mv)
        if self.on_move is not None:
            self.on_move(mv)


def _cdiv(a: int, b: int) -> int:
    """C's integer division (toward zero)."""
    q = abs(a) // b
    return q if a >= 0 else -q
