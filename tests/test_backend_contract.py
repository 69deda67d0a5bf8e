"""Contract: the numba allocator core and its plain-Python twin implement the same
:class:`numasim.mm.backend.AllocatorBackend` entry points, with the same parameters."""

from __future__ import annotations

import inspect

import pytest

from numasim.errors import ConfigError
from numasim.mm import alloc_core, alloc_ref
from numasim.mm.backend import BACKENDS, ENTRY_POINTS, AllocatorBackend, backend_module
from numasim.mm.kernel import Kernel
from numasim.topology.loaders import load_machine


def _params(fn) -> list[str]:
    return list(inspect.signature(getattr(fn, "py_func", fn)).parameters)


def test_entry_points_are_the_protocol():
    members = {n for n, v in vars(AllocatorBackend).items()
               if callable(v) and not n.startswith("_")}
    assert members == set(ENTRY_POINTS)


@pytest.mark.parametrize("module", [alloc_core, alloc_ref], ids=["numba", "python"])
def test_backend_implements_the_protocol(module):
    assert isinstance(module, AllocatorBackend)


@pytest.mark.parametrize("name", ENTRY_POINTS)
def test_core_and_twin_take_the_same_parameters(name):
    core, twin = getattr(alloc_core, name), getattr(alloc_ref, name)
    assert hasattr(core, "py_func"), f"alloc_core.{name} is not a numba function"
    assert _params(core) == _params(twin)


@pytest.mark.parametrize("name", BACKENDS)
def test_kernel_uses_the_backend_it_is_given(name):
    k = Kernel(load_machine("oracle-2node"), backend=name)
    assert k.core is backend_module(name)
    assert isinstance(k.core, AllocatorBackend)


def test_unknown_backend_is_refused():
    class Half:
        def free_page(self, *args):
            return None

    assert not isinstance(Half(), AllocatorBackend)
    with pytest.raises(ConfigError, match="unknown allocator backend 'rust'"):
        Kernel(load_machine("oracle-2node"), backend="rust")
