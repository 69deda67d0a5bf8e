"""Contract: both engines implement :class:`numasim.machine.engine.Engine` over a
:class:`~numasim.machine.engine.SimulationView`, and a run is wired in one direction (spec ->
program -> simulation -> engine)."""

from __future__ import annotations

import inspect

import pytest
import simpy

from numasim.errors import ConfigError
from numasim.machine.engine import ENGINE_NAMES, Engine, SimulationView, engine_class
from numasim.machine.sim import Simulation
from numasim.spec import build_spec
from numasim.topology.loaders import load_machine
from numasim.wiring import build_program
from numasim.workloads.kernels import build_kernel


def _sim(engine: str) -> Simulation:
    spec = build_spec(load_machine("clx-2s"), build_kernel("stream", threads=2, size="64KiB"),
                      engine=engine, numactl="--interleave=all")
    return Simulation(build_program(spec))


@pytest.mark.parametrize("name", ENGINE_NAMES)
def test_engine_implements_the_protocol(name):
    sim = _sim(name)
    sim.env = simpy.Environment()
    eng = engine_class(name)(sim)
    assert isinstance(eng, Engine)
    phase = type(eng).phase
    assert inspect.isgeneratorfunction(phase), "phase must be a SimPy generator"
    assert list(inspect.signature(phase).parameters) == \
        list(inspect.signature(Engine.phase).parameters)


@pytest.mark.parametrize("name", ENGINE_NAMES)
def test_simulation_offers_what_engines_read(name):
    sim = _sim(name)
    sim.run(name)
    assert isinstance(sim, SimulationView)
    assert sim.phases[-1].end > 0 and sim.st.sum() > 0


def test_protocols_can_fail():
    class NotAnEngine:
        sim = None

    assert not isinstance(NotAnEngine(), Engine)
    assert not isinstance(object(), SimulationView)
    with pytest.raises(ConfigError, match="unknown engine 'warp'"):
        engine_class("warp")


def test_program_is_built_before_the_engine():
    """The built program carries everything workload-side: placed threads, mapped regions,
    compiled phases; the simulation only adds the machine's arrays."""
    spec = build_spec(load_machine("clx-2s"), build_kernel("stream", threads=4, size="64KiB"),
                      numactl="--cpunodebind=1")
    prog = build_program(spec)
    m = spec.machine
    assert len(prog.cpus) == 4 and {m.cpu_to_node[c] for c in prog.cpus} == {1}
    assert sorted(prog.regions) == ["a", "b", "c"]
    assert len(prog.programs) == len(spec.workload.phases)
    sim = Simulation(prog)
    assert sim.cpus == prog.cpus and sim.programs is prog.programs and sim.k is prog.kernel
