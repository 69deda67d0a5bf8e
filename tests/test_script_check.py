"""numasim.mm.script.check: how a numasim run is held against an oracle recording."""

from __future__ import annotations

from numasim.mm.script.check import (
    check_lines,
    check_numa_maps,
    check_numastat,
    check_zones,
    probe_buffer_pages,
)


def delta(node: int, hit: int, miss: int = 0, foreign: int = 0, il: int = 0, local: int = 0,
          other: int = 0) -> str:
    return (f"numastat_delta node={node} numa_hit={hit} numa_miss={miss} numa_foreign={foreign} "
            f"interleave_hit={il} local_node={local} other_node={other}")


def window(*lines: str) -> list[str]:
    return ["> numastat_mark", "numastat_mark ok=1", "> touch 0 8",
            "touched region=0 off=0 n=8 mode=write", "> numastat_delta", *lines]


def test_lines_ignore_noisy_and_console_lines() -> None:
    exp = ["> cpu 0", "[   13.686327] Out of memory: Killed process 181 (numaprobe)",
           "child signal=9", "| 4443", "zone node=0 zone=DMA free=1", "exit rc=0"]
    got = ["> cpu 0", "child signal=9", "| 4470", "zone node=0 zone=DMA free=2", "exit rc=0"]
    assert check_lines(exp, got) == []
    assert len(check_lines(exp, got[:-1])) == 1


def test_fill_scenarios_compare_node_order_only() -> None:
    exp = ["> fill 1 200", "summary region=0 off=0 n=600 node1=177 node2=423 "
           "runs=0-176:1,177-599:2"]
    near = ["> fill 1 200", "summary region=0 off=0 n=600 node1=200 node2=400 "
            "runs=0-199:1,200-599:2"]
    wrong = ["> fill 1 200", "summary region=0 off=0 n=600 node1=200 node2=400 "
             "runs=0-399:2,400-599:1"]
    assert check_lines(exp, near) == []
    assert len(check_lines(exp, wrong)) == 1


def test_numastat_accepts_a_few_extra_real_allocations_only() -> None:
    base = [delta(0, 2, local=2), delta(1, 8, other=8)]
    first = window(delta(0, 0), delta(1, 0)) + ["> cpu 0"]  # a scenario's first window
    assert check_numastat(first + window(*base), first + window(*base)) == []
    extra = [delta(0, 5, local=5), delta(1, 8, other=8)]
    assert check_numastat(first + window(*extra), first + window(*base)) == []
    fewer = [delta(0, 1, local=1), delta(1, 8, other=8)]
    assert check_numastat(first + window(*fewer), first + window(*base))  # real < numasim
    moved = [delta(0, 2, local=2), delta(1, 7, other=7), ]
    assert check_numastat(first + window(*moved), first + window(*base))
    many = [delta(0, 15, local=15), delta(1, 8, other=8)]
    assert check_numastat(first + window(*many), first + window(*base))


def test_numastat_noise_only_on_the_tasks_nodes() -> None:
    base = [delta(0, 2, local=2), delta(1, 8, other=8), delta(2, 0)]
    first = window(delta(0, 0), delta(1, 0), delta(2, 0)) + ["> cpu 0"]
    noisy1 = [delta(0, 2, local=2), delta(1, 11, other=11), delta(2, 0)]
    noisy2 = [delta(0, 2, local=2), delta(1, 8, other=8), delta(2, 3, other=3)]
    # the task's kernel allocations go to node 1 (say, a task BIND 1): noise allowed there
    nodes = [{0}, {0, 1}]
    assert check_numastat(first + window(*noisy1), first + window(*base),
                          noise_nodes=nodes) == []
    assert check_numastat(first + window(*noisy2), first + window(*base), noise_nodes=nodes)
    stray = [delta(0, 2, local=2), delta(1, 8, other=8), delta(2, 1, other=1)]
    assert check_numastat(first + window(*stray), first + window(*base),
                          noise_nodes=nodes) == []


def test_numastat_first_window_and_interleave_windows() -> None:
    assert check_numastat(window(delta(0, 11, local=11)), window(delta(0, 0))) == []
    assert check_numastat(window(delta(0, 17, local=17)), window(delta(0, 0)))
    # counter interleaving: a background page took one turn, the rest moved one node on
    exp = [delta(0, 1, il=1, local=1), delta(1, 1, il=1, other=1), delta(2, 1, il=1, other=1)]
    got = [delta(0, 0), delta(1, 1, il=1, other=1), delta(2, 1, il=1, other=1)]
    pre = window(delta(0, 0)) + ["> cpu 0"]
    assert check_numastat(pre + window(*exp), pre + window(*got)) == []
    assert check_numastat(pre + window(*got), pre + window(*exp))  # total must not drop


def test_probe_buffer_pages_from_the_probes_callocs() -> None:
    """query: 12 B a page, move: 16, touch resident: 1; the largest call + 1 page."""
    assert probe_buffer_pages(["> query 0 4096 counts"]) == 12 + 1
    assert probe_buffer_pages(["> move 0 8192 0"]) == 32 + 1
    assert probe_buffer_pages(["> touch 0 80000 resident"]) == 20 + 1
    assert probe_buffer_pages(["> query 0 16", "> query 0 2048 counts"]) == 6 + 1
    assert probe_buffer_pages(["> touch 0 8192", "> mbind 0 8 bind 1 move", "> nodeof 0 4",
                               "> query", "> move 0 x 1"]) == 0


def test_numastat_allows_the_probes_heap_pages_in_their_window() -> None:
    """A move_pages call in the window may add its arrays' heap pages (recorded: +19 for
    a move of 8192 pages, FINDINGS.md F12); the same extra without such a call is an error."""
    first = window(delta(0, 0), delta(1, 0)) + ["> cpu 0"]
    base = [delta(0, 4096, local=4096), delta(1, 0)]
    real = [delta(0, 4115, local=4115), delta(1, 0)]

    def moved(*lines: str) -> list[str]:
        return ["> numastat_mark", "numastat_mark ok=1", "> move 0 8192 0",
                "ret op=move_pages rc=0", "> numastat_delta", *lines]

    assert check_numastat(first + moved(*real), first + moved(*base)) == []
    assert check_numastat(first + window(*real), first + window(*base))
    # never on a node the task's allocations cannot reach
    far = [delta(0, 4096, local=4096), delta(1, 19, other=19)]
    assert check_numastat(first + moved(*far), first + moved(*base), noise_nodes=[{0}, {0}])


def test_numastat_under_pressure_allows_tens_of_pages() -> None:
    exp = ["> fill 1 200"] + window(delta(1, 177, foreign=423, other=177),
                                     delta(2, 0, miss=423, other=423))
    got = ["> fill 1 200"] + window(delta(1, 200, foreign=400, other=200),
                                     delta(2, 0, miss=400, other=400))
    assert check_numastat(exp, got) == []


def test_zones_present_exact_marks_close() -> None:
    z = ("zone node=0 zone=DMA32 free=110633 min={} low={} high={} boost=0 managed={} "
         "present=126976 protection=0,0,0,0,0")
    assert check_zones([z.format(406, 519, 632, 115262)], [z.format(412, 527, 642, 115262)]) == []
    assert check_zones([z.format(406, 519, 632, 115262)], [z.format(450, 527, 642, 115262)])
    assert check_zones([z.format(406, 519, 632, 115262)], [z.format(406, 519, 632, 115200)])


def test_numa_maps_compares_policy_and_node_counts() -> None:
    exp = ["numa_maps region=0 page=0 | 40000000 bind:1 anon=32 dirty=32 active=0 N1=32 "
           "kernelpagesize_kB=4"]
    same = [exp[0].replace("active=0 ", "")]
    other = [exp[0].replace("N1=32", "N2=32")]
    assert check_numa_maps(exp, same) == []
    assert check_numa_maps(exp, other)
