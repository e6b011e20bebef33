"""Phase 2 on a Ray cluster: the executor (executor.py), connecting to or starting a
cluster (cluster.py), what runs on each node (evaluate.py) and what the nodes report and
reap (nodes.py). The executor is imported on first use: a node that runs evaluate.py
does not import the driver's side."""

from __future__ import annotations


def __getattr__(name: str):
    if name == "EXECUTOR":
        from harness.phase2.executors.ray.executor import EXECUTOR

        return EXECUTOR
    raise AttributeError(name)
