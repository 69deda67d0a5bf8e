"""The suite's order across pytest-xdist's workers: the longest modules first.

pyproject.toml runs the tests with ``-n auto --dist loadscope --no-loadscope-reorder``: each
module goes whole to one worker, in the order collected here.  xdist's own reorder puts the
modules with the most tests first, which sent a few long modules with few tests (the twin of
the allocator core: 3 tests, 63 s) to the end, where one worker ran them while the other had
nothing left (38 s of 737 in CI on 2 cores).  Longest first (the classic LPT rule) leaves
the many short modules to even the workers out at the end.  The list is only an order; a
module missing from it runs after these, and a stale entry costs balance, never a test.
"""

from __future__ import annotations

# seconds per module in CI (`pytest --durations=0`, 2-vCPU host, 2026-12-08), longest first
LONGEST_FIRST = (
    "test_course.py",             # 231
    "test_engines_agree.py",      # 165
    "test_oracle_scenarios.py",   # 120
    "test_experiments_shipped.py",  # 101
    "test_numab_timed.py",        # 81
    "test_dram_exact.py",         # 74
    "test_twin.py",               # 63
    "test_hostile_runtime.py",    # 47
    "test_links_protocol.py",     # 45
    "test_memctrl.py",            # 43
    "test_report_plots.py",       # 42
    "test_draw.py",               # 39
    "test_memctrl_mix.py",        # 31
    "test_reclaim_timed.py",      # 29
    "test_hostile_topology.py",   # 26
)


def pytest_collection_modifyitems(config, items) -> None:
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    # sorted() is stable: the tests of a module keep their order, the other modules theirs
    items[:] = sorted(items, key=lambda it: rank.get(it.path.name, len(rank)))
