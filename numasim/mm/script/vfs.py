"""The files a scenario reaches through paths, emulated where they change the model.

* ``/sys/kernel/mm/mempolicy/weighted_interleave/nodeN`` (6.9+): weighted-interleave weights;
* a cgroup v2 hierarchy (``mount cgroup2 DIR``) with the cpuset controller: ``cpuset.mems``,
  ``cpuset.mems.effective``, ``cgroup.procs``, ``cgroup.subtree_control``; moving a task or
  changing a cpuset's mems sets the tasks' ``mems_allowed``, rebinds their policies and
  migrates their pages, as cgroup v2 does (``memory_migrate`` is always on there);
* ``/sys/devices/virtual/memory_tiering/memory_tierN/nodelist`` (read-only) and
  ``/sys/kernel/mm/numa/demotion_enabled`` (6.1+): the tiers the kernel derived at boot
  (:mod:`numasim.mm.memory_tiers`) and the demotion switch;
* ``/proc/sys/vm/{min_free_kbytes,watermark_scale_factor,lowmem_reserve_ratio}``: writing
  one recomputes the watermarks and lowmem reserves the way the kernel's sysctl handlers do;
* tmpfs and ramfs mounts and their files (``/mnt/ramfs``, ``/mnt/tmpfs``, ``/tmp`` and any
  ``mount tmpfs DIR [mpol=...]``), with per-superblock inode numbers (shmem interleave is
  biased by the inode number) and the mount's memory policy;
* the shmem inodes behind ``memfd_create`` and ``MAP_SHARED|MAP_ANONYMOUS`` (the kernel's
  internal ``shm_mnt``, numbered per CPU in batches).

Everything else is accepted and does nothing: writes report success, reads of unknown files
report ENOENT.  Paths are normalised but there are no symlinks, permissions or links.
"""

from __future__ import annotations

import errno as E
import posixpath
from dataclasses import dataclass, field

from numasim.bitmap import format_list
from numasim.mm import state as S
from numasim.mm.constants import KGEN_6_12
from numasim.mm.errors import VfsError
from numasim.mm.huge_memory import (
    THP_DEFRAG_MODES,
    THP_DEFRAG_SYSFS,
    THP_MODES,
    THP_SYSFS,
    set_thp_defrag,
    set_thp_mode,
    thp_defrag_text,
    thp_enabled_text,
)
from numasim.mm.kernel import File, Kernel
from numasim.mm.khugepaged import khugepaged_read, khugepaged_write
from numasim.mm.memory_tiers import sysfs_read as tiering_read
from numasim.mm.memory_tiers import sysfs_write as tiering_write
from numasim.mm.numa_balancing import DEBUGFS_MOUNT, balancing_read, balancing_write

SHMEM_INO_BATCH = 1024


def _err(code: int) -> VfsError:
    return VfsError(code, E.errorcode.get(code, str(code)))


@dataclass
class Mount:
    fstype: str
    path: str
    data: str | None = None
    next_ino: int = 2  # per-superblock inode numbers (the root directory is 1)
    mpol: tuple[int, int, frozenset[int]] | None = None  # (mode, flags, nodes) from mpol=


@dataclass
class Cgroup:
    path: str  # relative to the hierarchy root, "" for the root
    mems: set[int] | None = None  # cpuset.mems as written (None/empty = inherit)
    subtree_cpuset: bool = False
    children: list[str] = field(default_factory=list)


@dataclass
class VFile:
    """A regular file (tmpfs/ramfs) or an internal shmem inode."""

    path: str
    file: File
    mount: Mount | None
    linked: bool = True
    opens: int = 0  # open descriptors across all processes (regions hold one each)


def parse_tmpfs_mpol(text: str) -> tuple[int, int, frozenset[int]] | None:
    """``mpol_parse_str``: ``MODE[=static|relative][:NODES]`` -> (mode, flags, nodes)."""
    from numasim.bitmap import parse_list

    mode_s, _, nodelist = text.partition(":")
    mode_s, _, fl = mode_s.partition("=")
    modes = {"default": 0, "prefer": 1, "bind": 2, "interleave": 3, "local": 4,
             "prefer (many)": 5, "weighted interleave": 6}
    if mode_s not in modes:
        raise _err(E.EINVAL)
    flags = {"": 0, "static": 1 << 15, "relative": 1 << 14}.get(fl)
    if flags is None:
        raise _err(E.EINVAL)
    try:
        nodes = frozenset(parse_list(nodelist)) if nodelist else frozenset()
    except ValueError:
        raise _err(E.EINVAL) from None
    return modes[mode_s], flags, nodes


class Vfs:
    """The emulated file tree of one simulated machine."""

    def __init__(self, k: Kernel, runner) -> None:
        self.k = k
        self.runner = runner
        self.dirs: set[str] = {"/", "/mnt", "/mnt/ramfs", "/mnt/tmpfs", "/tmp", "/proc",
                               "/sys", "/dev", "/scen", "/bin"}
        root = Mount("tmpfs", "/", next_ino=1000)  # the initramfs rootfs
        self.mounts: dict[str, Mount] = {
            "/": root,
            "/mnt/ramfs": Mount("ramfs", "/mnt/ramfs", next_ino=1000),
            "/mnt/tmpfs": Mount("tmpfs", "/mnt/tmpfs", next_ino=2),
        }
        self.files: dict[str, VFile] = {}
        self.orphans: list[VFile] = []
        # cgroup v2 hierarchies: mount path -> {relative path -> Cgroup}
        self.cgroups: dict[str, dict[str, Cgroup]] = {}
        self.cgroup_tree: dict[str, Cgroup] = {"": Cgroup("")}
        self.task_cgroup: dict[int, tuple[str, str]] = {}  # task -> (mount, cgroup path)
        # the internal shmem mount (memfd, MAP_SHARED|MAP_ANONYMOUS): CPU 0's run of inode
        # numbers started at 1 (the root directory), the next run starts at 1025
        self.shm_sb_next = 1 + SHMEM_INO_BATCH
        self.shm_cpu_next: dict[int, int] = {0: 2}
        self.sysctl: dict[str, str] = {
            "/proc/sys/vm/percpu_pagelist_high_fraction": "0",
            "/proc/sys/vm/watermark_boost_factor": "15000",
            "/proc/sys/vm/zone_reclaim_mode": "0",  # accepted; node_reclaim has no effect
            "/proc/sys/vm/swappiness": "60",
            "/proc/sys/vm/numa_zonelist_order": "Node",
            "/proc/sys/vm/overcommit_memory": "0",
            "/proc/sys/vm/drop_caches": "0",
            "/proc/sys/kernel/numa_balancing": "0",
            "/proc/sys/kernel/printk": "4\t4\t1\t7",  # the oracle boots with loglevel=4
        }

    # ------------------------------------------------------------ paths
    @staticmethod
    def norm(path: str) -> str:
        return posixpath.normpath("/" + path.lstrip("/")) if path else path

    def mount_of(self, path: str) -> Mount:
        p = path
        while True:
            if p in self.mounts:
                return self.mounts[p]
            if p == "/":
                return self.mounts["/"]
            p = posixpath.dirname(p)

    def _cg_of(self, path: str) -> tuple[str, str] | None:
        """(hierarchy mount, cgroup path) when path is inside a cgroup2 mount."""
        p = path
        while True:
            if p in self.cgroups:
                rel = posixpath.relpath(path, p)
                return p, "" if rel == "." else rel
            if p == "/":
                return None
            p = posixpath.dirname(p)

    # ------------------------------------------------------------ dirs and mounts
    def mkdir(self, path: str) -> None:
        path = self.norm(path)
        if path == DEBUGFS_MOUNT:
            raise _err(E.EAGAIN)  # what 6.1 and 6.12 answer (oracle scenarios 81-84)
        cg = self._cg_of(path)
        if cg is not None:
            mnt, rel = cg
            tree = self.cgroups[mnt]
            parent = posixpath.dirname(rel) if "/" in rel else ""
            if rel in tree:
                raise _err(E.EEXIST)
            if parent not in tree:
                raise _err(E.ENOENT)
            tree[rel] = Cgroup(rel)
            tree[parent].children.append(rel)
            return
        if path in self.dirs or path in self.files:
            raise _err(E.EEXIST)
        if posixpath.dirname(path) not in self.dirs:
            raise _err(E.ENOENT)
        if path.startswith(("/proc/", "/sys/")):
            raise _err(E.ENOENT if path.startswith("/proc/") else E.EPERM)
        self.dirs.add(path)

    def rmdir(self, path: str) -> None:
        path = self.norm(path)
        cg = self._cg_of(path)
        if cg is not None and cg[1]:
            mnt, rel = cg
            tree = self.cgroups[mnt]
            if rel not in tree:
                raise _err(E.ENOENT)
            if tree[rel].children or any(v == (mnt, rel) for t, v in self.task_cgroup.items()
                                         if self.k.alive(t)):
                raise _err(E.EBUSY)
            del tree[rel]
            parent = posixpath.dirname(rel) if "/" in rel else ""
            tree[parent].children.remove(rel)
            return
        if path in self.mounts or path in self.cgroups:
            raise _err(E.EBUSY)
        if path not in self.dirs:
            raise _err(E.ENOTDIR if path in self.files else E.ENOENT)
        if any(posixpath.dirname(p) == path for p in list(self.dirs) + list(self.files)):
            raise _err(E.ENOTEMPTY)
        self.dirs.discard(path)

    def mount(self, fstype: str, target: str, data: str | None) -> None:
        target = self.norm(target)
        if target == DEBUGFS_MOUNT and target in self.mounts:
            raise _err(E.EBUSY if fstype != "debugfs" else E.EEXIST)
        if target not in self.dirs and target != DEBUGFS_MOUNT:
            raise _err(E.ENOENT)
        if fstype == "cgroup2":
            if target in self.cgroups:
                raise _err(E.EBUSY)
            # cgroup v2 has one hierarchy: every mount shows the same tree, and the tree
            # (with the tasks in it) outlives its mounts
            self.cgroups[target] = self.cgroup_tree
            return
        if fstype not in ("tmpfs", "ramfs"):
            # other filesystems are accepted and hold nothing numasim models
            self.mounts[target] = Mount(fstype, target, data)
            return
        m = Mount(fstype, target, data, next_ino=2)
        for opt in (data or "").split(","):
            if opt.startswith("mpol=") and fstype == "tmpfs":
                m.mpol = parse_tmpfs_mpol(opt[5:])
                if m.mpol is not None and m.mpol[2] and not set(m.mpol[2]) <= \
                        set(self.k.machine.memory_nodes):
                    raise _err(E.EINVAL)
        self.mounts[target] = m

    def umount(self, target: str) -> None:
        target = self.norm(target)
        if target in self.cgroups:
            del self.cgroups[target]
            return
        m = self.mounts.get(target)
        if m is None or target == "/":
            raise _err(E.EINVAL)
        for vf in list(self.files.values()) + self.orphans:
            if vf.mount is m and vf.opens > 0:
                raise _err(E.EBUSY)
        for path, vf in list(self.files.items()):
            if vf.mount is m:
                del self.files[path]
                vf.linked = False
                self.release(vf)
        self.dirs = {d for d in self.dirs if not d.startswith(target + "/")}
        del self.mounts[target]

    # ------------------------------------------------------------ regular files
    def open_file(self, path: str, npages: int, keep: bool) -> VFile:
        """``open(O_RDWR|O_CREAT[|O_TRUNC])`` and ``ftruncate`` to npages (only growing with
        ``keep``).  Raises VfsError."""
        path = self.norm(path)
        if path in self.dirs:
            raise _err(E.EISDIR)
        if posixpath.dirname(path) not in self.dirs or path.startswith(("/proc/", "/sys/")):
            raise _err(E.ENOENT if not path.startswith("/sys/") else E.EACCES)
        if npages < 0:
            raise _err(E.EINVAL)
        vf = self.files.get(path)
        m = self.mount_of(path)
        if vf is None:
            fs = "ramfs" if m.fstype == "ramfs" else "tmpfs"
            kind = S.KIND_FILE if fs == "ramfs" else S.KIND_SHMEM
            ino = m.next_ino
            m.next_ino += 1
            o = self.k.ks.new_obj(kind, npages, ino)
            vf = VFile(path, File(path, o, fs), m)
            self.files[path] = vf
            if m.mpol is not None and kind == S.KIND_SHMEM:
                self.runner.install_sb_policy(o, m.mpol)
        else:
            o = vf.file.obj
            if not keep:
                self.truncate(vf, 0)
            self.k.ks.grow_obj(o, npages)
        self.k.ks.objs[vf.file.obj, S.O_SIZE] = max(
            npages, int(self.k.ks.objs[vf.file.obj, S.O_SIZE]) if keep else npages)
        return vf

    def new_shmem(self, name: str, npages: int, cpu: int) -> VFile:
        """An unlinked shmem inode on the kernel's internal mount (memfd_create,
        MAP_SHARED|MAP_ANONYMOUS): inode number from this CPU's run (:meth:`get_next_ino`)."""
        ino = self.get_next_ino(cpu)
        o = self.k.ks.new_obj(S.KIND_SHMEM, npages, ino)
        return VFile(name, File(name, o, "memfd"), None, linked=False)

    def get_next_ino(self, cpu: int) -> int:
        """``shmem_reserve_inode`` on the kernel's internal mount (SB_KERNMOUNT): each CPU
        numbers its inodes from a private run of SHMEM_INO_BATCH numbers it takes from the
        superblock when its run is used up.  At boot the mount's root directory took inode 1
        from CPU 0's run, so the first memfd made on CPU 0 after boot is inode 2."""
        ino = self.shm_cpu_next.get(cpu, 0)
        if ino % SHMEM_INO_BATCH == 0:
            ino = self.shm_sb_next
            self.shm_sb_next += SHMEM_INO_BATCH
            if ino == 0:
                ino += 1
        self.shm_cpu_next[cpu] = ino + 1
        return ino

    def truncate(self, vf: VFile, npages: int) -> None:
        """Drop the file's pages at index >= npages (that nobody maps)."""
        ks = self.k.ks
        o = vf.file.obj
        base, n = int(ks.objs[o, S.O_BASE]), int(ks.objs[o, S.O_NPAGES])
        for i in range(npages, n):
            pg = int(ks.obj_pages[base + i])
            if pg >= 0:
                if ks.pages[pg, S.PG_MAPCOUNT] <= 0:
                    from numasim.mm import alloc_core as core

                    core.free_page(ks.zones, ks.vmstat, ks.pages, pg)
                ks.obj_pages[base + i] = S.PT_NONE
            elif pg == S.PT_SWAP:
                ks.obj_pages[base + i] = S.PT_NONE
        ks.objs[o, S.O_SIZE] = npages

    def unlink(self, path: str) -> None:
        path = self.norm(path)
        if path in self.dirs:
            raise _err(E.EISDIR)
        vf = self.files.pop(path, None)
        if vf is None:
            raise _err(E.ENOENT)
        vf.linked = False
        self.release(vf)

    def release(self, vf: VFile) -> None:
        """Free an unlinked file's pages once nothing holds it open (regions hold it)."""
        if vf.linked or vf.opens > 0:
            if not vf.linked and vf not in self.orphans:
                self.orphans.append(vf)
            return
        if vf in self.orphans:
            self.orphans.remove(vf)
        self.truncate(vf, 0)
        self.runner.drop_shared_policy(vf.file.obj)
        self.k.ks.objs[vf.file.obj, S.O_ALIVE] = 0

    # ------------------------------------------------------------ read / write
    def read(self, path: str) -> list[str]:
        path = self.norm(path)
        k = self.k
        knob = balancing_read(self, path)  # kernel.numa_balancing and its debugfs knobs
        if knob is not None:
            return knob
        try:  # memory_tiering/memory_tierN/nodelist, mm/numa/demotion_enabled
            tiers = tiering_read(k, path)
        except OSError as e:
            raise _err(e.errno) from None
        if tiers is not None:
            return tiers
        if path == THP_SYSFS:
            return [thp_enabled_text(k)]
        if path == THP_DEFRAG_SYSFS:
            return [thp_defrag_text(k)]
        try:  # transparent_hugepage/khugepaged/*
            kh = khugepaged_read(k, path)
        except OSError as e:
            raise _err(e.errno) from None
        if kh is not None:
            return kh
        wi = "/sys/kernel/mm/mempolicy/weighted_interleave/node"
        if path.startswith(wi):
            nid = self._wi_node(path[len(wi):])
            return [str(self.runner.wi_weight_shown(nid))]
        if path in ("/proc/sys/vm/min_free_kbytes",):
            return [str(self.runner.min_free_kbytes)]
        if path == "/proc/sys/vm/watermark_scale_factor":
            return [str(self.runner.watermark_scale_factor)]
        if path == "/proc/sys/vm/lowmem_reserve_ratio":
            # its handler recomputes the reserves on a read too (FINDINGS.md F2)
            self.runner.set_watermark_knobs(lowmem_reserve_ratio=[])
            return ["\t".join(str(r) for r in self.runner.lowmem_reserve_ratio)]
        if path in self.sysctl:
            return [self.sysctl[path]]
        cg = self._cg_of(path)
        if cg is not None:
            return self._cg_read(cg, path)
        if path.startswith("/sys/devices/system/node/"):
            return self._node_read(path)
        if path in self.files:
            return []
        if path in self.dirs:
            raise _err(E.EISDIR)
        if path.startswith(("/proc/", "/sys/")):
            return []  # a kernel file numasim does not model: shown empty
        del k
        raise _err(E.ENOENT)

    def write(self, path: str, value: str) -> int:
        """Returns the byte count written; raises VfsError with the errno."""
        path = self.norm(path)
        if balancing_write(self, path, value):
            return len(value)
        try:
            if tiering_write(self.k, path, value):
                return len(value)
        except OSError as e:
            raise _err(e.errno) from None
        if path == THP_SYSFS:  # enabled_store: sysfs_streq against the three modes
            if value.strip() not in THP_MODES:
                raise _err(E.EINVAL)
            set_thp_mode(self.k, value.strip())
            return len(value)
        if path == THP_DEFRAG_SYSFS:  # defrag_store: sysfs_streq against the five modes
            if value.strip() not in THP_DEFRAG_MODES:
                raise _err(E.EINVAL)
            set_thp_defrag(self.k, value.strip())
            return len(value)
        try:
            if khugepaged_write(self.k, path, value):
                return len(value)
        except OSError as e:
            raise _err(e.errno) from None
        wi = "/sys/kernel/mm/mempolicy/weighted_interleave/node"
        if path.startswith(wi):
            nid = self._wi_node(path[len(wi):])
            self.runner.set_wi_weight(nid, value)
            return len(value)
        if path == "/proc/sys/vm/min_free_kbytes":
            v = self._int(value)
            if v < 0:
                raise _err(E.EINVAL)
            self.runner.set_watermark_knobs(min_free_kbytes=v)
            return len(value)
        if path == "/proc/sys/vm/watermark_scale_factor":
            v = self._int(value)
            if not 1 <= v <= 3000:
                raise _err(E.EINVAL)
            self.runner.set_watermark_knobs(watermark_scale_factor=v)
            return len(value)
        if path == "/proc/sys/vm/lowmem_reserve_ratio":
            vals = [self._int(x) for x in value.replace(",", " ").split()]
            if any(v < 0 for v in vals):  # proc_dointvec_minmax, extra1 = SYSCTL_ZERO
                raise _err(E.EINVAL)
            self.runner.set_watermark_knobs(lowmem_reserve_ratio=vals)
            return len(value)
        if path in self.sysctl:
            self.sysctl[path] = value
            return len(value)
        cg = self._cg_of(path)
        if cg is not None:
            self._cg_write(cg, path, value)
            return len(value)
        if path.startswith(("/proc/", "/sys/")):
            # other kernel knobs: accepted, nothing numasim models
            return len(value)
        if path in self.dirs:
            raise _err(E.EISDIR)
        if path not in self.files:
            raise _err(E.ENOENT)
        return len(value)

    @staticmethod
    def _int(value: str) -> int:
        """A sysctl integer as ``proc_dointvec`` reads it: EINVAL unless it fits an int."""
        try:
            v = int(value.strip(), 0)
        except ValueError:
            raise _err(E.EINVAL) from None
        if not -(1 << 31) <= v < (1 << 31):
            raise _err(E.EINVAL)
        return v

    def _wi_node(self, suffix: str) -> int:
        if self.k.kgen != KGEN_6_12 or not suffix.isdigit():
            raise _err(E.ENOENT)
        nid = int(suffix)
        if nid not in self.k.machine.node_ids:
            raise _err(E.ENOENT)
        return nid

    def _node_read(self, path: str) -> list[str]:
        k = self.k
        rest = path[len("/sys/devices/system/node/"):]
        names = {"online": k.machine.node_ids, "possible": k.machine.node_ids,
                 "has_memory": k.machine.memory_nodes, "has_normal_memory": [
                     n for n in k.machine.node_ids if k.ks.nodeinfo[n, S.N_NORMAL]],
                 "has_cpu": k.machine.cpu_nodes}
        if rest in names:
            return [format_list(names[rest])]
        if rest.startswith("node") and "/" in rest:
            nid_s, _, leaf = rest[4:].partition("/")
            if nid_s.isdigit() and int(nid_s) in k.machine.node_ids:
                nid = int(nid_s)
                if leaf == "numastat":
                    from numasim.mm.constants import NUMASTAT_NAMES

                    return [f"{name} {int(v)}" for name, v in
                            zip(NUMASTAT_NAMES, k.ks.numastat[nid], strict=True)]
                if leaf == "vmstat":  # only the node counters numasim keeps: promotion's
                    from numasim.mm.numa_balancing import numab
                    from numasim.mm.numa_promote import promotion

                    return [f"{name} {v}" for name, v in
                            promotion(numab(k)).node_vmstat(nid).items()]
                if leaf == "meminfo":  # node_read_meminfo: the rows numasim keeps
                    from numasim.mm.procviews import node_meminfo_lines

                    return node_meminfo_lines(k, nid)
                if leaf == "distance":
                    return [" ".join(str(k.machine.dist(nid, j)) for j in k.machine.node_ids)]
                if leaf == "cpulist":
                    return [format_list(c for c, n in k.machine.cpu_to_node.items()
                                        if n == nid)]
        raise _err(E.ENOENT)

    # ------------------------------------------------------------ cgroups
    def _cg_files(self, tree: dict[str, Cgroup], rel: str) -> set[str]:
        files = {"cgroup.procs", "cgroup.subtree_control", "cgroup.controllers"}
        if rel == "":
            files |= {"cpuset.cpus.effective", "cpuset.mems.effective"}
        else:
            parent = posixpath.dirname(rel) if "/" in rel else ""
            if tree[parent].subtree_cpuset:
                files |= {"cpuset.mems", "cpuset.cpus", "cpuset.mems.effective",
                          "cpuset.cpus.effective", "cpuset.cpus.partition"}
        return files

    def _cg_split(self, cg: tuple[str, str]) -> tuple[dict[str, Cgroup], str, str]:
        mnt, rel = cg
        tree = self.cgroups[mnt]
        group, leaf = (posixpath.dirname(rel), posixpath.basename(rel)) if rel else ("", "")
        if group == ".":
            group = ""
        if group not in tree or leaf not in self._cg_files(tree, group):
            raise _err(E.EISDIR if rel in tree else E.ENOENT)
        return tree, group, leaf

    def effective_mems(self, tree: dict[str, Cgroup], rel: str) -> set[int]:
        allm = set(self.k.machine.memory_nodes)
        if rel == "":
            return allm
        parent = posixpath.dirname(rel) if "/" in rel else ""
        pe = self.effective_mems(tree, parent)
        own = tree[rel].mems
        eff = (own & pe) if own else set()
        return eff or pe

    def _cg_read(self, cg: tuple[str, str], path: str) -> list[str]:
        tree, group, leaf = self._cg_split(cg)
        if leaf == "cgroup.procs":
            return [str(self.runner.pid_of_task(t)) for t, v in self.task_cgroup.items()
                    if v == (cg[0], group) and self.k.alive(t)]
        if leaf == "cgroup.subtree_control":
            return ["cpuset"] if tree[group].subtree_cpuset else [""]
        if leaf == "cgroup.controllers":
            return ["cpuset cpu io memory pids"]
        if leaf == "cpuset.mems":
            return [format_list(tree[group].mems or ())]
        if leaf == "cpuset.mems.effective":
            return [format_list(self.effective_mems(tree, group))]
        if leaf in ("cpuset.cpus", "cpuset.cpus.effective"):
            return [format_list(self.k.machine.cpus)] if leaf.endswith("effective") else [""]
        return ["member"]

    def _cg_write(self, cg: tuple[str, str], path: str, value: str) -> None:
        from numasim.bitmap import parse_list

        tree, group, leaf = self._cg_split(cg)
        if leaf == "cgroup.subtree_control":
            for word in value.split():
                if word in ("+cpuset", "-cpuset"):
                    tree[group].subtree_cpuset = word == "+cpuset"
                elif word.lstrip("+-") not in ("cpu", "io", "memory", "pids"):
                    raise _err(E.EINVAL)
            return
        if leaf == "cgroup.procs":
            pid = self._int(value)
            t = self.runner.task_of_pid(pid)
            if t is None:
                raise _err(E.ESRCH)
            self.attach(t, cg[0], group)
            return
        if leaf == "cpuset.mems":
            try:
                mems = set(parse_list(value.strip()))
            except ValueError:
                raise _err(E.EINVAL) from None
            if not mems <= set(self.k.machine.memory_nodes):
                raise _err(E.EINVAL)
            old = {t: self.effective_mems(tree, self.task_cgroup[t][1])
                   for t in self.task_cgroup if self.k.alive(t)
                   and self.task_cgroup[t][0] in self._same_tree(tree)}
            tree[group].mems = mems
            for t, before in old.items():
                after = self.effective_mems(tree, self.task_cgroup[t][1])
                if after != before:
                    self.runner.cpuset_change(t, after)
            return
        # other cpuset files: accepted

    def _same_tree(self, tree: dict[str, Cgroup]) -> set[str]:
        return {m for m, tr in self.cgroups.items() if tr is tree}

    def attach(self, t: int, mnt: str, group: str) -> None:
        """``cpuset_attach``: the task (and its mm) take the cpuset's effective mems."""
        tree = self.cgroups[mnt]
        old = self.task_cgroup.get(t)
        before = (self.effective_mems(self.cgroups[old[0]], old[1])
                  if old is not None and old[0] in self.cgroups else
                  set(self.k.machine.memory_nodes))
        self.task_cgroup[t] = (mnt, group)
        self.k.task_names.setdefault(t, {})["cpuset"] = posixpath.basename(group) or "/"
        after = self.effective_mems(tree, group)
        if after != before or group != (old[1] if old else ""):
            self.runner.cpuset_change(t, after, moved=True)

    def fork_task(self, parent: int, child: int) -> None:
        if parent in self.task_cgroup:
            self.task_cgroup[child] = self.task_cgroup[parent]
