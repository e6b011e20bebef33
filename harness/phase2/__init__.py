"""The Phase 2 runner: run a grid of training evaluations reliably and fast.

Library use::

    from harness.phase2 import RunOptions, run
    results = run(None, None, RunOptions(max_evals=6, out=Path("out")))

`None` template/grid mean the reference workload and the default 20-point
threshold grid around the field's 17/18/19.
"""

from harness.phase2.runner import RunOptions, plan, run

__all__ = ["RunOptions", "plan", "run"]
