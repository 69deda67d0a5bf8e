"""Thread placement: spread, compact, explicit CPUs, inside the allowed CPUs."""

from __future__ import annotations

import pytest

from numasim.errors import ConfigError
from numasim.topology.loaders import load_machine
from numasim.workloads.placement import place_threads

CLX = load_machine("clx-2s")  # node 0: 0-23,48-71; node 1: 24-47,72-95


def test_spread_alternates_nodes():
    assert place_threads(CLX, 4, "spread", list(CLX.cpus)) == [0, 24, 1, 25]


def test_compact_fills_a_node_first_cores_before_siblings():
    cpus = place_threads(CLX, 30, "compact", list(CLX.cpus))
    assert cpus[:24] == list(range(24)) and cpus[24:] == [48, 49, 50, 51, 52, 53]


def test_spread_within_allowed_cpus():
    allowed = [0, 1, 2, 24]
    assert place_threads(CLX, 4, "spread", allowed) == [0, 24, 1, 2]


def test_explicit_cpus_must_be_allowed():
    assert place_threads(CLX, 2, "spread", list(CLX.cpus), [5, 30]) == [5, 30]
    with pytest.raises(ConfigError) as e:
        place_threads(CLX, 2, "spread", [0, 1], [0, 30])
    assert e.value.field == "cpus" and "CPU 30" in str(e.value)


def test_more_threads_than_cpus():
    with pytest.raises(ConfigError) as e:
        place_threads(CLX, 3, "compact", [0, 1])
    assert e.value.field == "threads"
