"""numasim.mm.script.vfs: the files, mounts and cgroups a scenario reaches by path."""

from __future__ import annotations

from pathlib import Path

import pytest

from numasim.mm.script import run_script
from numasim.mm.script.lang import inline_script
from numasim.mm.script.vfs import parse_tmpfs_mpol
from numasim.topology.loaders import layout

LAYOUT = Path(__file__).parent / "data" / "topologies" / "layouts" / "4node-asym.layout"
M = layout.load(LAYOUT)


def answers(cmds: str, kernel: str = "6.12") -> list[str]:
    out = [r.text for r in run_script(inline_script(cmds), M, kernel=kernel)]
    return [x for x in out if x.startswith(("ret ", "| ", "cat ", "summary "))]


def test_directories_and_mounts() -> None:
    assert answers("mkdir /tmp/a; mkdir /tmp/a; mkdir /nope/b; rmdir /tmp/b; "
                   "mount tmpfs /tmp/a; rmdir /tmp/a; umount /tmp/a; umount /tmp/a; "
                   "rmdir /tmp/a") == [
        "ret op=mkdir rc=0", "ret op=mkdir rc=-1 errno=EEXIST",
        "ret op=mkdir rc=-1 errno=ENOENT", "ret op=rmdir rc=-1 errno=ENOENT",
        "ret op=mount rc=0", "ret op=rmdir rc=-1 errno=EBUSY", "ret op=umount rc=0",
        "ret op=umount rc=-1 errno=EINVAL", "ret op=rmdir rc=0"]


def test_busy_tmpfs_and_missing_directory() -> None:
    out = answers("mkdir /tmp/a; mount tmpfs /tmp/a; mmap 2 file=/tmp/a/f; umount /tmp/a; "
                  "munmap; umount /tmp/a; mmap 2 file=/tmp/nodir/f")
    assert out[2:] == ["ret op=umount rc=-1 errno=EBUSY", "ret op=munmap rc=0",
                       "ret op=umount rc=0", "ret op=open rc=-1 errno=ENOENT path=/tmp/nodir/f"]


def test_unlinked_file_lives_while_mapped() -> None:
    out = answers("mmap 4 file=/mnt/tmpfs/u at=0x40000000; touch 0 4; unlink /mnt/tmpfs/u; "
                  "query 0 4 brief; mmap 4 file=/mnt/tmpfs/u at=0x40200000; "
                  "touch 0 4 resident; query 0 4 brief")
    assert out[1] == "summary region=0 off=0 n=4 node0=4 runs=0-3:0 seq=0,0,0,0"
    # the name now opens a NEW, empty file: nothing resident
    assert out[2] == "summary region=1 off=0 n=4 absent=4 runs=0-3:ENOENT seq=-,-,-,-"


def test_cgroup_errors_and_tree_outliving_its_mount() -> None:
    out = answers("mkdir /tmp/cg; mount cgroup2 /tmp/cg; mkdir /tmp/cg/x; "
                  "write /tmp/cg/x/cpuset.mems 1; "  # no +cpuset yet: no such file
                  "write /tmp/cg/cgroup.subtree_control +cpuset; "
                  "write /tmp/cg/x/cpuset.mems 7; write /tmp/cg/x/cpuset.mems 1-2; "
                  "write /tmp/cg/x/cgroup.procs 0; rmdir /tmp/cg/x; umount /tmp/cg; "
                  "get_mempolicy mems_allowed; mount cgroup2 /tmp/cg; cat /tmp/cg/x/cpuset.mems; "
                  "write /tmp/cg/cgroup.procs 0; rmdir /tmp/cg/x")
    assert out == [
        "ret op=mkdir rc=0", "ret op=mount rc=0", "ret op=mkdir rc=0",
        "ret op=write rc=-1 errno=ENOENT path=/tmp/cg/x/cpuset.mems",
        "ret op=write rc=7 path=/tmp/cg/cgroup.subtree_control",
        "ret op=write rc=-1 errno=EINVAL path=/tmp/cg/x/cpuset.mems",
        "ret op=write rc=3 path=/tmp/cg/x/cpuset.mems",
        "ret op=write rc=1 path=/tmp/cg/x/cgroup.procs",
        "ret op=rmdir rc=-1 errno=EBUSY", "ret op=umount rc=0",
        "ret op=mount rc=0", "| 1-2",
        "ret op=write rc=1 path=/tmp/cg/cgroup.procs", "ret op=rmdir rc=0"]


def test_weight_files() -> None:
    p = "/sys/kernel/mm/mempolicy/weighted_interleave/node"
    assert answers(f"write {p}2 256; write {p}2 0; cat {p}2; write {p}9 1; cat {p}1") == [
        f"ret op=write rc=-1 errno=EINVAL path={p}2", f"ret op=write rc=1 path={p}2", "| 1",
        f"ret op=write rc=-1 errno=ENOENT path={p}9", "| 1"]


def test_other_kernel_files_are_accepted() -> None:
    assert answers("write /proc/sys/vm/drop_caches 3; cat /proc/sys/vm/zone_reclaim_mode; "
                   "cat /proc/self/status; cat /tmp/missing") == [
        "ret op=write rc=1 path=/proc/sys/vm/drop_caches", "| 0",
        "cat path=/tmp/missing errno=ENOENT"]


@pytest.mark.parametrize(("text", "want"), [
    ("interleave:1-3", (3, 0, frozenset({1, 2, 3}))),
    ("bind=static:2", (2, 1 << 15, frozenset({2}))),
    ("prefer:1", (1, 0, frozenset({1}))),
    ("local", (4, 0, frozenset())),
])
def test_tmpfs_mpol_option(text: str, want) -> None:
    assert parse_tmpfs_mpol(text) == want


def test_bad_tmpfs_mpol_option() -> None:
    assert answers("mkdir /tmp/t; mount tmpfs /tmp/t mpol=spread:1") == [
        "ret op=mkdir rc=0", "ret op=mount rc=-1 errno=EINVAL"]
