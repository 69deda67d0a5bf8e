"""Run a scenario script on the simulated kernel, as the oracle's probe runs it on Linux.

The probe (``numaprobe``) is a small static program: it keeps a table of the regions it
mapped, turns each script line into raw system calls, and prints what the kernel answered.
:class:`Runner` is that program re-enacted on a :class:`~numasim.mm.kernel.Kernel`: one
:class:`Proc` per probe process (``fork`` blocks make children, ``exec`` replaces the image),
the same defaults (pinned to CPU 0, nodemasks of 1024 bits with ``maxnode`` 1025, ``touch``
writes byte ``index|1`` to each page) and the same output lines.

What a real process does besides the scenario's own calls -- its own page tables, the pages
its libc touches -- is modelled where the oracle shows it matters (see :class:`ProbeImage`).
"""

from __future__ import annotations

import copy
import errno as E
from dataclasses import dataclass, field

import numpy as np

from numasim.bitmap import format_list
from numasim.mm import state as S
from numasim.mm import syscalls as sc
from numasim.mm.constants import (
    KGEN_2_6_7,
    MODE_NAMES,
    MPOL_F_NUMA_BALANCING,
    MPOL_F_RELATIVE_NODES,
    MPOL_F_STATIC_NODES,
    MPOL_LOCAL,
    NUMASTAT_NAMES,
)
from numasim.mm.kernel import PAGE_SHIFT, Kernel, Segfault, TaskKilled
from numasim.mm.nodemask import UserMask
from numasim.mm.numa_balancing import numab
from numasim.mm.script.balance_cmds import BalanceCommands
from numasim.mm.script.lang import (
    DEFAULT_MAXNODE,
    MASK_BITS,
    Addr,
    Line,
    MaskArg,
    PolicyArgs,
    matching_endfork,
)
from numasim.mm.script.output import Record
from numasim.mm.script.vfs import VFile, Vfs, VfsError

PAGE = 1 << PAGE_SHIFT
ULONG = (1 << 64) - 1
MAX_REGIONS = 256
MAX_NODES = 64  # the probe counts pages per node for nodes < 64
TASK_SIZE = 0x7FFFFFFFF000

ERRNAMES = {0: "0", E.EPERM: "EPERM", E.ENOENT: "ENOENT", E.ESRCH: "ESRCH", E.EIO: "EIO",
            E.E2BIG: "E2BIG", E.EBADF: "EBADF", E.EAGAIN: "EAGAIN", E.ENOMEM: "ENOMEM",
            E.EACCES: "EACCES", E.EFAULT: "EFAULT", E.EBUSY: "EBUSY", E.EEXIST: "EEXIST",
            E.ENODEV: "ENODEV", E.EINVAL: "EINVAL", E.ENOSPC: "ENOSPC", E.ERANGE: "ERANGE",
            E.ENOSYS: "ENOSYS", E.EOPNOTSUPP: "EOPNOTSUPP", E.EXDEV: "EXDEV"}


def errname(e: int) -> str:
    """The probe's ``errname``: symbolic for the errnos it knows, else ``E<n>``."""
    return ERRNAMES.get(e, f"E{e}")


class ProbeExit(Exception):
    """The probe process ended (exit, end of its lines): status code."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


class ProbeKilled(Exception):
    """The probe process died of a signal (SIGSEGV, SIGBUS, the OOM killer's SIGKILL)."""

    def __init__(self, signal: int) -> None:
        super().__init__(signal)
        self.signal = signal


# ----------------------------------------------------------------- the process image
@dataclass(frozen=True)
class ProbeImage:
    """The probe's own address space at the first script line (a static x86-64 binary run
    with ``norandmaps``): its mappings -- text, data and brk heap from 0x400000, the stack
    below TASK_SIZE, vvar + vdso right below ``mmap_base`` -- with their page-table pages
    already there, so that numasim allocates page tables, and places ``mmap`` without
    ``at=``, exactly where the real process does."""

    text_vpn: int = 0x400  # 0x400000: text, data, bss and the brk heap
    text_pages: int = 0x100
    stack_vpn: int = 0x7FFFFFFDE  # the stack below TASK_SIZE (132 KiB)
    stack_pages: int = 0x21
    vdso_pages: int = 6  # [vvar] (4 pages) + [vdso] (2 pages) right below mmap_base


PROBE_IMAGE = ProbeImage()


# ----------------------------------------------------------------- process state
@dataclass
class Region:
    """One entry of the probe's region table."""

    id: int
    name: str
    kind: str  # anon, shared, memfd, file, fileprivate
    vpn: int
    npages: int
    vfile: VFile | None = None
    live: bool = True
    fd_open: bool = False

    @property
    def addr(self) -> int:
        return self.vpn << PAGE_SHIFT


@dataclass
class Proc:
    """One probe process: its kernel task and its user-space state."""

    pid: int
    t: int
    regions: list[Region] = field(default_factory=list)
    cur: int = -1
    in_child: int = 0
    mark: np.ndarray | None = None
    noise: set[int] = field(default_factory=set)  # see Runner.kernel_alloc_nodes
    uid: int = 0
    parent_pid: int = 1


# ----------------------------------------------------------------- the runner
class Runner(BalanceCommands):
    """Runs scripts on one simulated machine (one boot)."""

    def __init__(self, kernel: Kernel, *, image: ProbeImage = PROBE_IMAGE) -> None:
        self.k = kernel
        self.image = image
        self.records: list[Record] = []
        self.vfs = Vfs(kernel, self)
        self.pids: dict[int, int] = {}  # pid -> kernel task
        self._proc_list: list[Proc] = []
        self.next_pid = 100
        self.line = 0
        self.contents: dict[tuple, int] = {}  # what touch/pwrite wrote (first byte of a page)
        m = kernel.machine
        self.lowmem_reserve_ratio = list(m.lowmem_reserve_ratio)
        self.wi_table: dict[int, int] = {}
        self.clock = 5.0  # seconds since boot, for console messages
        # task 0 stays the idle task (system calls take pid 0 as "the caller"); pid 1 is the
        # shell that runs the probe (the oracle's /init), without a policy
        if kernel.ks.tasks[0, S.T_ALIVE] == 0:
            idle = kernel.new_process(0)
            kernel.ks.tasks[idle, S.T_OOM_SCORE_ADJ] = -1000  # never an OOM victim
        init = kernel.new_process(0)
        self.pids[1] = init
        kernel.task_names[init] = {"pid": 1, "comm": "init", "uid": 0, "cpuset": "/"}
        self.init_task = init

    # ------------------------------------------------------------ output
    def out(self, text: str, obj: dict | None = None, meta: dict | None = None) -> None:
        self.records.append(Record(self.line, text, obj, meta))

    def ret(self, op: str, rc: int, err: int = 0, json_op: str | None = None,
            extra: str = "") -> None:
        obj: dict = {"op": json_op or op}
        if rc < 0:
            self.out(f"ret op={op} rc={rc} errno={errname(err)}{extra}",
                     {**obj, "ret": rc, "errno": errname(err)})
        else:
            self.out(f"ret op={op} rc={rc}{extra}", {**obj, "ret": rc})

    def error(self, msg: str) -> None:
        self.out(f"error msg={msg}", {"op": "error", "msg": msg.split()[0]})

    # ------------------------------------------------------------ processes
    def spawn(self, cpu: int = 0) -> Proc:
        """A fresh probe process (the shell forked and exec'd it), pinned to ``cpu``."""
        t = self.k.fork(self.init_task)
        self.k.exec(t)
        self.k.set_cpu(t, cpu)
        pid = self._new_pid(t)
        self._build_image(t)
        return Proc(pid, t)

    def _new_pid(self, t: int, comm: str = "numaprobe") -> int:
        pid = self.next_pid
        self.next_pid += 1
        self.pids[pid] = t
        self.k.task_names[t] = {"pid": pid, "comm": comm, "uid": 0, "cpuset": "/"}
        return pid

    def _build_image(self, t: int) -> None:
        img = self.image
        k = self.k
        k.mmap(t, img.text_pages, vpn=img.text_vpn, prot=S.PROT_READ)
        k.mmap(t, img.stack_pages, vpn=img.stack_vpn)
        top = (TASK_SIZE - (128 << 20)) >> PAGE_SHIFT
        if img.vdso_pages:
            k.mmap(t, img.vdso_pages, vpn=top - img.vdso_pages, prot=S.PROT_READ)
        self._premap(t)

    def _premap(self, t: int) -> None:
        img = self.image
        self.k.premap_pgtables(t, [img.text_vpn, img.stack_vpn])

    def task_of_pid(self, pid: int) -> int | None:
        if pid == 0:
            return self.proc.t
        t = self.pids.get(pid)
        if t is None or not self.k.alive(t):
            return None
        return t

    def pid_of_task(self, t: int) -> int:
        for p, u in self.pids.items():
            if u == t:
                return p
        return -1

    # ------------------------------------------------------------ running
    def run(self, lines: list[Line], cpu: int = 0) -> int:
        """Run a whole scenario in a fresh probe process; returns the shell's exit status
        (and records ``exit rc=N`` as the oracle does)."""
        proc = self.spawn(cpu)
        self._proc_list.append(proc)
        self.proc = proc
        rc = self._run_process(proc, lines)
        self.line = lines[-1].number if lines else 0
        self.out(f"exit rc={rc}", {"op": "exit", "rc": rc})
        return rc

    def run_open(self, lines: list[Line], cpu: int = 0) -> Proc | None:
        """Run a scenario and leave its process alive, for a look at the state it built
        (``numasim explain``, ``numasim numastat``); None when the process ended first (an
        ``exit``, a kill)."""
        proc = self.spawn(cpu)
        self._proc_list.append(proc)
        self.proc = proc
        try:
            self.run_lines(proc, lines)
        except (ProbeExit, ProbeKilled):
            return None
        return proc if self.k.alive(proc.t) else None

    def _run_process(self, proc: Proc, lines: list[Line], start: int = 0) -> int:
        """Run a process until it ends; returns its wait status as the shell reports it."""
        try:
            self.run_lines(proc, lines, start)
            code = 0
        except ProbeExit as e:
            code = e.code
        except ProbeKilled as e:
            self._exit_proc(proc, e.signal)
            return 128 + e.signal
        self._exit_proc(proc, 0)
        return code

    def _exit_proc(self, proc: Proc, signal: int) -> None:
        for r in proc.regions:
            if r.live and r.fd_open:
                self._close(r)
        if self.k.alive(proc.t):
            self.k.exit(proc.t, signal)

    def run_lines(self, proc: Proc, lines: list[Line], start: int = 0) -> None:
        i = start
        while i < len(lines):
            if not self.k.alive(proc.t):
                raise ProbeKilled(int(self.k.ks.tasks[proc.t, S.T_KILLED]) or 9)
            line = lines[i]
            if line.cmd == "fork":
                self.line = line.number
                self.out(line.echo)
                self.proc = proc
                end = matching_endfork(lines, i)
                self.cmd_fork(proc, lines, i)
                i = end + 1
                continue
            self.run_line(proc, line)
            i += 1

    def run_line(self, proc: Proc, line: Line) -> None:
        self.line = line.number
        self.proc = proc
        self.out(line.echo)
        handler = getattr(self, "cmd_" + line.cmd)
        self.before_command(proc, line)  # per-CPU LRU batch drains (NUMA balancing)
        try:
            handler(proc, line, line.args)
        except TaskKilled as e:
            raise ProbeKilled(e.signal) from None
        except Segfault as e:
            self.k.exit(proc.t, e.signal)
            raise ProbeKilled(e.signal) from None
        finally:
            self.flush_console()
            if proc.mark is not None and self.k.alive(proc.t):
                proc.noise |= self.kernel_alloc_nodes(proc)

    def kernel_alloc_nodes(self, proc: Proc) -> set[int]:
        """Where the task's own kernel allocations (slab pages for VMAs, policies, sysfs
        reads...) can land now: the nodes of its policy (inside its cpuset), else the
        nearest memory node of its CPU; plus node 0, where the guest's background work
        runs.  A real numastat window may count a few extra allocations on these nodes
        (tests/data/oracle/FINDINGS.md, section 4) and nowhere else."""
        ks = self.k.ks
        t = proc.t
        mems = {int(n) for n in np.flatnonzero(ks.task_mems[t])}
        cpu_node = self.k.task_node(t)
        local = next((int(ks.zones[z, S.Z_NODE]) for z in ks.zonelist[cpu_node]
                      if z >= 0 and int(ks.zones[z, S.Z_NODE]) in mems), cpu_node)
        out = {0, local}
        p = int(ks.tasks[t, S.T_POLICY])
        if p >= 0 and int(ks.policies[p, S.P_MODE]) != MPOL_LOCAL:
            out |= set(ks.policy_nodes(p)) & mems
        return out

    def flush_console(self) -> None:
        """Kernel messages at error level reach the serial console, so the oracle's output
        has them between the probe's lines (e.g. the OOM killer's "Out of memory: Killed
        process ..."); the timestamp is numasim's own clock."""
        level = self.vfs.sysctl.get("/proc/sys/kernel/printk", "4").split()
        show = int(level[0]) > 3 if level and level[0].isdigit() else True
        for msg in self.k.console if show else ():
            self.clock += 0.001
            self.out(f"[{self.clock:12.6f}] {msg}", {"op": "console", "text": msg})
        self.k.console.clear()

    # ------------------------------------------------------------ region helpers
    def curreg(self, proc: Proc) -> Region:
        if proc.cur < 0 or not proc.regions[proc.cur].live:
            self.error("no_current_region")
            raise ProbeExit(2)
        return proc.regions[proc.cur]

    def check_range(self, r: Region, off: int, n: int) -> bool:
        if off < 0 or n < 0 or off + n > r.npages:
            self.error(f"range_outside_region off={off} n={n} region_pages={r.npages}")
            return False
        return True

    def resolve(self, proc: Proc, a: Addr) -> int:
        if a.relative:
            return (self.curreg(proc).addr + a.value) & ULONG
        return a.value

    def _mm(self, proc: Proc) -> int:
        return self.k.task_mm(proc.t)

    # ------------------------------------------------------------ user memory
    def _loc(self, mm: int, vpn: int) -> tuple | None:
        """Where the byte at vpn lives: ('a', mm, vpn) for a private page, ('o', obj, idx)
        for a shared/file page; None if nothing is mapped there."""
        k = self.k
        v = k.find_vma(mm, vpn)
        if v < 0:
            return None
        ks = k.ks
        pg = k.pte(mm, vpn)
        kind = int(ks.vmas[v, S.V_KIND])
        idx = int(ks.vmas[v, S.V_PGOFF]) + vpn - int(ks.vmas[v, S.V_START])
        if pg >= 0 and int(ks.pages[pg, S.PG_KIND]) == S.PGK_ANON:
            return ("a", mm, vpn)
        if kind == S.KIND_ANON:
            return ("a", mm, vpn)
        return ("o", int(ks.vmas[v, S.V_OBJ]), idx)

    def read_user(self, proc: Proc, addr: int, nbytes: int) -> bytes | None:
        """``copy_from_user``: the bytes, or None (EFAULT).  Reading faults pages in."""
        k = self.k
        mm = self._mm(proc)
        out = bytearray(nbytes)
        first, last = addr >> PAGE_SHIFT, (addr + nbytes - 1) >> PAGE_SHIFT
        for vpn in range(first, last + 1):
            v = k.find_vma(mm, vpn)
            if v < 0 or not k.ks.vmas[v, S.V_PROT] & S.PROT_READ:
                return None
            try:
                k.touch(proc.t, vpn, 1, write=False)
            except Segfault:
                return None
            if (vpn << PAGE_SHIFT) >= addr:
                loc = self._loc(mm, vpn)
                out[(vpn << PAGE_SHIFT) - addr] = self.contents.get(loc, 0) if loc else 0
        return bytes(out)

    def user_mask(self, proc: Proc, ptr: Addr | None, mask: MaskArg, maxnode: int
                  ) -> UserMask | None:
        """The nodemask argument as the kernel reads it: NULL, the probe's buffer, or the
        raw pointer of ``maskaddr=`` / ``old=`` / ``new=`` (read from user memory)."""
        if ptr is None:
            if mask.null:
                return None
            return UserMask.of(mask.bits)
        addr = self.resolve(proc, ptr)
        if addr == 0:
            return UserMask(null=True)
        nbits = (maxnode - 1) & ULONG
        if nbits == 0 or nbits > 8 * PAGE:
            return UserMask(fault=True)  # get_nodes decides before reading
        data = self.read_user(proc, addr, (nbits + 63) // 64 * 8)
        if data is None:
            return UserMask(fault=True)
        return UserMask(int.from_bytes(data, "little"))

    # ------------------------------------------------------------ kernel policy glue
    def install_sb_policy(self, obj: int, mpol: tuple[int, int, frozenset[int]]) -> None:
        """``mpol_shared_policy_init``: a file on a tmpfs mounted with ``mpol=`` starts with
        that policy over its whole range."""
        from numasim.mm.mempolicy import mpol_new, mpol_set_nodemask

        mode, flags, nodes = mpol
        t = self.proc.t
        try:
            pol = mpol_new(mode, flags, set(nodes))
            mpol_set_nodemask(pol, set(nodes), sc._mems_allowed(self.k, t),
                              sc._n_memory(self.k), self.k.kgen)
        except OSError:
            return
        row = sc.install_policy(self.k, pol)
        if row >= 0:
            sc.shared_policy_replace(self.k, obj, 0, 1 << 40, row)
            self.k.put_policy(row)

    def drop_shared_policy(self, obj: int) -> None:
        sc.shared_policy_replace(self.k, obj, 0, 1 << 62, -1)

    def cpuset_change(self, t: int, mems: set[int], moved: bool = False) -> None:
        sc.cpuset_set_mems(self.k, [t], set(mems), migrate=True)

    def wi_weight_shown(self, nid: int) -> int:
        return self.wi_table.get(nid, 0) or 1

    def set_wi_weight(self, nid: int, value: str) -> None:
        """``node_store`` of weighted_interleave/nodeN: a u8, 0 (or empty) = default."""
        text = value.strip()
        if text == "":
            w = 0
        else:
            from numasim.mm.script.lang import c_strtol

            v, rest = c_strtol(text)
            if v is None or rest or not 0 <= v <= 255:
                raise VfsError(E.EINVAL, "bad weight")
            w = v
        self.wi_table[nid] = w
        self.k.ks.nodeinfo[nid, S.N_WEIGHT] = w or 1

    def set_watermark_knobs(self, **knobs) -> None:
        """The sysctl handlers: min_free_kbytes and watermark_scale_factor recompute every
        zone's min/low/high marks (``setup_per_zone_wmarks``), lowmem_reserve_ratio the
        lowmem reserves (``setup_per_zone_lowmem_reserve``), from today's managed pages."""
        from numasim.topology.derive import setup_per_zone_lowmem_reserve
        from numasim.topology.model import ZoneSpec, ZoneType

        if "min_free_kbytes" in knobs:  # min_free_kbytes_sysctl_handler: the user's value
            self.k.user_min_free_kbytes = knobs["min_free_kbytes"]
        ks = self.k.ks
        d = self.k.ks.derived
        specs = [(z.node, ZoneSpec(z.type, z.start_pfn, z.spanned, z.present,
                                   int(ks.zones[z.index, S.Z_MANAGED]))) for z in d.zones]
        if "lowmem_reserve_ratio" in knobs:
            vals = knobs["lowmem_reserve_ratio"]
            self.lowmem_reserve_ratio[: len(vals)] = vals
            for nid in self.k.machine.node_ids:
                zs = {ZoneType(int(ks.zones[z.index, S.Z_TYPE])): spec
                      for z, (_n, spec) in zip(d.zones, specs, strict=True) if z.node == nid}
                res = setup_per_zone_lowmem_reserve(zs, tuple(self.lowmem_reserve_ratio))
                for z in d.zones:
                    if z.node == nid:
                        ks.zones[z.index, S.Z_RES: S.Z_RES + len(res[z.type])] = res[z.type]
            return
        self.k.setup_per_zone_wmarks(knobs.get("min_free_kbytes"),
                                     knobs.get("watermark_scale_factor"))

    @property
    def min_free_kbytes(self) -> int:
        return self.k.min_free_kbytes

    @property
    def watermark_scale_factor(self) -> int:
        return self.k.watermark_scale_factor

    # ================================================================= commands
    def cmd_echo(self, proc: Proc, line: Line, a: dict) -> None:
        pass

    def cmd_sleep(self, proc: Proc, line: Line, a: dict) -> None:
        numab(self.k).sleep(max(a["n"], 0))  # wall time passes (NUMA balancing's clock)

    def cmd_exit(self, proc: Proc, line: Line, a: dict) -> None:
        raise ProbeExit(0)

    def cmd_endfork(self, proc: Proc, line: Line, a: dict) -> None:
        if not proc.in_child:
            self.error("endfork_outside_child")
            return
        raise ProbeExit(0)

    # ------------------------------------------------------------ CPUs
    def _getcpu(self, proc: Proc) -> None:
        cpu = int(self.k.ks.tasks[proc.t, S.T_CPU])
        node = self.k.task_node(proc.t)
        self.out(f"cpu cpu={cpu} node={node}", {"op": "getcpu", "cpu": cpu, "node": node})

    def cmd_cpu(self, proc: Proc, line: Line, a: dict) -> None:
        cpu = a["n"]
        if cpu in self.k.machine.cpus:
            self.k.set_cpu(proc.t, cpu)
            self.ret("sched_setaffinity", 0, json_op="cpu")
        else:
            self.ret("sched_setaffinity", -1, E.EINVAL, json_op="cpu")
        self._getcpu(proc)

    def cmd_getcpu(self, proc: Proc, line: Line, a: dict) -> None:
        self._getcpu(proc)

    # ------------------------------------------------------------ mmap and friends
    def cmd_mmap(self, proc: Proc, line: Line, a: dict) -> None:
        k = self.k
        n = a["n"]
        kind = a["kind"]
        if kind == "file" and a["private"]:
            kind = "fileprivate"
        if len(proc.regions) >= MAX_REGIONS:
            self.error("too_many_regions")
            return
        name = a["name"] or f"r{len(proc.regions)}"
        vf: VFile | None = None
        try:
            if kind == "memfd":
                if n < 0:
                    raise VfsError(E.EINVAL, "ftruncate")
                vf = self.vfs.new_shmem(f"/memfd:{name} (deleted)", n,
                                        int(k.ks.tasks[proc.t, S.T_CPU]))
            elif kind in ("file", "fileprivate"):
                vf = self.vfs.open_file(a["path"], n, a["keep"])
        except VfsError as e:
            if kind == "memfd":
                self.ret("memfd_create", -1, e.errno, json_op="mmap")
            else:
                self.ret("open", -1, e.errno, json_op="mmap", extra=f" path={a['path']}")
            return
        if vf is not None:
            vf.opens += 1
        length = (n * PAGE) & ULONG
        at = a["at"]
        err = 0
        if length == 0 or n < 0 or length > TASK_SIZE:
            err = E.EINVAL if length == 0 else E.ENOMEM
        elif at and at & (PAGE - 1):
            err = E.EINVAL
        elif at and at + length > TASK_SIZE:
            err = E.ENOMEM
        elif kind in ("anon", "shared", "fileprivate") and \
                self.vfs.sysctl.get("/proc/sys/vm/overcommit_memory", "0").strip() != "1" \
                and not k.ks.vm_enough_memory(n):
            err = E.ENOMEM  # accountable and larger than RAM: the overcommit heuristic
        mm = self._mm(proc)
        vpn = at >> PAGE_SHIFT if at else None
        if not err and vpn is not None and k.overlaps(mm, vpn, vpn + n):
            err = E.EEXIST
        if err:
            # the probe keeps the descriptor of a file it could not map (it leaks it): the
            # file stays open, so an unlinked one keeps its pages
            self.ret("mmap", -1, err)
            return
        prot = S.PROT_READ | S.PROT_WRITE
        if kind == "anon":
            kr = k.mmap(proc.t, n, kind="anon", vpn=vpn, prot=prot)
        elif kind == "shared":
            vf = self.vfs.new_shmem("/dev/zero (deleted)", n, int(k.ks.tasks[proc.t, S.T_CPU]))
            vf.opens += 1
            kr = k.mmap(proc.t, n, kind="file", vpn=vpn, file=vf.file, shared=True, prot=prot)
        else:
            kr = k.mmap(proc.t, n, kind="file", vpn=vpn, file=vf.file,
                        shared=kind != "fileprivate", prot=prot)
        start = int(k.ks.regions[kr, S.R_START])
        r = Region(len(proc.regions), name, kind, start, n, vf, True, vf is not None)
        proc.regions.append(r)
        proc.cur = r.id
        pgoff0 = start if kind == "anon" else 0
        self.out(f"region id={r.id} name={name} kind={kind} addr={r.addr:#x} pages={n} "
                 f"vpn={start} pgoff0={pgoff0}",
                 {"op": "mmap", "region": r.id, "name": name, "kind": kind, "addr": r.addr,
                  "pages": n, "vpn": start, "pgoff0": pgoff0, "ret": r.addr})

    def _close(self, r: Region) -> None:
        if r.fd_open and r.vfile is not None:
            r.fd_open = False
            r.vfile.opens -= 1
            self.vfs.release(r.vfile)

    def cmd_region(self, proc: Proc, line: Line, a: dict) -> None:
        rid = a["n"]
        if rid < 0 or rid >= len(proc.regions) or not proc.regions[rid].live:
            self.error(f"no_such_region id={rid}")
        else:
            proc.cur = rid

    def cmd_munmap(self, proc: Proc, line: Line, a: dict) -> None:
        r = self.curreg(proc)
        self.k.munmap(self._mm(proc), r.vpn, r.npages)
        self._forget_private(self._mm(proc), r.vpn, r.npages)
        self.ret("munmap", 0)
        r.live = False
        self._close(r)

    def _forget_private(self, mm: int, vpn: int, n: int) -> None:
        for i in range(n):
            self.contents.pop(("a", mm, vpn + i), None)

    def cmd_unmap(self, proc: Proc, line: Line, a: dict) -> None:
        r = self.curreg(proc)
        if not self.check_range(r, a["off"], a["n"]):
            return
        if a["n"] == 0:
            self.ret("munmap", -1, E.EINVAL)
            return
        self.k.munmap(self._mm(proc), r.vpn + a["off"], a["n"])
        self._forget_private(self._mm(proc), r.vpn + a["off"], a["n"])
        self.ret("munmap", 0)

    def cmd_mprotect(self, proc: Proc, line: Line, a: dict) -> None:
        r = self.curreg(proc)
        if not self.check_range(r, a["off"], a["n"]):
            return
        prot = {"none": 0, "r": S.PROT_READ, "rw": S.PROT_READ | S.PROT_WRITE}[a["prot"]]
        try:
            sc.mprotect(self.k, proc.t, r.addr + a["off"] * PAGE, a["n"] * PAGE, prot)
            self.ret("mprotect", 0)
        except OSError as e:
            self.ret("mprotect", -1, e.errno)

    def cmd_madvise(self, proc: Proc, line: Line, a: dict) -> None:
        """``madvise OFF N hugepage|nohugepage|pageout|cold``.  MADV_PAGEOUT reclaims the
        range now: numasim's :meth:`Kernel.swapout` (private pages mapped only here, shmem
        pages), so a scenario recorded on the oracle with ``#@ swap`` runs unchanged.
        MADV_COLD only ages pages on the LRU, which numasim does not model: a no-op."""
        from numasim.mm import huge_memory as H

        r = self.curreg(proc)
        if not self.check_range(r, a["off"], a["n"]):
            return
        if a["advice"] in ("pageout", "cold"):
            if a["advice"] == "pageout":
                self.k.swapout(proc.t, r.vpn + a["off"], a["n"])
            self.ret("madvise", 0)
            return
        adv = H.MADV_HUGEPAGE if a["advice"] == "hugepage" else H.MADV_NOHUGEPAGE
        rc = sc.madvise_hugepage(self.k, proc.t, r.addr + a["off"] * PAGE, a["n"] * PAGE, adv)
        if rc < 0:
            self.ret("madvise", -1, -rc)
        else:
            self.ret("madvise", 0)

    # ------------------------------------------------------------ policies
    def _polcall(self, proc: Proc, pa: PolicyArgs) -> tuple[UserMask | None, int]:
        maxnode = pa.effective_maxnode
        return self.user_mask(proc, pa.maskaddr, pa.mask, maxnode), maxnode

    def cmd_set_mempolicy(self, proc: Proc, line: Line, a: dict) -> None:
        pa: PolicyArgs = a["pol"]
        try:
            nm, maxnode = self._polcall(proc, pa)
            rc = sc.set_mempolicy(self.k, proc.t, pa.mode, nm, maxnode)
            self.ret("set_mempolicy", rc)
        except OSError as e:
            self.ret("set_mempolicy", -1, e.errno)

    def _mbind(self, proc: Proc, start: int, length: int, pa: PolicyArgs) -> None:
        try:
            nm, maxnode = self._polcall(proc, pa)
            rc = sc.mbind(self.k, proc.t, start, length, pa.mode, nm, maxnode, pa.flags)
            self.ret("mbind", rc)
        except OSError as e:
            self.ret("mbind", -1, e.errno)

    def cmd_mbind(self, proc: Proc, line: Line, a: dict) -> None:
        r = self.curreg(proc)
        self._mbind(proc, (r.addr + a["off"] * PAGE) & ULONG, (a["n"] * PAGE) & ULONG, a["pol"])

    def cmd_mbind_raw(self, proc: Proc, line: Line, a: dict) -> None:
        self._mbind(proc, self.resolve(proc, a["addr"]), a["len"], a["pol"])

    def _home_node(self, proc: Proc, start: int, length: int, node: int, flags: int) -> None:
        try:
            rc = sc.set_mempolicy_home_node(self.k, proc.t, start, length, node & ULONG,
                                            flags)
            self.ret("set_mempolicy_home_node", rc, json_op="home_node")
        except OSError as e:
            self.ret("set_mempolicy_home_node", -1, e.errno, json_op="home_node")

    def cmd_home_node(self, proc: Proc, line: Line, a: dict) -> None:
        r = self.curreg(proc)
        self._home_node(proc, (r.addr + a["off"] * PAGE) & ULONG, (a["n"] * PAGE) & ULONG,
                        a["node"], a["flags"])

    def cmd_home_node_raw(self, proc: Proc, line: Line, a: dict) -> None:
        self._home_node(proc, self.resolve(proc, a["addr"]), a["len"], a["node"], a["flags"])

    def cmd_get_mempolicy(self, proc: Proc, line: Line, a: dict) -> None:
        flags = a["flags"]
        where = "task"
        addr = 0
        if a["off"] is not None:
            r = self.curreg(proc)
            addr = (r.addr + a["off"] * PAGE) & ULONG
            where = f"region{proc.cur}:{a['off']}"
        if a["raw"] is not None:
            addr = self.resolve(proc, a["raw"])
            where = f"raw:{addr:#x}" if addr else "raw:0"
        nomask = a["nomask"]
        obj: dict = {"op": "get_mempolicy", "query": where, "call_flags": flags}
        try:
            value, nodes = sc.get_mempolicy(self.k, proc.t, want_mask=not nomask,
                                            maxnode=0 if nomask else a["maxnode"],
                                            addr=addr, flags=flags & 0xFFFFFFFF)
        except OSError as e:
            self.out(f"policy query={where} flags={flags} rc=-1 errno={errname(e.errno)}",
                     {**obj, "ret": -1, "errno": errname(e.errno)})
            return
        obj["ret"] = 0
        mask = "?" if nomask else (format_list(n for n in nodes if n < MASK_BITS) or "none")
        if flags & 1:
            self.out(f"policy query={where} flags={flags} node={value}", {**obj, "node": value})
        elif flags & 4:
            self.out(f"policy query={where} flags={flags} mems_allowed={mask}",
                     {**obj, "mems_allowed": sorted(nodes or ())})
        else:
            base = value & ~(MPOL_F_STATIC_NODES | MPOL_F_RELATIVE_NODES | MPOL_F_NUMA_BALANCING)
            mode = MODE_NAMES.get(base, str(base))
            fl = [n for b, n in ((MPOL_F_STATIC_NODES, "static"),
                                 (MPOL_F_RELATIVE_NODES, "relative"),
                                 (MPOL_F_NUMA_BALANCING, "balancing")) if value & b]
            self.out(f"policy query={where} flags={flags} mode={mode} "
                     f"mode_flags={'|'.join(fl) or 'none'} raw={value} nodes={mask}",
                     {**obj, "mode": mode, "flags": fl, "raw": value,
                      "nodes": None if nomask else sorted(nodes)})

    # ------------------------------------------------------------ touching memory
    def cmd_touch(self, proc: Proc, line: Line, a: dict) -> None:
        r = self.curreg(proc)
        off = a["off"]
        n = a["n"] if a["n"] is not None else r.npages - off
        if not self.check_range(r, off, n):
            return
        k = self.k
        mm = self._mm(proc)
        how = a["how"]
        obj = {"op": "touch", "region": proc.cur, "off": off, "n": n}
        if how == "resident":
            # mincore(2) borrows one page for its result vector (under the task policy)
            k.temp_page(proc.t)
            vec = self.mincore(proc, r.vpn + off, n)
            if vec is None:
                self.ret("mincore", -1, E.ENOMEM, json_op="touch")
                return
            for i, res in enumerate(vec):
                if res:
                    k.touch(proc.t, r.vpn + off + i, 1, write=False)
            self.out(f"touched region={proc.cur} off={off} n={n} mode=resident",
                     {**obj, "mode": "resident"})
            return
        write = how != "read"
        first = r.vpn + off
        done = 0
        try:
            self.access(proc, first, n, write)  # hinting faults, faults, LRU batch
            done = n
        except Segfault as e:
            done = e.vpn - first
            raise
        finally:
            if write:
                self._record_writes(mm, first, off, done)
        self.out(f"touched region={proc.cur} off={off} n={n} mode={'write' if write else 'read'}",
                 {**obj, "mode": "write" if write else "read"})

    def _record_writes(self, mm: int, first: int, off: int, n: int) -> None:
        """touch writes byte (index | 1) at the start of each page."""
        for i in range(n):
            loc = self._loc(mm, first + i)
            if loc is not None:
                self.contents[loc] = ((off + i) | 1) & 0xFF

    def mincore(self, proc: Proc, vpn: int, n: int) -> list[bool] | None:
        """``mincore``: page-cache residency for shared/file mappings, mapped pages for
        private ones; None (ENOMEM) if part of the range is unmapped."""
        k = self.k
        ks = k.ks
        mm = self._mm(proc)
        out = []
        for i in range(n):
            v = k.find_vma(mm, vpn + i)
            if v < 0:
                return None
            pg = k.pte(mm, vpn + i)
            kind = int(ks.vmas[v, S.V_KIND])
            if pg >= 0 or pg == S.PT_ZERO:
                out.append(True)
            elif kind == S.KIND_ANON:
                out.append(False)
            else:
                o = int(ks.vmas[v, S.V_OBJ])
                idx = int(ks.vmas[v, S.V_PGOFF]) + vpn + i - int(ks.vmas[v, S.V_START])
                slot = (int(ks.objs[o, S.O_BASE]) + idx if idx < int(ks.objs[o, S.O_NPAGES])
                        else -1)
                out.append(slot >= 0 and int(ks.obj_pages[slot]) >= 0)
        return out

    def cmd_pwrite(self, proc: Proc, line: Line, a: dict) -> None:
        r = self.curreg(proc)
        off, n = a["off"], a["n"]
        if not self.check_range(r, off, n):
            return
        if r.vfile is None:
            self.error("pwrite_needs_memfd_or_file_region")
            return
        f = r.vfile.file
        self.k.pwrite(proc.t, f.obj, off, n)
        for i in range(off, off + n):
            self.contents[("o", f.obj, i)] = 0x5A
        self.out(f"pwritten region={proc.cur} off={off} n={n}",
                 {"op": "pwrite", "region": proc.cur, "off": off, "n": n})

    def cmd_verify(self, proc: Proc, line: Line, a: dict) -> None:
        r = self.curreg(proc)
        off = a["off"]
        n = a["n"] if a["n"] is not None else r.npages - off
        if not self.check_range(r, off, n):
            return
        mm = self._mm(proc)
        ok = bad = 0
        first = -1
        for i in range(off, off + n):
            self.k.touch(proc.t, r.vpn + i, 1, write=False)
            loc = self._loc(mm, r.vpn + i)
            val = self.contents.get(loc, 0) if loc else 0
            if val == (i | 1) & 0xFF:
                ok += 1
            else:
                bad += 1
                if first < 0:
                    first = i
        self.out(f"verified region={proc.cur} off={off} n={n} ok={ok} bad={bad} "
                 f"first_bad={first}", {"op": "verify", "region": proc.cur, "off": off,
                                        "n": n, "ok": ok, "bad": bad, "first_bad": first})

    # ------------------------------------------------------------ where pages are
    def cmd_query(self, proc: Proc, line: Line, a: dict) -> None:
        r = self.curreg(proc)
        off = a["off"]
        n = a["n"] if a["n"] is not None else r.npages - off
        if not self.check_range(r, off, n):
            return
        brief = {"": 0, "brief": 1, "counts": 2}[a["how"]]
        addrs = [r.addr + (off + i) * PAGE for i in range(n)]
        try:
            if self.k.kgen == KGEN_2_6_7:
                # 2.6.7 had no move_pages: numasim reads its page tables instead, so a
                # student still sees where the seed's policies put the pages
                mm = self._mm(proc)
                status = [sc.page_status(self.k, mm, x) for x in addrs]
            else:
                _rc, status = sc.move_pages(self.k, proc.t, 0, addrs, None, 0)
        except OSError as e:
            self.ret("move_pages", -1, e.errno, json_op="query")
            return
        count = [0] * (MAX_NODES + 1)
        for i, st in enumerate(status):
            idx = off + i
            if st >= 0:
                if not brief:
                    self.out(f"page region={proc.cur} index={idx} node={st}",
                             {"op": "query", "region": proc.cur, "page": idx, "node": st})
                if st < MAX_NODES:
                    count[st] += 1
            else:
                if not brief:
                    self.out(f"page region={proc.cur} index={idx} err={errname(-st)}",
                             {"op": "query", "region": proc.cur, "page": idx,
                              "errno": errname(-st)})
                count[MAX_NODES] += 1
        parts = [f"summary region={proc.cur} off={off} n={n}"]
        parts += [f"node{i}={c}" for i, c in enumerate(count[:MAX_NODES]) if c]
        if count[MAX_NODES]:
            parts.append(f"absent={count[MAX_NODES]}")
        text = " ".join(parts)
        runs = []
        i = 0
        while i < n and brief != 2:
            j = i
            while j + 1 < n and status[j + 1] == status[i]:
                j += 1
            st = status[i]
            runs.append(f"{off + i}-{off + j}:{st if st >= 0 else errname(-st)}")
            i = j + 1
        if brief != 2:
            text += " runs=" + ",".join(runs)
            if n <= 256:
                text += " seq=" + ",".join(str(s) if s >= 0 else "-" for s in status)
        self.out(text, {"op": "summary", "ret": 0, "region": proc.cur, "off": off, "n": n,
                        "nodes": {str(i): c for i, c in enumerate(count[:MAX_NODES]) if c},
                        "absent": count[MAX_NODES]})

    def cmd_nodeof(self, proc: Proc, line: Line, a: dict) -> None:
        r = self.curreg(proc)
        off, n = a["off"], a["n"]
        if not self.check_range(r, off, n):
            return
        for i in range(off, off + n):
            obj = {"op": "nodeof", "region": proc.cur, "page": i}
            try:
                node, _ = sc.get_mempolicy(self.k, proc.t, want_mask=False, maxnode=0,
                                           addr=r.addr + i * PAGE, flags=3)
                self.out(f"nodeof region={proc.cur} index={i} node={node}", {**obj, "node": node})
            except OSError as e:
                self.out(f"nodeof region={proc.cur} index={i} errno={errname(e.errno)}",
                         {**obj, "errno": errname(e.errno)})

    KTHREAD_PIDS = range(2, 100)  # kthreadd and the other kernel threads of the guest

    def _target(self, proc: Proc, p) -> tuple[str, int]:
        """Whom a pid argument names: ("self", 0), ("task", task id), ("kthread", -1) -- a
        kernel thread, which exists but has no mm -- or ("none", -1)."""
        if p == "parent":
            p = proc.parent_pid
        elif p == "self":
            p = proc.pid
        if p == 0:
            return "self", 0
        t = self.pids.get(p)
        if t is not None and self.k.alive(t):
            return ("self", 0) if t == proc.t else ("task", t)
        if p in self.KTHREAD_PIDS:
            return "kthread", -1
        return "none", -1

    def _find_mm(self, proc: Proc, p) -> int:
        """``find_mm_struct`` / the task lookup of migrate_pages: ESRCH for no such task,
        EPERM when ``ptrace_may_access`` fails (another uid, unless root), EINVAL for a
        kernel thread (no mm).  Returns the task (0 = the caller)."""
        kind, t = self._target(proc, p)
        if kind == "none":
            raise OSError(E.ESRCH, "no such process")
        if kind != "self" and proc.uid != 0:
            owner = next((x for x in self.procs_alive() if x.t == t), None)
            if owner is None or owner.uid != proc.uid:
                raise OSError(E.EPERM, "ptrace_may_access")
        if kind == "kthread":
            raise OSError(E.EINVAL, "kernel thread: no mm")
        return t

    def procs_alive(self) -> list[Proc]:
        return [p for p in self._procs if self.k.alive(p.t)]

    def cmd_move(self, proc: Proc, line: Line, a: dict) -> None:
        r = self.curreg(proc)
        off, n, node = a["off"], a["n"], a["node"]
        if not self.check_range(r, off, n):
            return
        addrs = [r.addr + (off + i) * PAGE for i in range(n)]
        flags = a["flags"] & 0xFFFFFFFF
        try:
            if flags & ~6:
                raise OSError(E.EINVAL, "flags")
            if flags & 4 and not self.k.ks.tasks[proc.t, S.T_CAP_SYS_NICE]:
                raise OSError(E.EPERM, "MPOL_MF_MOVE_ALL needs CAP_SYS_NICE")
            t = self._find_mm(proc, a["pid"])
            rc, status = sc.move_pages(self.k, proc.t, t, addrs, [node] * n, flags)
        except OSError as e:
            self.ret("move_pages", -1, e.errno, json_op="move")
            return
        self.ret("move_pages", rc, json_op="move")
        for i, st in enumerate(status):
            obj = {"op": "move", "region": proc.cur, "page": off + i}
            if st >= 0:
                self.out(f"moved region={proc.cur} index={off + i} node={st}", {**obj, "node": st})
            else:
                self.out(f"moved region={proc.cur} index={off + i} err={errname(-st)}",
                         {**obj, "errno": errname(-st)})

    def cmd_migrate(self, proc: Proc, line: Line, a: dict) -> None:
        from numasim.mm.nodemask import get_nodes

        maxnode = a["maxnode"]
        try:
            old = self.user_mask(proc, a["old"], a["from"], maxnode)
            new = self.user_mask(proc, a["new"], a["to"], maxnode)
            get_nodes(old, maxnode)
            to = get_nodes(new, maxnode)
            kind, _t = self._target(proc, a["pid"])
            if kind == "kthread":
                self._find_mm(proc, a["pid"])  # ESRCH / EPERM first
                mems = sc._mems_allowed(self.k, proc.t)
                if not to & mems:
                    raise OSError(E.EINVAL, "no allowed target node")
                raise OSError(E.EINVAL, "kernel thread: no mm")
            t = self._find_mm(proc, a["pid"])
            rc = sc.migrate_pages(self.k, proc.t, t, maxnode, old, new)
            self.ret("migrate_pages", rc, json_op="migrate")
        except OSError as e:
            self.ret("migrate_pages", -1, e.errno, json_op="migrate")

    # ------------------------------------------------------------ numastat, zones
    def _numastat_rows(self) -> list[tuple[int, np.ndarray]]:
        return [(nid, self.k.ks.numastat[nid].copy()) for nid in self.k.machine.node_ids]

    def cmd_numastat(self, proc: Proc, line: Line, a: dict) -> None:
        self._stat_lines(proc, "numastat", None)

    def cmd_numastat_mark(self, proc: Proc, line: Line, a: dict) -> None:
        proc.mark = self.k.ks.numastat.copy()
        proc.noise = self.kernel_alloc_nodes(proc)
        self.out("numastat_mark ok=1", {"op": "numastat_mark"})

    def cmd_numastat_delta(self, proc: Proc, line: Line, a: dict) -> None:
        if proc.mark is None:
            self.error("numastat_delta_without_mark")
        self._stat_lines(proc, "numastat_delta", proc.mark)

    def _stat_lines(self, proc: Proc, tag: str, mark: np.ndarray | None) -> None:
        meta = None
        if tag == "numastat_delta":
            meta = {"noise_nodes": sorted(proc.noise | self.kernel_alloc_nodes(proc))}
        for nid, row in self._numastat_rows():
            vals = row - (mark[nid] if mark is not None else 0)
            d = dict(zip(NUMASTAT_NAMES, (int(v) for v in vals), strict=True))
            self.out(f"{tag} node={nid} " + " ".join(f"{k}={v}" for k, v in d.items()),
                     {"op": tag, "node": nid, **d}, meta)

    def cmd_meminfo(self, proc: Proc, line: Line, a: dict) -> None:
        ks = self.k.ks
        for nid in self.k.machine.node_ids:
            sel = ks.zones[:, S.Z_NODE] == nid
            total = int(ks.zones[sel, S.Z_MANAGED].sum()) * 4
            free = int(ks.zones[sel, S.Z_FREE].sum()) * 4
            self.out(f"meminfo node={nid} total_kb={total} free_kb={free} used_kb={total - free}",
                     {"op": "meminfo", "node": nid, "total_kb": total, "free_kb": free,
                      "used_kb": total - free})

    def _zones(self):
        ks = self.k.ks
        for z in self.k.ks.derived.zones:
            if z.present <= 0:
                continue
            row = ks.zones[z.index]
            yield z, row

    def cmd_zones(self, proc: Proc, line: Line, a: dict) -> None:
        for z, row in self._zones():
            prot = ",".join(str(int(x)) for x in row[S.Z_RES:S.Z_RES + len(z.lowmem_reserve)])
            self.out(f"zone node={z.node} zone={z.name} free={int(row[S.Z_FREE])} "
                     f"min={int(row[S.Z_MIN])} low={int(row[S.Z_LOW])} high={int(row[S.Z_HIGH])} "
                     f"boost=0 managed={int(row[S.Z_MANAGED])} present={z.present} "
                     f"protection={prot}",
                     {"op": "zone", "node": z.node, "zone": z.name, "free": int(row[S.Z_FREE]),
                      "min": int(row[S.Z_MIN]), "low": int(row[S.Z_LOW]),
                      "high": int(row[S.Z_HIGH]), "managed": int(row[S.Z_MANAGED]),
                      "present": z.present})

    def headroom(self, node: int, zone: str | None = None) -> int:
        """Free pages of a node above low watermark + lowmem_reserve[MOVABLE]."""
        h = 0
        for z, row in self._zones():
            if z.node != node or (zone is not None and z.name != zone):
                continue
            prot = int(row[S.Z_RES + 3]) if len(z.lowmem_reserve) > 3 else 0
            d = int(row[S.Z_FREE]) - int(row[S.Z_LOW]) - prot
            h += max(d, 0)
        return h

    def cmd_headroom(self, proc: Proc, line: Line, a: dict) -> None:
        h = self.headroom(a["n"])
        self.out(f"headroom node={a['n']} pages={h}",
                 {"op": "headroom", "node": a["n"], "pages": h})

    def cmd_fill(self, proc: Proc, line: Line, a: dict) -> None:
        """A hog region bound to the node, touched in shrinking steps until the node's
        headroom is at most K pages (the probe's ``cmd_fill``)."""
        k = self.k
        node, left, zone = a["node"], a["left"], a["zone"]
        h0 = self.headroom(node, zone)
        cap = h0 + 4096
        try:
            kr = k.mmap(proc.t, cap, kind="anon")
        except (FileExistsError, OSError):
            self.ret("fill_mmap", -1, E.ENOMEM, json_op="fill")
            return
        hog = int(k.ks.regions[kr, S.R_START])
        try:
            mask = UserMask.of([node]) if 0 <= node < MASK_BITS else UserMask(0)
            sc.mbind(k, proc.t, hog << PAGE_SHIFT, cap * PAGE, 2, mask, DEFAULT_MAXNODE, 0)
        except OSError as e:
            self.ret("fill_mbind", -1, e.errno, json_op="fill")
            return
        used, h, it = 0, h0, 0
        while h > left and used < cap and it < 100000:
            step = h - left
            if step > 2048:
                step //= 2
            elif step > 16:
                step = 16
            step = max(step, 1)
            step = min(step, cap - used)
            k.touch(proc.t, hog + used, step, write=True)
            used += step
            h = self.headroom(node, zone)
            it += 1
            if a["verbose"]:
                self.out(f"fill_step node={node} touched={step} total={used} headroom={h}",
                         {"op": "fill_step", "node": node, "touched": step, "total": used,
                          "headroom": h})
        ztxt = f" zone={zone}" if zone else ""
        self.out(f"fill node={node}{ztxt} left_target={left} hog_pages={used} "
                 f"headroom_before={h0} headroom_after={h} iterations={it}",
                 {"op": "fill", "node": node, "left_target": left, "hog_pages": used,
                  "headroom_before": h0, "headroom_after": h, "iterations": it})

    # ------------------------------------------------------------ files and knobs
    def cmd_cat(self, proc: Proc, line: Line, a: dict) -> None:
        try:
            for text in self.vfs.read(a["path"]):
                self.out(f"| {text}", {"op": "cat", "path": a["path"], "text": text})
        except VfsError as e:
            self.out(f"cat path={a['path']} errno={errname(e.errno)}",
                     {"op": "cat", "path": a["path"], "errno": errname(e.errno)})

    def cmd_write(self, proc: Proc, line: Line, a: dict) -> None:
        try:
            rc = self.vfs.write(a["path"], a["value"])
            self.out(f"ret op=write rc={rc} path={a['path']}",
                     {"op": "write", "path": a["path"], "ret": rc})
        except VfsError as e:
            self.out(f"ret op=write rc=-1 errno={errname(e.errno)} path={a['path']}",
                     {"op": "write", "path": a["path"], "ret": -1, "errno": errname(e.errno)})

    def _fsop(self, op: str, fn, *args) -> None:
        try:
            fn(*args)
            self.ret(op, 0)
        except VfsError as e:
            self.ret(op, -1, e.errno)

    def cmd_mkdir(self, proc: Proc, line: Line, a: dict) -> None:
        self._fsop("mkdir", self.vfs.mkdir, a["path"])

    def cmd_rmdir(self, proc: Proc, line: Line, a: dict) -> None:
        self._fsop("rmdir", self.vfs.rmdir, a["path"])

    def cmd_unlink(self, proc: Proc, line: Line, a: dict) -> None:
        self._fsop("unlink", self.vfs.unlink, a["path"])

    def cmd_mount(self, proc: Proc, line: Line, a: dict) -> None:
        if proc.uid != 0:
            self.ret("mount", -1, E.EPERM)
            return
        self._fsop("mount", self.vfs.mount, a["fstype"], a["target"], a["data"])

    def cmd_umount(self, proc: Proc, line: Line, a: dict) -> None:
        if proc.uid != 0:
            self.ret("umount", -1, E.EPERM)
            return
        self._fsop("umount", self.vfs.umount, a["path"])

    def cmd_dmesg(self, proc: Proc, line: Line, a: dict) -> None:
        pat, upto = a["pattern"], a["upto"]
        hits = 0
        for text in self.k.dmesg:
            m = text.find(pat)
            if m < 0:
                continue
            if upto is not None:
                u = text.find(upto, m)
                if u >= 0:
                    text = text[:u]
            text = text.rstrip(" \r")
            self.out(f"klog | {text}", {"op": "dmesg", "text": text})
            hits += 1
        self.out(f"dmesg pattern={pat} lines={hits}",
                 {"op": "dmesg_count", "pattern": pat, "lines": hits})

    # ------------------------------------------------------------ processes
    @property
    def _procs(self) -> list[Proc]:
        return self._proc_list

    def cmd_fork(self, proc: Proc, lines: list[Line], i: int) -> None:
        k = self.k
        t = k.fork(proc.t)
        self.vfs.fork_task(proc.t, t)
        pid = self._new_pid(t)
        self.k.task_names[t].update(uid=proc.uid,
                                    cpuset=self.k.task_names[proc.t].get("cpuset", "/"))
        child = Proc(pid, t, regions=[copy.copy(r) for r in proc.regions], cur=proc.cur,
                     in_child=proc.in_child + 1,
                     mark=None if proc.mark is None else proc.mark.copy(),
                     noise=set(proc.noise), uid=proc.uid, parent_pid=proc.pid)
        for r in child.regions:
            if r.live and r.fd_open and r.vfile is not None:
                r.vfile.opens += 1
        pmm, cmm = self._mm(proc), k.task_mm(t)
        for key in [x for x in self.contents if x[0] == "a" and x[1] == pmm]:
            self.contents[("a", cmm, key[2])] = self.contents[key]
        self._premap(t)  # copy_page_range gave the child the image's page tables
        self._procs.append(child)
        self.out("fork role=child", {"op": "fork", "role": "child"})
        self.after_fork(child)  # the child's own copy-on-write pages (NUMA balancing on)
        status = self._run_process(child, lines, i + 1)
        self.proc = proc
        self.line = lines[min(matching_endfork(lines, i), len(lines) - 1)].number
        if not k.alive(proc.t):
            raise ProbeKilled(int(k.ks.tasks[proc.t, S.T_KILLED]) or 9)
        if status >= 128:
            self.out(f"child signal={status - 128}", {"op": "child", "signal": status - 128})
        else:
            self.out(f"child exit={status}", {"op": "child", "exit": status})

    def cmd_exec(self, proc: Proc, line: Line, a: dict) -> None:
        """execve of a fresh probe running the rest of the line: new address space and
        region table; task policy, CPU, cpuset and uid are kept."""
        for r in proc.regions:
            if r.live and r.fd_open:
                self._close(r)
        self.k.exec(proc.t)
        self._build_image(proc.t)
        new = Proc(proc.pid, proc.t, uid=proc.uid, parent_pid=proc.parent_pid)
        self._procs.append(new)
        try:
            self.run_lines(new, line.sub)
        finally:
            # the new image's descriptors close when the process ends, however it ends
            # (its files' mounts can then be unmounted)
            for r in new.regions:
                self._close(r)
        raise ProbeExit(0)

    def cmd_setuid(self, proc: Proc, line: Line, a: dict) -> None:
        uid = a["n"]
        if proc.uid != 0 and uid != proc.uid:
            self.ret("setuid", -1, E.EPERM)
            return
        if proc.uid != 0:
            self.ret("setuid", -1, E.EPERM)  # setgroups needs CAP_SETGID
            return
        proc.uid = uid & 0xFFFFFFFF
        self.k.task_names.setdefault(proc.t, {})["uid"] = proc.uid
        if proc.uid != 0:
            self.k.ks.tasks[proc.t, S.T_CAP_SYS_NICE] = 0
        self.ret("setuid", 0)

    # ------------------------------------------------------------ VMAs
    def cmd_vmas(self, proc: Proc, line: Line, a: dict) -> None:
        r = self.curreg(proc)
        k = self.k
        ks = k.ks
        cnt = 0
        rs, re_ = r.vpn, r.vpn + r.npages
        for s, e, prot, shared in self.maps(proc):
            if e <= rs or s >= re_:
                continue
            perms = ("r" if prot & S.PROT_READ else "-") + ("w" if prot & S.PROT_WRITE else "-")
            perms += "-" + ("s" if shared else "p")
            self.out(f"vma region={proc.cur} start={s - rs} end={e - rs} perms={perms}",
                     {"op": "vma", "region": proc.cur, "start": s - rs, "end": e - rs,
                      "perms": perms})
            cnt += 1
        del ks
        self.out(f"vmas region={proc.cur} count={cnt}",
                 {"op": "vmas", "region": proc.cur, "count": cnt})

    def maps(self, proc: Proc) -> list[tuple[int, int, int, bool]]:
        """/proc/self/maps: (start, end, prot, shared) per VMA, in address order."""
        ks = self.k.ks
        out = []
        for group in self.vma_groups(proc):
            first, last = ks.vmas[group[0]], ks.vmas[group[-1]]
            out.append((int(first[S.V_START]), int(last[S.V_END]), int(first[S.V_PROT]),
                        bool(first[S.V_SHARED])))
        return out

    def vma_groups(self, proc: Proc) -> list[list[int]]:
        """The process's VMAs as Linux has them: numasim keeps each mmap in its own region;
        where Linux would have merged neighbouring mappings into one VMA (same flags, file,
        contiguous offset, equal policy, compatible anon_vmas) they form one group."""
        ks = self.k.ks
        groups: list[list[int]] = []
        for v in self.k.mm_vmas(self._mm(proc)):
            if groups:
                prev = groups[-1][-1]
                if int(ks.vmas[prev, S.V_END]) == int(ks.vmas[v, S.V_START]) and \
                        self._view_mergeable(prev, v):
                    groups[-1].append(v)
                    continue
            groups.append([v])
        return groups

    def _view_mergeable(self, a: int, b: int) -> bool:
        ks = self.k.ks
        ra, rb = ks.vmas[a], ks.vmas[b]
        if ra[S.V_REGION] == rb[S.V_REGION]:
            return False  # numasim's kernel already decided inside a region
        if any(ra[c] != rb[c] for c in (S.V_OBJ, S.V_PROT, S.V_SHARED, S.V_KIND)):
            return False
        if rb[S.V_PGOFF] != ra[S.V_PGOFF] + ra[S.V_END] - ra[S.V_START]:
            return False
        if not sc.mpol_equal(self.k, int(ra[S.V_POLICY]), int(rb[S.V_POLICY])):
            return False
        return sc.is_mergeable_anon_vma(self.k, int(ra[S.V_ANON_VMA]), int(rb[S.V_ANON_VMA]),
                                        None)

    def cmd_numa_maps(self, proc: Proc, line: Line, a: dict) -> None:
        from numasim.mm.script.numa_maps import numa_maps_lines

        for vpn, text in numa_maps_lines(self, proc):
            for r in proc.regions:
                if r.live and r.vpn <= vpn < r.vpn + r.npages:
                    self.out(f"numa_maps region={r.id} page={vpn - r.vpn} | {text}",
                             {"op": "numa_maps", "region": r.id, "page": vpn - r.vpn,
                              "text": text})
                    break

    # ------------------------------------------------------------ numasim's additions
    def cmd_swapout(self, proc: Proc, line: Line, a: dict) -> None:
        r = self.curreg(proc)
        if not self.check_range(r, a["off"], a["n"]):
            return
        n = self.k.swapout(proc.t, r.vpn + a["off"], a["n"])
        self.out(f"swapped region={proc.cur} off={a['off']} n={a['n']} pages={n}",
                 {"op": "swapout", "region": proc.cur, "off": a["off"], "n": a["n"],
                  "pages": n})

    def cmd_explain(self, proc: Proc, line: Line, a: dict) -> None:
        """Why the page is (or would be) on its node: :func:`numasim.mm.procviews.explain_page`
        for a write access, line by line."""
        from numasim.mm.procviews import explain_page

        r = self.curreg(proc)
        if not self.check_range(r, a["off"], 1):
            return
        ex = explain_page(self.k, proc.t, r.addr + a["off"] * PAGE)
        obj = {"op": "explain", "region": proc.cur, "page": a["off"]}
        for text in ex.text().splitlines():
            self.out(f"explain region={proc.cur} index={a['off']} | {text}", {**obj, "text": text})
        self.out(f"explained region={proc.cur} index={a['off']} "
                 f"node={ex.existing_node if ex.existing_node is not None else '-'} "
                 f"fault_node={ex.final_node if ex.final_node is not None else '-'}",
                 {**obj, "node": ex.existing_node, "fault_node": ex.final_node,
                  "fault": ex.fault, "oom": ex.oom})
