"""Experiments: YAML sweeps over policies, machines and workloads.

:mod:`~numasim.experiments.schema` reads and checks an experiment file,
:mod:`~numasim.experiments.expand` turns it into points (resolved configs with keys and seeds),
:mod:`~numasim.experiments.runner` runs them (here, in worker processes, or on Dask),
:mod:`~numasim.experiments.store` keeps one result file per point and the gathered table,
:mod:`~numasim.experiments.api` is ``numasim.sweep``.
"""
