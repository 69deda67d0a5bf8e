"""Workloads: what the simulated program does.

* ``model``: the Python API (:class:`Workload`, :class:`Region`, :class:`Phase`, :class:`Trace`);
* ``schema``: the workload YAML (strict, every problem at once) -> ``Workload``;
* ``kernels``: the built-in kernels (stream, gups, pointer_chase, stride, zipf, prodcons);
* ``placement``: which CPU each thread runs on;
* ``program``: phases compiled into op descriptors per thread;
* ``gen``: the numba access generator both engines consume;
* ``trace``: the canonical numpy trace format, its validator, the valgrind lackey reader.

The commands that run workloads (``numasim numactl``, ``numasim run``) live in
:mod:`numasim.cli`.
"""
