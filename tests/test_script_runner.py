"""numasim.mm.script.runner: scenario commands on the simulated kernel, answered in the
oracle probe's own words (exact lines), plus numasim's explain and swapout."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from numasim.mm.script import render_json, run_script
from numasim.mm.script.lang import inline_script
from numasim.topology.loaders import layout

LAYOUTS = Path(__file__).parent / "data" / "topologies" / "layouts"
_M: dict = {}


def machine(name: str = "4node-asym", kernel: str = "6.12"):
    if (name, kernel) not in _M:
        prof = kernel if kernel in ("6.12", "6.1") else "6.12"
        _M[(name, kernel)] = layout.load(LAYOUTS / f"{name}.layout", kernel=prof)
    return _M[(name, kernel)]


def run(cmds: str, name: str = "4node-asym", kernel: str = "6.12") -> list[str]:
    return [r.text for r in run_script(inline_script(cmds), machine(name, kernel),
                                       kernel=kernel)]


def results(cmds: str, **kw) -> list[str]:
    """The result lines only (no command echoes, no final exit line)."""
    return [x for x in run(cmds, **kw) if not x.startswith("> ")][:-1]


def seq(lines: list[str]) -> str:
    return next(x for x in lines if x.startswith("summary ")).split(" seq=")[1]


# ------------------------------------------------------------------ placement
def test_local_by_cpu_and_output_format() -> None:
    out = run("cpu 2; mmap 4 at=0x40000000; touch 0 4; query 0 4")
    assert out == [
        "> cpu 2", "ret op=sched_setaffinity rc=0", "cpu cpu=2 node=2",
        "> mmap 4 at=0x40000000",
        "region id=0 name=r0 kind=anon addr=0x40000000 pages=4 vpn=262144 pgoff0=262144",
        "> touch 0 4", "touched region=0 off=0 n=4 mode=write",
        "> query 0 4",
        "page region=0 index=0 node=2", "page region=0 index=1 node=2",
        "page region=0 index=2 node=2", "page region=0 index=3 node=2",
        "summary region=0 off=0 n=4 node2=4 runs=0-3:2 seq=2,2,2,2",
        "exit rc=0"]


def test_query_brief_counts_and_absent_pages() -> None:
    out = results("mmap 4 at=0x40000000; touch 0 2; query 0 4 brief; query 0 4 counts")
    assert out[-2] == "summary region=0 off=0 n=4 node0=2 absent=2 runs=0-1:0,2-3:ENOENT " \
                      "seq=0,0,-,-"
    assert out[-1] == "summary region=0 off=0 n=4 node0=2 absent=2"


def test_untouched_anon_page_is_efault_on_6_1() -> None:
    assert "2-3:EFAULT" in results("mmap 4 at=0x40000000; touch 0 2; query 0 4 brief",
                                   kernel="6.1")[-1]


def test_bind_nearest_and_interleave_by_address() -> None:
    # 4node-asym: node 0's fallback order is 0 1 2 3 -> bind {2,3} from CPU 0 uses node 2
    out = results("set_mempolicy bind 2-3; mmap 4 at=0x40000000; touch 0 4; query 0 4 brief")
    assert seq(out) == "2,2,2,2"
    out = results("mmap 6 at=0x40001000; mbind 0 6 interleave 1-3; touch 0 6; query 0 6 brief")
    # ilx = virtual page number 0x40001 = 262145; 262145 % 3 = 2 -> node 3 first
    assert seq(out) == "3,1,2,3,1,2"


def test_get_mempolicy_lines() -> None:
    out = results("set_mempolicy interleave 0-2 static; get_mempolicy; get_mempolicy node; "
                  "get_mempolicy mems_allowed; get_mempolicy maxnode=3; "
                  "mmap 4 at=0x40000000; get_mempolicy addr=1; get_mempolicy rawaddr=0x50000000")
    assert out[1:] == [
        "policy query=task flags=0 mode=interleave mode_flags=static raw=32771 nodes=0-2",
        "policy query=task flags=1 node=0",
        "policy query=task flags=4 mems_allowed=0-3",
        "policy query=task flags=0 rc=-1 errno=EINVAL",
        "region id=0 name=r0 kind=anon addr=0x40000000 pages=4 vpn=262144 pgoff0=262144",
        "policy query=region0:1 flags=2 mode=default mode_flags=none raw=0 nodes=none",
        "policy query=raw:0x50000000 flags=2 rc=-1 errno=EFAULT"]


def test_errnos_of_bad_calls() -> None:
    out = results("set_mempolicy bind none; set_mempolicy 7 0; set_mempolicy bind 0 static "
                  "relative; set_mempolicy bind 0 maskaddr=0x10; mmap 4 at=0x40000000; "
                  "mbind 0 4 bind 1 mflags=8; mbind_raw +1 4096 bind 1; "
                  "home_node 0 4 1; move 0 1 9")
    assert [x for x in out if x.startswith("ret")] == [
        "ret op=set_mempolicy rc=-1 errno=EINVAL", "ret op=set_mempolicy rc=-1 errno=EINVAL",
        "ret op=set_mempolicy rc=-1 errno=EINVAL", "ret op=set_mempolicy rc=-1 errno=EFAULT",
        "ret op=mbind rc=-1 errno=EINVAL", "ret op=mbind rc=-1 errno=EINVAL",
        "ret op=set_mempolicy_home_node rc=-1 errno=ENOENT",
        "ret op=move_pages rc=-1 errno=ENODEV"]


def test_weighted_interleave_only_on_6_12() -> None:
    assert results("set_mempolicy weighted_interleave 0-1", kernel="6.1") == [
        "ret op=set_mempolicy rc=-1 errno=EINVAL"]
    out = results("write /sys/kernel/mm/mempolicy/weighted_interleave/node1 3",
                  kernel="6.1")
    assert out == ["ret op=write rc=-1 errno=ENOENT "
                   "path=/sys/kernel/mm/mempolicy/weighted_interleave/node1"]
    out = results("write /sys/kernel/mm/mempolicy/weighted_interleave/node1 3; "
                  "cat /sys/kernel/mm/mempolicy/weighted_interleave/node1; "
                  "mmap 8 at=0x40000000; mbind 0 8 weighted_interleave 0-1; touch 0 8; "
                  "query 0 8 brief")
    assert out[1] == "| 3"
    # ilx = 262144 = 0 mod (1 + 3): node 0 once, then node 1 three times
    assert seq(out) == "0,1,1,1,0,1,1,1"


# ------------------------------------------------------------------ processes
def test_fork_exec_and_exit_status() -> None:
    text = ("set_mempolicy bind 1\nfork\nget_mempolicy\nfork\nexit\nendfork\n"
            "exec get_mempolicy; endfork\nendfork\ngetcpu\n")
    out = [r.text for r in run_script(text, machine(), kernel="6.12")]
    assert out == [
        "> set_mempolicy bind 1", "ret op=set_mempolicy rc=0",
        "> fork", "fork role=child",
        "> get_mempolicy",
        "policy query=task flags=0 mode=bind mode_flags=none raw=2 nodes=1",
        "> fork", "fork role=child", "> exit", "child exit=0",
        "> exec get_mempolicy; endfork",
        "> get_mempolicy",
        "policy query=task flags=0 mode=bind mode_flags=none raw=2 nodes=1",
        "> endfork", "error msg=endfork_outside_child",
        "child exit=0",
        "> getcpu", "cpu cpu=0 node=0", "exit rc=0"]


def test_segfault_kills_the_process() -> None:
    out = run("mmap 4 at=0x40000000; mprotect 0 4 none; fork; touch 0 1; endfork; "
              "touch 1 1; cpu 1")
    assert "child signal=11" in out
    assert out[-1] == "exit rc=139"
    assert "> cpu 1" not in out


def test_setuid_drops_cap_sys_nice() -> None:
    out = results("mmap 4 at=0x40000000; touch 0 4; fork; setuid 65534; "
                  "mbind 0 4 bind 1 move_all; move 0 1 1 move_all; migrate 0 1 pid=1; "
                  "setuid 0; endfork")
    assert [x for x in out if x.startswith("ret")] == [
        "ret op=setuid rc=0", "ret op=mbind rc=-1 errno=EPERM",
        "ret op=move_pages rc=-1 errno=EPERM", "ret op=migrate_pages rc=-1 errno=EPERM",
        "ret op=setuid rc=-1 errno=EPERM"]


def test_oom_kill_of_a_bound_child_is_logged() -> None:
    out = run("write /proc/sys/kernel/printk 1; fork; set_mempolicy bind 1; "
              "mmap 70000 at=0x40000000; touch 0 70000; echo not reached; endfork; "
              "dmesg oom-kill:constraint upto=,cpuset")
    assert "child signal=9" in out
    assert "> echo not reached" not in out
    assert "klog | oom-kill:constraint=CONSTRAINT_MEMORY_POLICY,nodemask=1" in out
    assert not any(x.startswith("[") for x in out)  # printk 1: nothing on the console


# ------------------------------------------------------------------ VMAs and pages
def test_vmas_split_and_merge_back() -> None:
    out = results("mmap 16 at=0x40000000; mbind 4 8 bind 1; vmas; mbind 4 8 default; vmas")
    assert out[2:] == ["vma region=0 start=0 end=4 perms=rw-p",
                       "vma region=0 start=4 end=12 perms=rw-p",
                       "vma region=0 start=12 end=16 perms=rw-p", "vmas region=0 count=3",
                       "ret op=mbind rc=0",
                       "vma region=0 start=0 end=16 perms=rw-p", "vmas region=0 count=1"]


def test_neighbouring_mmaps_show_as_one_vma() -> None:
    out = results("mmap 8 at=0x40000000; mmap 8 at=0x40008000; vmas; mbind 0 8 bind 1; vmas")
    assert "vma region=1 start=-8 end=8 perms=rw-p" in out
    assert out[-2:] == ["vma region=1 start=0 end=8 perms=rw-p", "vmas region=1 count=1"]


def test_move_keeps_contents() -> None:
    out = results("mmap 8 at=0x40000000; touch 0 8; move 0 8 3; verify 0 8; "
                  "mbind 0 8 bind 2 move; query 0 8 brief; verify 0 8")
    assert "verified region=0 off=0 n=8 ok=8 bad=0 first_bad=-1" in out
    assert seq(out) == "2,2,2,2,2,2,2,2"
    assert out[-1] == "verified region=0 off=0 n=8 ok=8 bad=0 first_bad=-1"


def test_shmem_pwrite_uses_the_inode_index_ramfs_the_counter() -> None:
    # the first memfd after boot is inode 2 on CPU 0: page i -> node (2 + i) mod 4
    out = results("mmap 8 memfd at=0x40000000; set_mempolicy interleave 0-3; pwrite 0 8; "
                  "set_mempolicy default; touch 0 8 resident; query 0 8 brief")
    assert seq(out) == "2,3,0,1,2,3,0,1"
    out = results("mmap 6 file=/mnt/ramfs/f at=0x40000000; set_mempolicy interleave 1-3; "
                  "pwrite 0 6; get_mempolicy node; set_mempolicy default; "
                  "touch 0 6 resident; query 0 6 brief")
    assert seq(out) == "1,2,3,1,2,3"
    assert "policy query=task flags=1 node=1" in out


def test_tmpfs_mount_policy() -> None:
    out = results("mkdir /tmp/t; mount tmpfs /tmp/t mpol=interleave:1-3; "
                  "mmap 6 file=/tmp/t/f at=0x40000000; get_mempolicy addr=0; touch 0 6; "
                  "query 0 6 brief; munmap; unlink /tmp/t/f; umount /tmp/t; rmdir /tmp/t")
    assert "policy query=region0:0 flags=2 mode=interleave mode_flags=none raw=3 nodes=1-3" \
        in out
    # inode 2 of a fresh tmpfs: (2 + i) mod 3 -> nodes 3, 1, 2, ...
    assert seq(out) == "3,1,2,3,1,2"
    assert out[-3:] == ["ret op=unlink rc=0", "ret op=umount rc=0", "ret op=rmdir rc=0"]


def test_swapout_reapplies_the_policy_at_swap_in() -> None:
    out = results("mmap 4 at=0x40000000; touch 0 4; swapout 0 4; query 0 4 brief; "
                  "set_mempolicy bind 3; touch 0 4 read; query 0 4 brief; verify 0 4")
    assert "swapped region=0 off=0 n=4 pages=4" in out
    assert [x.split(" seq=")[1] for x in out if x.startswith("summary")] == ["-,-,-,-",
                                                                            "3,3,3,3"]
    assert out[-1] == "verified region=0 off=0 n=4 ok=4 bad=0 first_bad=-1"


def test_madvise_pageout_is_swapout_in_the_probes_words() -> None:
    """The oracle's way of swapping (scenario 45): MADV_PAGEOUT answers like the probe, the
    pages leave memory and come back under the policy of the swap-in time; MADV_COLD moves
    nothing.  On 6.1 a swapped page is ENOENT (a swap entry), a never-touched one EFAULT."""
    cmds = ("set_mempolicy bind 1; mmap 4 at=0x40000000; touch 0 2; madvise 0 4 cold; "
            "query 0 4 brief; madvise 0 4 pageout; query 0 4 brief; set_mempolicy bind 2; "
            "touch 0 2 read; query 0 2 brief; verify 0 2")
    for kernel, never in (("6.12", "ENOENT"), ("6.1", "EFAULT")):
        out = results(cmds, kernel=kernel)
        assert out.count("ret op=madvise rc=0") == 2
        assert not any(x.startswith("swapped ") for x in out)
        sums = [x for x in out if x.startswith("summary")]
        assert sums[0].endswith(f"runs=0-1:1,2-3:{never} seq=1,1,-,-")
        after = "runs=0-3:ENOENT" if never == "ENOENT" else "runs=0-1:ENOENT,2-3:EFAULT"
        assert after in sums[1]
        assert sums[2].endswith("seq=2,2")
        assert out[-1] == "verified region=0 off=0 n=2 ok=2 bad=0 first_bad=-1"


def test_madvise_unknown_advice_names_the_valid_ones() -> None:
    from numasim.errors import ScriptError

    with pytest.raises(ScriptError, match=r"hugepage\|nohugepage\|pageout\|cold"):
        run("mmap 4; madvise 0 4 dontneed")


def test_explain() -> None:
    out = results("cpu 1; mmap 4 at=0x40000000; mbind 0 4 interleave 0,2; explain 1; touch 1 1; "
                  "query 1 1 brief")
    ex = [x.split(" | ", 1)[1] for x in out if x.startswith("explain ")]
    assert any("vma policy interleave:0,2" in x for x in ex)
    assert any(x.strip() == "interleave index 262145 mod 2 nodes = 1 -> node 2" for x in ex)
    assert ex[-1] == "Result: the page goes to node 2."
    assert "explained region=0 index=1 node=- fault_node=2" in out
    assert seq(out) == "2"  # and the fault does what explain said


# ------------------------------------------------------------------ emulated files
def test_cgroup_cpuset_rebinds_and_migrates() -> None:
    out = results("mmap 8 at=0x40000000; touch 0 8; mbind 0 8 bind 0-1; "
                  "mkdir /tmp/cg; mount cgroup2 /tmp/cg; "
                  "write /tmp/cg/cgroup.subtree_control +cpuset; mkdir /tmp/cg/x; "
                  "write /tmp/cg/x/cpuset.mems 2-3; cat /tmp/cg/x/cpuset.mems.effective; "
                  "write /tmp/cg/x/cgroup.procs 0; get_mempolicy mems_allowed; "
                  "get_mempolicy addr=0; query 0 8 brief; set_mempolicy bind 0; "
                  "write /tmp/cg/cgroup.procs 0; rmdir /tmp/cg/x; umount /tmp/cg; "
                  "rmdir /tmp/cg")
    assert "| 2-3" in out
    assert "ret op=write rc=1 path=/tmp/cg/x/cgroup.procs" in out
    assert "policy query=task flags=4 mems_allowed=2-3" in out
    # bind {0,1} remapped onto {2,3}; the pages (on node 0) migrated 0 -> 2
    assert "policy query=region0:0 flags=2 mode=bind mode_flags=none raw=2 nodes=2-3" in out
    assert seq(out) == "2,2,2,2,2,2,2,2"
    assert "ret op=set_mempolicy rc=-1 errno=EINVAL" in out
    assert out[-3:] == ["ret op=rmdir rc=0", "ret op=umount rc=0", "ret op=rmdir rc=0"]


def test_sysctl_writes_recompute_watermarks() -> None:
    out = results("write /proc/sys/vm/min_free_kbytes 7735; zones; "
                  "write /proc/sys/vm/watermark_scale_factor 200; zones; "
                  "write /proc/sys/vm/lowmem_reserve_ratio 64; "
                  "cat /proc/sys/vm/lowmem_reserve_ratio; zones", name="4node-normal")
    zones = [x for x in out if x.startswith("zone node=0 zone=DMA32")]
    # the values the real 6.12 printed after the same writes (oracle scenario 71)
    assert "min=1528 low=2271 high=3014" in zones[0]
    assert "min=1528 low=16407 high=31286" in zones[1]
    assert "| 64\t256\t32\t0\t0" in out
    dma = [x for x in out if x.startswith("zone node=0 zone=DMA ")]
    assert dma[-1].endswith("protection=0,11624,11624,11624,11624")


def test_dmesg_boot_lines() -> None:
    out = results("dmesg Fallback; dmesg Policy")
    assert out == ["klog | Fallback order for Node 0: 0 1 2 3",
                   "klog | Fallback order for Node 1: 1 0 2 3",
                   "klog | Fallback order for Node 2: 2 3 1 0",
                   "klog | Fallback order for Node 3: 3 2 1 0",
                   "dmesg pattern=Fallback lines=4",
                   "klog | Policy zone: DMA32", "dmesg pattern=Policy lines=1"]


def test_numastat_delta_counts_page_tables_and_pages() -> None:
    out = results("cpu 0; mmap 8 at=0x40000000; numastat_mark; mbind 0 8 bind 3; "
                  "touch 0 8; numastat_delta")
    deltas = [x for x in out if x.startswith("numastat_delta")]
    # PMD + PTE table under the task policy (local), 8 pages bound to node 3
    assert deltas[0] == ("numastat_delta node=0 numa_hit=2 numa_miss=0 numa_foreign=0 "
                         "interleave_hit=0 local_node=2 other_node=0")
    assert deltas[3] == ("numastat_delta node=3 numa_hit=8 numa_miss=0 numa_foreign=0 "
                         "interleave_hit=0 local_node=0 other_node=8")


def test_probe_runtime_errors_are_answered_like_the_probe() -> None:
    out = run("mmap 4 at=0x40000000; touch 2 4; region 7; munmap; query 0 1")
    assert "error msg=range_outside_region off=2 n=4 region_pages=4" in out
    assert "error msg=no_such_region id=7" in out
    assert out[-2:] == ["error msg=no_current_region", "exit rc=2"]


def test_json_output_shape() -> None:
    recs = run_script(inline_script("mmap 4 at=0x40000000; mbind 0 4 bind 9; touch 0 1; "
                                    "query 0 2; get_mempolicy; numastat_mark; vmas; fork; "
                                    "endfork"), machine(), kernel="6.12")
    objs = [json.loads(x) for x in render_json(recs).splitlines()]
    assert objs[0] == {"op": "mmap", "region": 0, "name": "r0", "kind": "anon",
                       "addr": 0x40000000, "pages": 4, "vpn": 262144, "pgoff0": 262144,
                       "ret": 0x40000000, "line": 1}
    assert objs[1] == {"op": "mbind", "ret": -1, "errno": "EINVAL", "line": 2}
    assert {"op": "query", "region": 0, "page": 0, "node": 0, "line": 4} in objs
    assert {"op": "query", "region": 0, "page": 1, "errno": "ENOENT", "line": 4} in objs
    gm = next(o for o in objs if o["op"] == "get_mempolicy")
    assert (gm["mode"], gm["flags"], gm["nodes"]) == ("default", [], [])
    assert {"op": "vmas", "region": 0, "count": 1, "line": 7} in objs
    assert {"op": "child", "exit": 0, "line": 9} in objs
    assert all("line" in o for o in objs)


@pytest.mark.parametrize("kernel", ["6.12", "6.1", "2.6.7"])
def test_every_generation_runs(kernel: str) -> None:
    out = results("set_mempolicy interleave 0-3; mmap 8 at=0x40000000; touch 0 8; "
                  "query 0 8 brief", kernel=kernel)
    # 0x40000000 is page 262144 = 0 mod 4 (and 2.6.7 counts from the VMA start: also 0)
    assert seq(out) == "0,1,2,3,0,1,2,3"
